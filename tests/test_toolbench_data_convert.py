"""Answer trees -> conversations -> text: ToolBench's converter byte for byte, the packed
format training the same pairs, and one renderer/parser pair for training and inference."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from tasks.toolbench.conversation import Conversation, Step, Turn
from tasks.toolbench.convert import convert_answer, convert_answers, to_sft_instances
from tasks.toolbench.formats import dump_sft_json, find_answer_files, read_answer_file
from tasks.toolbench.paths import toolbench_sample_dir
from tasks.toolbench.render import ParseError, ToolLlamaTemplate, parse_step, render, render_prompt
from tasks.toolbench.toolllama import step_text

FIXTURES = Path(__file__).parent / "fixtures" / "toolbench"

try:
    ANSWER_ROOT = toolbench_sample_dir() / "answer"
except FileNotFoundError:  # pragma: no cover
    ANSWER_ROOT = None
needs_data = pytest.mark.skipif(ANSWER_ROOT is None, reason="ToolBench sample not found")


@pytest.fixture(scope="module")
def answers():
    return {str(f.relative_to(ANSWER_ROOT)): read_answer_file(f) for f in find_answer_files(ANSWER_ROOT)}


def _text(demo) -> str:
    return "".join(t for _, t in demo)


@needs_data
def test_toolbench_format_is_the_converters_output_byte_for_byte(answers):
    total = 0
    for rel, answer in answers.items():
        gold = gzip.decompress((FIXTURES / "converter_output" / f"{rel}.gz").read_bytes()).decode("utf-8")
        instances = convert_answer(answer, "toolbench", keep_thoughts=False)
        assert dump_sft_json(to_sft_instances(instances)) == gold, rel
        total += len(instances)
    assert total == 50


@needs_data
def test_upstream_history_gives_toolbench_training_text(answers):
    """ToolBench's own ``Conversation.get_prompt()`` text of each instance (SHA-256 fixture)."""
    hashes = json.loads((FIXTURES / "toolllama_prompt_sha256.json").read_text())
    upstream = ToolLlamaTemplate(upstream_history=True)
    for rel, answer in answers.items():
        texts = [_text(upstream.demonstration(c)) for c in convert_answer(answer, "toolbench", keep_thoughts=False)]
        assert [hashlib.sha256(t.encode()).hexdigest() for t in texts] == [h["sha256"] for h in hashes[rel]], rel
    lengths = [h["chars"] for v in hashes.values() for h in v]
    assert (min(lengths), max(lengths)) == (3288, 16380)


@needs_data
def test_thoughts_dropped_by_toolbench_kept_by_default(answers):
    # The count: call messages over all train_messages lists (prefixes repeat them).
    calls = [m for a in answers.values() for tm in a.train_messages for m in tm if m.function_call]
    assert len(calls) == 130 and sum(1 for m in calls if m.content) == 43
    dropped = [s for c in convert_answers(list(answers.values()), "toolbench", keep_thoughts=False) for s in c.steps]
    kept = [s for c in convert_answers(list(answers.values()), "toolbench") for s in c.steps]
    assert len(dropped) == len(kept) == 124
    assert sum(1 for s in dropped if s.thought) == 2  # issue #67: 122 of 124 empty
    assert sum(1 for s in kept if s.thought) > 40


@needs_data
def test_packed_trains_each_toolbench_pair_once(answers):
    toolbench = convert_answers(list(answers.values()), "toolbench")
    packed = convert_answers(list(answers.values()), "packed")
    assert len(packed) == 17
    assert sum(len(c.trained_steps) for c in packed) == len(toolbench) == 50
    # Every toolbench instance's text is a prefix of a packed text ending at a trained step.
    packed_texts = [_text(render(c)) for c in packed]
    for inst in toolbench:
        text = _text(render(inst))
        assert any(p.startswith(text) for p in packed_texts), inst.id
    # Where the diversity prompt vanishes from a path (G2 119: the search backtracked), the
    # prefix changes and a new instance starts.
    split = convert_answer(answers["G2_answer/119_ChatGPT_DFS_woFilter_w2.json"], "packed")
    assert len(split) == 2
    assert [t.role for t in split[0].turns][:2] == ["user", "user"] and [t.role for t in split[1].turns][:2] == ["user", "assistant"]


