"""Constrained action names: whatever the model prefers, the Action line names an offered function."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from tasks.toolbench.constrain import ActionNameConstraint, function_names
from tasks.toolbench.inference.sampling import SamplingConfig, generate_rows
from tasks.toolbench.render import parse_step
from tests.scripted import ScriptedLM

NAMES = ["get_weather_for_weatherapi", "get_weather_by_city_for_weatherapi", "Finish"]


def byte_tokenizer():
    from orchestrator.models.tokens import build_byte_tokenizer

    return build_byte_tokenizer()


def bpe_tokenizer():
    from tasks.toolbench.tokenizer import cached_tokenizer

    texts = [f"\nThought: \nAction: {n}\nAction Input: {{\"city\": \"paris\"}}</s>" for n in NAMES * 20]
    texts += ["get the weather for a city, then search_for_films and get_quotes_for_quotes_api"] * 20
    return cached_tokenizer(texts, vocab_size=300)


@pytest.mark.parametrize("make", [byte_tokenizer, bpe_tokenizer], ids=["byte-level", "bpe"])
def test_every_walk_through_the_allowed_tokens_names_an_offered_function(make):
    tok = make()
    constraint = ActionNameConstraint(tok, NAMES)
    assert constraint.allowed("\nThought: look it up") is None  # the thought is free
    rng = random.Random(0)
    written_names = set()
    for _ in range(60):
        ids = tok("\nThought: look it up\nAction: ", add_special_tokens=False)["input_ids"]
        while True:
            text = tok.decode(ids, skip_special_tokens=False)
            allowed = constraint.allowed(text)
            if allowed is None:
                break
            assert allowed, text
            ids.append(rng.choice(allowed))
        name, rest = text.split("\nAction: ", 1)[1].split("\n", 1)
        assert name in NAMES and rest.startswith("Action Input: "), text  # the tag follows the name
        written_names.add(name)
    assert written_names == set(NAMES)  # every offered name stays reachable, shared prefixes too
    assert constraint.allowed("\nAction: get_weather_for_weatherapi\nAction Input: {") is None  # arguments free
    tag = tok.convert_tokens_to_ids("\nAction Input: ")
    if tag is not None and tag != tok.unk_token_id:  # ToolBench's tokenizer writes each tag as one token
        assert tag in constraint.allowed("\nThought: \nAction: Finish")


class _Adapter(nn.Module):
    """ScriptedLM behind the cache interface generate_rows uses."""

    def __init__(self, scripted: ScriptedLM) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=True):
        out = self.scripted(input_ids, attention_mask, position_ids, past_key_values=cache)
        return SimpleNamespace(logits=out.logits, cache=out.past_key_values)


def test_generate_rows_keeps_a_model_off_a_function_that_is_not_offered():
    tok = byte_tokenizer()
    prompt = "System: weather tools\nUser: weather in paris?\nAssistant: "
    wrong = "\nThought: \nAction: get_weather_for_weathertool\nAction Input: {\"city\": \"paris\"}</s>"
    model = _Adapter(ScriptedLM(tok, {prompt: [wrong]}))
    ids = [tok(prompt, add_special_tokens=False)["input_ids"]]
    cfg = SamplingConfig(max_new_tokens=120, temperature=0.0)
    functions = [{"name": n, "parameters": {}} for n in NAMES]

    free = tok.decode(generate_rows(model, tok, ids, [0], cfg, ("</s>",))[0])
    assert parse_step(free).action == "get_weather_for_weathertool"  # not offered
    constrained = tok.decode(generate_rows(model, tok, ids, [0], cfg, ("</s>",),
                                           [ActionNameConstraint(tok, function_names(functions))])[0])
    # the model's own preference as far as it is offered: the one offered name that shares most of
    # it; the step still parses, whatever the model wanted to write after the name
    assert parse_step(constrained).action == "get_weather_for_weatherapi", constrained
