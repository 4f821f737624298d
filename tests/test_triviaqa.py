"""TriviaQA task: normalisation and reward (tables), tool-text exclusion, data, the synthetic world."""

import random
import re

import pytest

from orchestrator.rollout.protocol import parse_call
from orchestrator.rollout.episode import Episode
from orchestrator.models.tokens import build_byte_tokenizer
from tasks.triviaqa import FEW_SHOT, answer_reward, make_world, normalize_answer
from tasks.triviaqa.tools import search_in_process
from orchestrator.config import check_overrides
from tests.conftest import make_task
from tasks.triviaqa.loaders import keyword_query, read_dpr_tsv
from tasks.triviaqa.world import KINDS, QUESTIONS

SHARED_TSV = "../shared/data/triviaqa_dpr_test.tsv"


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("The Beatles", "beatles"),
        ("Sunset Blvd.", "sunset blvd"),
        ("  A   Tale of Two  Cities ", "tale of two cities"),
        ("rock_and_roll", "rock and roll"),
        ("Mary-Kate", "mary kate"),  # punctuation becomes a space, not nothing
        ("1930's", "1930 s"),
        ("\u2018Tis the Season\u2019", "tis season"),  # typographic quotes are punctuation
        ("`Theatre´", "theatre"),
        ("Thea and Anna", "thea and anna"),  # articles only as whole words
        ("AN APPLE", "apple"),
        ("the", ""),
        ("", ""),
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


TANZANIA = ["Tanzania", "United Republic of Tanzania"]
ORWELL = ["George Orwell", "Eric Arthur Blair", "Orwell"]


@pytest.mark.parametrize(
    "model_text, aliases, criterion, reward",
    [
        ("Result=Tanzania<submit>", TANZANIA, "exact", 1.0),
        ("Result= tanzania. <submit>", TANZANIA, "exact", 1.0),
        ("Result=The United Republic of Tanzania<submit>", TANZANIA, "exact", 1.0),
        ("<request><Wiki>Kilimanjaro<call>\n\nResult=Tanzania<submit>", TANZANIA, "exact", 1.0),
        ("Result=Kenya<submit>", TANZANIA, "exact", 0.0),
        ("Result=Tanzania and Kenya<submit>", TANZANIA, "exact", 0.0),  # exact: no extra words
        ("Result=Tanzania and Kenya<submit>", TANZANIA, "toolformer", 1.0),
        ("Result=it is in tanzania, east africa<submit>", TANZANIA, "toolformer", 1.0),
        ("Result=" + "word " * 20 + "Tanzania<submit>", TANZANIA, "toolformer", 0.0),  # 21st word
        ("Result=" + "word " * 19 + "Tanzania<submit>", TANZANIA, "toolformer", 1.0),  # 20th word
        ("Result=Tanzanian<submit>", TANZANIA, "toolformer", 0.0),  # whole words only
        ("Result=the novelist George Orwell<submit>", ORWELL, "toolformer", 1.0),
        ("Result=George<submit>", ORWELL, "toolformer", 0.0),
        ("Result=Orwell<submit>", ORWELL, "exact", 1.0),
        ("Result=Tanzania", TANZANIA, "exact", 0.0),  # never submitted
        ("Tanzania<submit>", TANZANIA, "exact", 0.0),  # no Result=
        ("Result=Kenya<submit>Result=Tanzania<submit>", TANZANIA, "exact", 0.0),  # the first answer counts
        ("Result=<submit>", TANZANIA, "exact", 0.0),
        ("Result=the<submit>", ["The The"], "exact", 0.0),  # empty after normalisation never matches
        ("", TANZANIA, "exact", 0.0),
        ("Result=1,997<submit>", ["1997"], "exact", 0.0),
        ("Result=1997<submit>", ["one thousand, nine hundred and ninety-seven", "1997"], "exact", 1.0),
    ],
)
def test_reward_table(model_text, aliases, criterion, reward):
    assert answer_reward(model_text, aliases, criterion) == reward


def _episode(*segments):
    ep = Episode.from_prompt([0], "Which country is Mount Kilimanjaro in?\n\n", {"answer": TANZANIA})
    for i, (source, text) in enumerate(segments, start=1):
        ep.add(source, [i], text)
    return ep