@needs_data
def test_packed_and_toolbench_give_the_same_summed_nll():
    """The (context, target) pairs are the same: a random model's summed NLL agrees. Here on
    the G1 and G2 trees (9 of 13, with diversity prompts); ``python -m
    tasks.toolbench.equivalence`` runs all 13 (docs/toolbench.md)."""
    from tasks.toolbench.equivalence import compare_on_sample

    scores = compare_on_sample(vocab_size=4096, groups=("G1_answer", "G2_answer"), hidden=16, layers=1, heads=1)
    tb, pk = scores["toolbench"], scores["packed"]
    assert tb.trained_tokens == pk.trained_tokens > 2000
    assert abs(tb.summed_nll - pk.summed_nll) <= 1e-5 * abs(tb.summed_nll)
    assert pk.tokens < 0.5 * tb.tokens and (tb.instances, pk.instances) == (33, 10)


def test_instance_with_no_trained_token_is_an_error():
    from tasks.toolbench.equivalence import trained_token_mask
    from tasks.toolbench.tokenizer import train_tokenizer

    tok = train_tokenizer(["System: a\nUser: b"], 300)
    with pytest.raises(ValueError, match="no trained token"):
        trained_token_mask([("prompt", "System: a"), ("model", "")], tok)


# --- renderer and parser --------------------------------------------------------------------

STEPS = [
    Step("", "transitaires_for_transitaires", "{}"),
    Step("I should look it up.\nAction: Call the 'x' function.", "x_for_y", '{\n  "q": "cats"\n}'),
    Step("multi\nline\nThought: again", "Finish", '{"return_type": "give_answer", "final_answer": "done"}'),
]


@pytest.mark.parametrize("step", STEPS)
def test_render_then_parse_gives_the_step_back(step):
    conv = Conversation("c", "sys", ({"name": step.action},), (Turn.user("\nq\nBegin!\n"), Turn.assistant(step, trained=True)))
    demo = render(conv)
    model_text = "".join(t for s, t in demo if s == "model")
    assert model_text == step_text(step) + "</s>"
    assert parse_step(model_text) == step


def test_inference_prompt_is_the_training_context():
    steps = [Turn.assistant(STEPS[0], trained=True), Turn.function('{"error": "", "response": "ok"}', "t"), Turn.assistant(STEPS[2], trained=True)]
    conv = Conversation("c", "sys", ({"name": "Finish"},), (Turn.user("q"), *steps))
    text = _text(render(conv))
    so_far = conv.with_turns(conv.turns[:3])
    prompt = render_prompt(so_far)
    assert text.startswith(prompt) and text[len(prompt):] == step_text(STEPS[2]) + "</s>"
    assert prompt.endswith("</s>\nFunction: {\"error\": \"\", \"response\": \"ok\"}\nAssistant: ")
    with pytest.raises(ValueError, match="ends with an assistant step"):
        render_prompt(conv)


def test_observations_cut_at_1024_characters():
    conv = Conversation("c", "sys", (), (Turn.user("q"), Turn.assistant(STEPS[0]), Turn.function("x" * 2000)))
    tool = [t for s, t in render(conv) if s == "tool"]
    assert tool == ["x" * 1024 + "..."]
    assert [t for s, t in render(conv.with_turns(conv.turns[:2] + (Turn.function(tool[0]),))) if s == "tool"] == tool


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("\nAction: f\nAction Input: {}", "missing_thought"),
        ("\nThought: x\nAction Input: {}", "missing_action"),
        ("\nThought: x\nAction: f", "missing_action_input"),
        ("\nThought: x\nAction Input: {}\nAction: f", "missing_action"),
        ("\nThought: x\nAction: \nAction Input: {}", "empty_action"),
        ("\nThought: x\nAction: f\ng\nAction Input: {}", "multiline_action"),
        ("\nThought: x\nAction: f\nAction Input: ", "empty_action_input"),
        ("\nThought: x\nAction: f\nAction Input: {}\nThought: more", "extra_step"),
        ("\nThought: x\nAction: f\nAction Input: {}</s>\nFunction: made up", "text_after_end"),
        ("Sure! I will call f.", "missing_thought"),
    ],
)
def test_parser_is_strict(text, kind):
    result = parse_step(text)
    assert isinstance(result, ParseError) and result.kind == kind and not result


