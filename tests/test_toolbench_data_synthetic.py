"""Synthetic trajectories, held-out metrics, the data functions and the BPE tokenizer."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tasks.toolbench.conversation import Step
from tasks.toolbench.convert import convert_answers, to_sft_instances
from tasks.toolbench.data import heldout_cases, load_trajectories, read_answers, to_demonstrations, write_answer_files
from tasks.toolbench.formats import dump_sft_json, read_answer_file
from tasks.toolbench.metrics import aggregate, score_step
from tasks.toolbench.synthetic import SyntheticSpec, generate, split_tools
from tasks.toolbench.toolllama import step_text

FIXTURES = Path(__file__).parent / "fixtures" / "toolbench"


@pytest.fixture(scope="module")
def docs():
    try:
        from tasks.toolbench.tooldocs import build_tool_documents, read_queries, stabletoolbench_query_files

        return build_tool_documents(read_queries(stabletoolbench_query_files()))
    except FileNotFoundError:  # pragma: no cover
        pytest.skip("StableToolBench queries not found")


def _check_value(value, schema: dict) -> bool:
    kind = schema["type"]
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str) and value != ""


def test_synthetic_is_seeded_and_schema_valid(docs):
    spec = SyntheticSpec(seed=3)
    first = generate(docs, "train", 300, spec)
    assert first == generate(docs, "train", 300, spec)  # deterministic
    assert first != generate(docs, "train", 300, SyntheticSpec(seed=4))
    calls = 0
    for answer in first:
        functions = {f["name"]: f for f in answer.functions}
        assert list(functions)[-1] == "Finish" and answer.train_messages[-1][-1].function_call.name == "Finish"
        for step in answer.train_messages:
            call = step[-1].function_call
            args = json.loads(call.arguments)
            assert call.name in functions
            if call.name == "Finish":
                assert args["return_type"] == "give_answer" and args["final_answer"]
                continue
            calls += 1
            params = functions[call.name]["parameters"]
            assert set(params["required"]) <= set(args) <= set(params["properties"])
            assert all(_check_value(v, params["properties"][k]) for k, v in args.items())
            for k, v in args.items():  # the query names the values
                assert f"'{k}' {json.dumps(v, ensure_ascii=False)}" in answer.query
    assert calls > 300


def test_synthetic_split_is_by_tool(docs):
    spec = SyntheticSpec()
    tools = split_tools(docs, spec)
    assert len(tools["train"]) + len(tools["heldout"]) == 814
    assert 40 < len(tools["heldout"]) < 130
    train_names = {f["name"] for a in generate(docs, "train", 400, spec) for f in a.functions} - {"Finish"}
    held = generate(docs, "heldout", 100, spec)
    held_names = {f["name"] for a in held for f in a.functions} - {"Finish"}
    assert held_names and not held_names & train_names
    from tasks.toolbench.schema import api_to_function

    held_functions = {api_to_function(api, d.standard_name)["name"] for d in tools["heldout"] for api in d.records()}
    assert held_names <= held_functions


def test_fused_renames_join_two_name_words(docs):
    """fuse_rate > 0: renamed words are often two name words run together (real names do this:
    ``tweetfeed``), far more often than in the real names that fuse_rate=0 leaves."""
    from tasks.toolbench.synthetic import name_words

    words = set(name_words(docs))

    def compounds(spec: SyntheticSpec) -> set[str]:
        pieces = {w for a in generate(docs, "train", 300, spec) for f in a.functions for w in f["name"].split("_")}
        return {w for w in pieces - words if any(w[:i] in words and w[i:] in words for i in range(2, len(w) - 1))}

    plain, fused = compounds(SyntheticSpec()), compounds(SyntheticSpec(fuse_rate=0.5))
    assert len(fused) > 2 * len(plain) + 50, (len(plain), len(fused))


def test_letter_renames_are_no_name_words_and_leave_heldout_names_real(docs):
    """rename_style=letters: renamed tools and APIs are random letter strings (no statistics of
    real names predict them); held-out trajectories keep their real names either way."""
    from tasks.toolbench.synthetic import name_words

    words = set(name_words(docs))
    spec = SyntheticSpec(rename_style="letters", rename_rate=1.0)
    pieces = {w for a in generate(docs, "train", 200, spec) for f in a.functions if f["name"] != "Finish"
              for w in f["name"].split("_") if w != "for"}
    assert pieces and len(pieces & words) < 0.1 * len(pieces), sorted(pieces & words)[:20]
    held = lambda s: [f["name"] for a in generate(docs, "heldout", 50, s) for f in a.functions]  # noqa: E731
    assert held(spec) == held(SyntheticSpec())
    with pytest.raises(ValueError, match="rename_style"):
        SyntheticSpec(rename_style="digits")


def test_synthetic_is_short_and_renders(docs):
    train = generate(docs, "train", 200, SyntheticSpec())
    demos = to_demonstrations(train)
    lengths = [sum(len(t) for _, t in d) for d in demos]
    assert max(lengths) < 6000 and sum(lengths) / len(lengths) < 2000
    assert all(sum(1 for s, _ in d if s == "model") == len(a.train_messages) for d, a in zip(demos, train))


def test_synthetic_written_as_answer_files_reads_back(docs, tmp_path):
    train = generate(docs, "train", 5, SyntheticSpec())
    paths = write_answer_files(train, tmp_path)
    back = [read_answer_file(p) for p in paths]
    assert [b.train_messages for b in back] == [a.train_messages for a in train]


# --- metrics ---------------------------------------------------------------------------------

FUNCTIONS = (
    {"name": "get_x_for_t", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
    {"name": "Finish", "parameters": {"type": "object", "properties": {}, "required": ["return_type"]}},
)
REF = Step("", "get_x_for_t", '{"q": "cats"}')


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        (step_text(REF) + "</s>", dict(parses=True, action_offered=True, action_right=True, arguments_json=True, arguments_required=True, finish_right=True)),
        ('\nThought: \nAction: get_x_for_t\nAction Input: {"r": 1}', dict(parses=True, action_right=True, arguments_json=True, arguments_required=False)),
        ("\nThought: \nAction: get_x_for_t\nAction Input: {q: cats}", dict(parses=True, action_right=True, arguments_json=False, arguments_required=False)),
        ('\nThought: \nAction: made_up\nAction Input: {"q": "c"}', dict(parses=True, action_offered=False, action_right=False, arguments_json=True, arguments_required=False, finish_right=True)),
        ('\nThought: \nAction: Finish\nAction Input: {"return_type": "give_answer"}', dict(action_offered=True, action_right=False, arguments_required=True, finish_right=False)),
        ("\nThought: \nAction: get_x_for_t", dict(parses=False, action_offered=False, arguments_json=False, finish_right=False)),
        ('\nThought: \nAction: get_x_for_t\nAction Input: ["cats"]', dict(arguments_json=False)),
    ],
)
def test_score_step(generated, expected):
    score = score_step(generated, REF, FUNCTIONS)
    for key, value in expected.items():
        assert getattr(score, key) == value, key


def test_aggregate_shares():
    scores = [score_step(step_text(REF), REF, FUNCTIONS), score_step("nonsense", REF, FUNCTIONS)]
    shares = aggregate(scores)
    assert shares["eval/parses"] == 0.5 and shares["eval/action_right"] == 0.5 and shares["eval/steps"] == 2.0
    assert scores[1].error == "missing_thought"
    assert aggregate([]) == {}


def test_heldout_cases_reference_replay_scores_perfectly(docs):
    held = load_trajectories("synthetic", "heldout", n=20)
    cases = heldout_cases(held)
    assert len(cases) == sum(len(a.train_messages) for a in held)
    scores = [score_step(step_text(c.reference) + "</s>", c.reference, c.functions) for c in cases]
    assert all(v == 1.0 for k, v in aggregate(scores).items() if k != "eval/steps")
    assert all(c.prompt.endswith("\nAssistant: ") and c.prompt.startswith("".join(t for _, t in c.context)) for c in cases)


# --- data functions -------------------------------------------------------------------------


def test_sample_split_by_tool():
    try:
        train, held = load_trajectories("sample", "train"), load_trajectories("sample", "heldout")
    except FileNotFoundError:  # pragma: no cover
        pytest.skip("ToolBench sample not found")
    from tasks.toolbench.data import answer_tools

    assert len(train) + len(held) == 13 and train and held
    train_tools = {t for a in train for t in answer_tools(a)}
    assert all(any(t not in train_tools for t in answer_tools(a)) for a in held)
    with pytest.raises(ValueError, match="data=full needs source"):
        load_trajectories("full", "train")
    with pytest.raises(ValueError, match="unknown 'all'"):
        load_trajectories("all", "train")


def test_sft_file_read_back_gives_the_same_instances(tmp_path):
    """data=full from toolllama_G123_dfs_train.json: the file's instances, byte for byte."""
    texts = [gzip.decompress(p.read_bytes()).decode() for p in sorted((FIXTURES / "converter_output").rglob("*.gz"))]
    merged = [inst for text in texts for inst in json.loads(text)]
    path = tmp_path / "toolllama_G123_dfs_train.json"
    path.write_text(json.dumps(merged, indent=4, ensure_ascii=False))
    answers = read_answers(path)
    assert len(answers) == 13
    assert dump_sft_json(to_sft_instances(convert_answers(answers, "toolbench", keep_thoughts=False))) == path.read_text()
    assert len(convert_answers(answers, "packed")) == 17


# --- tokenizer ------------------------------------------------------------------------------


def test_bpe_tokenizer_keeps_markers_whole_and_offsets_exact(tmp_path, docs):
    from tasks.toolbench.tokenizer import cached_tokenizer, toolllama_specials

    texts = ["".join(t for _, t in d) for d in to_demonstrations(generate(docs, "train", 40, SyntheticSpec()))]
    tok = cached_tokenizer(texts, 600, cache_dir=tmp_path)
    again = cached_tokenizer(texts, 600, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1 and again.get_vocab() == tok.get_vocab()
    for special in toolllama_specials():
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1, special
    assert tok.eos_token == "</s>" and tok.pad_token == "<pad>"
    enc = tok(texts[0], add_special_tokens=False, return_offsets_mapping=True)
    assert "".join(texts[0][a:b] for a, b in enc["offset_mapping"]) == texts[0]
    assert tok.decode(enc["input_ids"]) == texts[0]
    assert len(enc["input_ids"]) < len(texts[0]) / 2.5