@pytest.mark.parametrize("criterion", ["exact", "toolformer"])
def test_alias_in_tool_text_earns_nothing(criterion):
    task = make_task("triviaqa", criterion=criterion)
    call = ("model", "<request><Wiki>Kilimanjaro<call>")
    # the passage names the answer, even in the answer format; the model's own answer is wrong
    ep = _episode(call, ("tool", "Result=Tanzania<submit> Mount Kilimanjaro is in Tanzania.<response>"),
                  ("model", "\n\nResult=Kenya<submit>"))
    assert task.reward(ep) == 0.0
    # the episode ended on the tool's text (the seed's reward read this last segment)
    assert task.reward(_episode(call, ("tool", "Result=Tanzania<submit><response>"))) == 0.0
    # an answer cannot be stitched across the tool's turn
    stitched = _episode(("model", "Result=<request><Wiki>x<call>"), ("tool", "Tanzania<response>"), ("model", "<submit>"))
    assert task.reward(stitched) == 0.0
    # the same words written by the model do count
    assert task.reward(_episode(call, ("tool", "Kilimanjaro.<response>"), ("model", "\n\nResult=Tanzania<submit>"))) == 1.0


def test_few_shot_prompt_follows_the_protocol_and_is_right():
    text = FEW_SHOT.format(tool="Wiki")
    shots = [s for s in text.split("<submit>") if s.strip()]
    assert len(shots) == 2
    truths = [TANZANIA, ORWELL]
    for shot, aliases in zip(shots, truths):
        turn = shot[: shot.index("<call>") + len("<call>")]
        call = parse_call(turn)
        assert call is not None and call.tool == "Wiki" and call.query
        passage = shot[shot.index("<call>") + 6: shot.index("<response>")]
        assert answer_reward(shot + "<submit>", aliases) == 1.0
        assert any(normalize_answer(a) in normalize_answer(passage) for a in aliases)  # the passage holds it
    task = make_task("triviaqa", source="local", local_file=SHARED_TSV)
    problem = task.eval_problems()[0]
    assert task.prompt(problem, few_shot=True) == text + problem.question + "\n\n"
    assert task.prompt(problem, few_shot=False) == problem.question + "\n\n"


# ---------------------------------------------------------------- real data