def test_parser_accepts_toolbench_inference_output():
    # ToolBench's inference prompt ends "Assistant:\n", so its models write no leading newline.
    assert parse_step("Thought: ok\nAction: f_for_t\nAction Input: {}") == Step("ok", "f_for_t", "{}")


# --- chat template --------------------------------------------------------------------------

# A Hermes-style template (Qwen family): tools in the system message, calls in <tool_call>.
HERMES = (
    "{% for m in messages %}"
    "{% if m.role == 'system' %}{{ '<|im_start|>system\\n' + m.content }}"
    "{% if tools %}{{ '\\n# Tools' }}{% for t in tools %}{{ '\\n' + (t | tojson) }}{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}"
    "{% elif m.role == 'assistant' %}{{ '<|im_start|>assistant\\n' + m.content }}"
    "{% for c in m.tool_calls %}{{ '<tool_call>{\"name\": \"' + c.function.name + '\", \"arguments\": ' + (c.function.arguments | tojson) + '}</tool_call>' }}{% endfor %}{{ '<|im_end|>\\n' }}"
    "{% elif m.role == 'tool' %}{{ '<|im_start|>user\\n<tool_response>' + m.content + '</tool_response><|im_end|>\\n' }}"
    "{% else %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def chat_tokenizer():
    from tasks.toolbench.tokenizer import train_tokenizer

    tok = train_tokenizer(["<|im_start|>system\nhello tools and calls"], 300, ["<|im_end|>", "<pad>", "<|im_start|>"])
    tok.chat_template = HERMES
    return tok


def test_chat_template_round_trip(chat_tokenizer):
    from tasks.toolbench.render import make_template

    tpl = make_template("chat", chat_tokenizer)
    steps = [Step("look up", "f_for_t", '{"q": "cats"}'), Step("", "Finish", '{"return_type": "give_answer", "final_answer": "x"}')]
    conv = Conversation("c", "sys", ({"name": "f_for_t", "parameters": {}},),
                        (Turn.user("q"), Turn.assistant(steps[0], True), Turn.function("obs", "f_for_t"), Turn.assistant(steps[1], True)))
    demo = tpl.demonstration(conv)
    model = [t for s, t in demo if s == "model"]
    assert len(model) == 2 and model[0].startswith("look up<tool_call>") and model[0].endswith("</tool_call><|im_end|>")
    assert [t for s, t in demo if s == "tool"] == ["obs"]
    prompt = tpl.prompt(conv.with_turns(conv.turns[:3]))
    assert _text(demo).startswith(prompt)
    parsed = [tpl.parse(m) for m in model]
    assert [(p.thought, p.action, json.loads(p.action_input)) for p in parsed] == [(s.thought, s.action, json.loads(s.action_input)) for s in steps]
    assert tpl.parse("no call here").kind == "bad_tool_call"


def test_chat_template_that_rewrites_history_is_refused(chat_tokenizer):
    from tasks.toolbench.chat import ChatTemplate

    # Past thoughts dropped, as Qwen3's template drops past reasoning.
    rewriting = HERMES.replace("'<|im_start|>assistant\\n' + m.content }}", "'<|im_start|>assistant\\n' + (m.content if loop.last else '') }}")
    assert rewriting != HERMES
    tok = chat_tokenizer
    old = tok.chat_template
    tok.chat_template = rewriting
    try:
        conv = Conversation("c", "sys", (), (Turn.user("q"), Turn.assistant(Step("think", "f", "{}"), True), Turn.function("o"), Turn.assistant(Step("t2", "g", "{}"), True)))
        with pytest.raises(ValueError, match="not prefix-stable"):
            ChatTemplate(tok).demonstration(conv)
    finally:
        tok.chat_template = old


@needs_data
def test_inference_history_renders_as_training(answers):
    """A DFSDT node's message list, rendered for inference, is the training context of its next step."""
    from tasks.toolbench.convert import conversation_from_messages
    from tasks.toolbench.formats.answers import message_to_json

    answer = answers["G1_answer/59_ChatGPT_DFS_woFilter_w2.json"]
    packed = convert_answer(answer, "packed")[0]
    training = _text(render(packed))
    for step in answer.train_messages:
        history = [message_to_json(m) for m in step[:-1]]
        prompt = render_prompt(conversation_from_messages(history, answer.functions))
        assert training.startswith(prompt)
        assert parse_step(training[len(prompt):].split("</s>")[0]).action == step[-1].function_call.name