def test_read_dpr_tsv_handles_quoted_lines(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text(
        "Who was the man behind The Chipmunks?\t['David Seville']\n"
        "In which decade did stereo records first go on sale?\t\"['1930s', \"\"'30s\"\", \"\"1930's\"\"]\"\n"
        '"""How many shapes are in the """"Animal Crackers"""" zoo?"""\t[\'Eighteen\']\n',
        encoding="utf-8",
    )
    problems = read_dpr_tsv(path)
    assert [p.answer for p in problems] == [["David Seville"], ["1930s", "'30s", "1930's"], ["Eighteen"]]
    assert problems[2].question == '"How many shapes are in the ""Animal Crackers"" zoo?"'
    path.write_text("a question\tnot a list\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"q.tsv:1"):
        read_dpr_tsv(path)


def test_shared_file_loads_and_eval_is_held_out():
    task = make_task("triviaqa", source="local", local_file=SHARED_TSV, num_eval=128)
    train, evals = task.splits()
    assert len(evals) == 128 and len(train) + len(evals) <= 11313 and len(train) > 11000
    assert not {p.question for p in evals} & {p.question for p in train}
    again = make_task("triviaqa", source="local", local_file=SHARED_TSV, num_eval=128).eval_problems()
    assert [p.question for p in again] == [p.question for p in evals]
    assert all(isinstance(p.answer, list) and p.answer and p.meta["query"] for p in evals)
    zero, one = task.train_problems(0), task.train_problems(1)
    assert [next(zero).question for _ in range(20)] != [next(one).question for _ in range(20)]  # the seed orders


def test_keyword_query():
    assert keyword_query("Which volcano in Tanzania is the highest mountain in Africa?") == "volcano Tanzania highest mountain Africa"
    assert keyword_query("Who was the man behind The Chipmunks?") == "man behind Chipmunks"
    assert keyword_query("Who?") == "Who?"


def test_tool_config_has_absolute_paths(tmp_path):
    tool = make_task("triviaqa", cache_dir=str(tmp_path)).tools()[0]
    assert tool["_target_"] == "orchestrator.tools.search.WikiSearch" and tool["name"] == "Wiki"
    assert tool["index_dir"] == str(tmp_path / "indexes" / "mini_wiki_corpus")
    assert tool["corpus"].startswith("/") and tool["corpus"].endswith("mini_wiki_corpus.jsonl")


# ---------------------------------------------------------------- the synthetic world


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_task("triviaqa_synthetic", cache_dir=str(tmp_path_factory.mktemp("cache")), max_passage_chars=64)


def test_world_is_fixed_by_its_seed():
    a, b, c = make_world(200, seed=1), make_world(200, seed=1), make_world(200, seed=2)
    assert a == b and a != c
    names = list(a.entities)
    assert len({n.lower() for n in names}) == len(names) == 200
    assert all(4 <= len(n) <= 5 and n.isalpha() and n.isupper() and len(set(n)) == len(n) for n in names)
    assert not {ch for n in names for ch in n} & set("IWF")  # the questions' first letters
    shared = [set(n) & set(answer) for n, (kind, answer) in a.entities.items()]
    assert sum(not s for s in shared) > 0.9 * len(shared)  # answers mostly share no letter with the name
    assert {k for k, _ in a.entities.values()} == set(KINDS)
    towns = {n for n, (k, _) in a.entities.items() if k == "town"}
    assert all(answer in towns for k, answer in a.entities.values() if k == "person")  # birthplaces are towns


def test_articles_and_questions_put_entity_and_answer_last():
    world = make_world(100, seed=3)
    for fact in world.facts():
        assert world.article(fact.entity).endswith(f" {fact.answer}.")
        assert world.article(fact.entity).startswith(f"{fact.entity} ")
        for template in QUESTIONS[fact.attribute]:
            assert template.format(e=fact.entity).endswith(f" {fact.entity}?")


def test_search_finds_every_entity_article(synthetic):
    """The question's entity is the right query: BM25's top hit is its own article, for all of them."""
    tools = synthetic.tools()
    assert tools[0]["corpus"].endswith(".jsonl") and tools[0]["index_dir"].startswith("/")
    names = list(synthetic.world.entities)
    assert len(names) == 2400
    assert search_in_process(synthetic.tools()[0], names) == [synthetic.world.article(n) for n in names]
    assert all(len(synthetic.world.article(n)) <= 64 for n in names)


def test_synthetic_eval_is_held_out_and_answers_are_only_in_articles(synthetic):
    train, evals = synthetic.splits()
    assert len(evals) == 256
    held = {(p.meta["query"], p.meta["attribute"]) for p in evals}
    assert not held & {(p.meta["query"], p.meta["attribute"]) for p in train}  # facts, not just wordings
    assert len(train) == 2 * (2400 - 256)  # every wording of every other fact
    for p in evals[:50]:
        assert p.meta["query"] in p.question and p.answer[0] not in p.question
        assert p.answer[0] in synthetic.world.article(p.meta["query"])
        assert p.question in [t.format(e=p.meta["query"]) for t in QUESTIONS[p.meta["attribute"]]]


def test_a_full_synthetic_episode_fits_the_tiny_model(synthetic):
    tokenizer = build_byte_tokenizer(extra_tokens=["<Wiki>"])
    train, evals = synthetic.splits()
    longest = 0
    for p in evals + train[::7]:
        text = (synthetic.prompt(p, few_shot=False) + f"<request><Wiki>{p.meta['query']}<call>"
                + synthetic.world.article(p.meta["query"]) + f"<response>\n\nResult={p.answer[0]}<submit>")
        longest = max(longest, len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    assert longest <= 110  # + eos: well within the 128 positions and task.env.max_length


def test_demonstrations_leave_room_for_rl(synthetic):
    demos = synthetic.demonstrations(1000, random.Random(0))
    extra = int(synthetic.spec.demo_practice_frac * 1000)  # conf/task/triviaqa_synthetic.yaml
    assert len(demos) == 1000 + extra
    decisions = [d for d in demos if not d[0][1].endswith("<request><Wiki>")]
    practice = [d for d in demos if d[0][1].endswith("<request><Wiki>")]
    assert len(decisions) == 1000 and len(practice) == extra
    used = [d for d in decisions if d[1][1].startswith("<request>")]
    assert 0.25 < len(used) / len(decisions) < 0.35
    # practice never puts the decision under the loss; tool text is the entity's article
    for d in practice[:200] + used[:50]:
        query = re.sub(r"^<request><Wiki>", "", d[1][1]).removesuffix("<call>")
        assert d[2] == ("tool", synthetic.world.article(query) + "<response>")
        assert d[1][0] == "model" and d[3][0] == "model" and d[3][1].startswith("\n\nResult=")
    # direct guesses look like answers but are (with demo_direct_correct_frac=0) from the wrong fact
    direct = [d for d in decisions if d[1][1].startswith("Result=")]
    assert direct and all(d[1][1].endswith("<submit>") for d in direct)


def test_fingerprint_ignores_cache_paths():
    a = make_task("triviaqa_synthetic", cache_dir="/a").fingerprint()
    b = make_task("triviaqa_synthetic", cache_dir="/b", index_dir="/c").fingerprint()
    assert a == b and a != make_task("triviaqa_synthetic", world_seed=8).fingerprint()


@pytest.mark.parametrize("overrides, message", [
    (["task=triviaqa", "task.spec.criterion=fuzzy"], "task.spec.criterion: got 'fuzzy' (valid: exact, toolformer)"),
    (["task=triviaqa", "task.spec.corpus=null"], "task.spec.corpus: null, and no task.spec.index_dir"),
    (["task=triviaqa_synthetic", "task.spec.world_size=3"], "task.spec.world_size: must be >= 10"),
])
def test_bad_arguments_are_named(overrides, message):
    found = check_overrides(overrides)
    assert found is not None and message in found, found
