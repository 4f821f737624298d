"""Synthetic ToolBench trajectories over the 2,490 real API schemas, small enough for a CPU.

Each trajectory is an answer file like the real ones (``answer_generation`` with
``train_messages``), so it goes through the same converter and renderer: a query that names
the values to use, one to ``max_calls`` calls with arguments that satisfy the offered
function schema (every required argument, some optional ones, JSON types as the schema
says), a simulated observation in ToolBench's ``{"error": "", "response": ...}`` shape built
from the API's response sketch, and a ``Finish`` that gives an answer quoting it.

Held out by tool: a fixed share of the 814 tools (chosen by a seeded hash of the tool, not by
position) only ever appears in the held-out split, so held-out scores measure calls to
functions the model never saw. ``query_style`` sets how the query points at the API:
``function`` names the function (the model copies it), ``api`` names the API and the tool in
words (the model must find the matching function in the system prompt's list).
``system_style="short"`` lists compact schemas only; ``toolbench`` uses DFSDT's full system
prompt and ToolBench's schemas (the real text; too long for a tiny model on a CPU).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import string
from dataclasses import dataclass
from typing import Any

from tasks.toolbench.formats import AnswerFile, ApiRecord, FunctionCall, Message, Parameter, ToolDocument
from tasks.toolbench.names import argument_name, standardize
from tasks.toolbench.schema import FINISH_FUNCTION, api_to_function
from tasks.toolbench.toolllama import cut_observation

SPLITS = ("train", "heldout")
QUERY_STYLES = ("function", "api")
SYSTEM_STYLES = ("short", "toolbench")
RENAME_STYLES = ("words", "letters")

SHORT_SYSTEM = "You can call these functions with a function call to actually excute your step."
COMPACT_FINISH = {
    "name": "Finish",
    "parameters": {"properties": {"return_type": {"type": "string"}, "final_answer": {"type": "string"}}, "required": ["return_type"]},
}

_WORD = re.compile(r"^[a-z]{2,12}$")


def name_words(docs: list[ToolDocument]) -> list[str]:
    """The words of the tools' and APIs' standard names (``get``, ``airports``, ``city``...):
    values, response fields and the renamed functions are drawn from these, so the tokens a
    model must copy are as varied as real names."""
    words = set()
    for doc in docs:
        for name in [doc.standard_name, *(standardize(api.name) for api in doc.api_list)]:
            words.update(w for w in name.split("_") if _WORD.match(w))
    return sorted(words)


@dataclass(frozen=True)
class SyntheticSpec:
    """What the generator makes; every field changes the data (part of a cache key)."""

    seed: int = 0
    # Share of tools held out (their trajectories only in the held-out split).
    heldout_tool_fraction: float = 0.1
    # APIs of the chosen tool offered in the system prompt (at most; plus Finish).
    max_offered: int = 2
    # Calls before Finish (1..max_calls).
    max_calls: int = 2
    # APIs with more required parameters than this are never called (long queries).
    max_required: int = 3
    # Chance that each optional parameter is used too.
    optional_rate: float = 0.2
    max_value_chars: int = 8
    max_observation_chars: int = 64
    query_style: str = "function"
    system_style: str = "short"
    # Share of training trajectories whose tool and API names are replaced by random name
    # words (schemas kept): with real names only, a small model recalls the 2,200 training
    # names instead of copying them from the prompt, and cannot call a tool it never saw.
    rename_rate: float = 0.5
    # Chance that each word of a renamed name is fused with another (``search`` + ``inventory``:
    # ``searchinventory``), as real names fuse them (``tweetfeed``): a fused word is cut into
    # several tokens, as held-out names' words often are. Off by default: at 0.3 the tiny model's
    # held-out call steps were no better (docs/toolbench.md, the learnability probes).
    fuse_rate: float = 0.0
    # What a renamed name is made of: ``words`` (real name words, so a model can half-recall a
    # name from their pairs) | ``letters`` (random lowercase strings, which no statistics of the
    # training names predict: only a copy from the prompt writes them).
    rename_style: str = "words"
    # A short thought before each call ("I need <api words>."); off, as in ToolBench's own
    # SFT data (122 of the sample's 124 thoughts empty), to spare a tiny model a second copy.
    thoughts: bool = False

    def __post_init__(self) -> None:
        if self.query_style not in QUERY_STYLES:
            raise ValueError(f"query_style: unknown {self.query_style!r}; choose one of {', '.join(QUERY_STYLES)}")
        if self.system_style not in SYSTEM_STYLES:
            raise ValueError(f"system_style: unknown {self.system_style!r}; choose one of {', '.join(SYSTEM_STYLES)}")
        if not 0.0 < self.heldout_tool_fraction < 1.0:
            raise ValueError("heldout_tool_fraction must lie strictly between 0 and 1")
        if self.rename_style not in RENAME_STYLES:
            raise ValueError(f"rename_style: unknown {self.rename_style!r}; choose one of {', '.join(RENAME_STYLES)}")
        if not 0.0 <= self.rename_rate <= 1.0:
            raise ValueError("rename_rate must lie between 0 and 1")
        if self.max_offered < 1 or self.max_calls < 1:
            raise ValueError("max_offered and max_calls must be at least 1")


def heldout_tool(doc: ToolDocument, spec: SyntheticSpec) -> bool:
    """Whether ``doc`` belongs to the held-out tools: a seeded hash, stable across runs."""
    digest = hashlib.sha256(f"{spec.seed}|{doc.category}|{doc.standard_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < spec.heldout_tool_fraction


def split_tools(docs: list[ToolDocument], spec: SyntheticSpec) -> dict[str, list[ToolDocument]]:
    out: dict[str, list[ToolDocument]] = {"train": [], "heldout": []}
    for doc in docs:
        out["heldout" if heldout_tool(doc, spec) else "train"].append(doc)
    return out


def _json_type(function: dict[str, Any], arg: str) -> str:
    return function["parameters"]["properties"][arg]["type"]


def _value(param: Parameter, json_type: str, rng: random.Random, spec: SyntheticSpec, words: list[str]) -> Any:
    """A value of the schema's JSON type, in the format the RapidAPI type asks for."""
    if json_type == "integer":
        return rng.randint(1, 99)
    if json_type == "boolean":
        return rng.random() < 0.5
    kind = param.kind.value
    if kind == "DATE":
        return f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == "TIME":
        return f"{rng.randint(0, 23):02d}:{rng.choice((0, 15, 30, 45)):02d}"
    if kind == "GEOPOINT":
        return f"{rng.randint(-60, 60)}.{rng.randint(0, 9)},{rng.randint(-150, 150)}.{rng.randint(0, 9)}"
    if kind == "NUMBER":  # a NUMBER the schema calls string (non-exact type text)
        return str(rng.randint(1, 99))
    default = param.default
    if isinstance(default, str) and 0 < len(default) <= spec.max_value_chars and default.isprintable() and rng.random() < 0.3:
        return default
    return rng.choice(words)[: spec.max_value_chars]


def _arguments(api: ApiRecord, function: dict[str, Any], rng: random.Random, spec: SyntheticSpec, words: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    props = function["parameters"]["properties"]
    for param in api.required_parameters:
        args[argument_name(param.name)] = _value(param, _json_type(function, argument_name(param.name)), rng, spec, words)
    for param in api.optional_parameters:
        name = argument_name(param.name)
        if name in props and name not in args and rng.random() < spec.optional_rate:
            args[name] = _value(param, _json_type(function, name), rng, spec, words)
    return args


def _sketch_value(sketch: Any, rng: random.Random, spec: SyntheticSpec, words: list[str]) -> Any:
    if sketch == "int":
        return rng.randint(1, 999)
    if sketch == "float":
        return round(rng.uniform(0, 100), 1)
    if sketch == "bool":
        return rng.random() < 0.5
    return rng.choice(words)[: spec.max_value_chars]


def _observation(api: ApiRecord, rng: random.Random, spec: SyntheticSpec, words: list[str]) -> tuple[str, str]:
    """(observation text, the value the answer quotes)."""
    sketch = api.template_response if isinstance(api.template_response, dict) else {}
    keys = [k for k, v in sketch.items() if isinstance(v, str)][:3] or ["result"]
    response = {k: _sketch_value(sketch.get(k, "str"), rng, spec, words) for k in keys}
    text = json.dumps({"error": "", "response": json.dumps(response)})
    return cut_observation(text, spec.max_observation_chars), str(response[keys[0]])


def _compact(function: dict[str, Any]) -> dict[str, Any]:
    params = function["parameters"]
    props = {k: {"type": v["type"]} for k, v in params["properties"].items()}
    return {"name": function["name"], "parameters": {"properties": props, "required": list(params["required"])}}


def _words(name: str) -> str:
    return standardize(name).replace("_", " ")


def _query(calls: list[tuple[ApiRecord, dict[str, Any], str]], tool_name: str, spec: SyntheticSpec) -> str:
    """``Call 'f_for_t' with 'q' "cats" and 'limit' 5, then ...``. Names and values are quoted so
    that a byte-level BPE cuts them into the same tokens here as in the function list and in
    the JSON the model writes (``'f`` and ``"cats`` split before the word, `` f`` would not):
    a copy is then the same token ids, which a small model learns for words it never saw."""
    parts = []
    for api, args, fname in calls:
        what = f"'{fname}'" if spec.query_style == "function" else f"'{_words(api.api_name)}' of '{tool_name}'"
        values = " and ".join(f"'{k}' {json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
        parts.append(f"{what} with {values}" if values else what)
    verb = "Call" if spec.query_style == "function" else "Use"
    return f"{verb} " + ", then ".join(parts) + "."


def _random_name(rng: random.Random, words: list[str], most: int, fuse_rate: float, style: str = "words") -> str:
    if style == "letters":
        parts = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8)))
                 for _ in range(rng.randint(1, most))]
        return " ".join(parts).title()
    parts = rng.sample(words, rng.randint(1, most))
    return " ".join(w + rng.choice(words) if fuse_rate and rng.random() < fuse_rate else w for w in parts).title()


def _renamed(doc: ToolDocument, rng: random.Random, words: list[str], fuse_rate: float = 0.0,
             style: str = "words") -> ToolDocument:
    tool_name = _random_name(rng, words, 2, fuse_rate, style)
    apis = tuple(dataclasses.replace(api, name=_random_name(rng, words, 3, fuse_rate, style)) for api in doc.api_list)
    return dataclasses.replace(doc, tool_name=tool_name, standard_name=standardize(tool_name), api_list=apis)


def make_trajectory(doc: ToolDocument, rng: random.Random, spec: SyntheticSpec, index: int, split: str,
                    words: list[str]) -> AnswerFile:
    """One trajectory over the APIs of ``doc`` (renamed at ``rename_rate`` in training)."""
    if split == "train" and rng.random() < spec.rename_rate:
        doc = _renamed(doc, rng, words, spec.fuse_rate, spec.rename_style)
    records = doc.records()
    callable_apis = [a for a in records if len(a.required_parameters) <= spec.max_required]
    offered = rng.sample(records, min(spec.max_offered, len(records)))
    targets_pool = [a for a in offered if a in callable_apis] or callable_apis[:1] or records[:1]
    if targets_pool[0] not in offered:
        offered[0] = targets_pool[0]
    functions = [api_to_function(a, doc.standard_name) for a in offered]
    by_key = {a.api_name: f for a, f in zip(offered, functions)}
    n_calls = rng.randint(1, spec.max_calls)
    targets = [rng.choice(targets_pool) for _ in range(n_calls)]
    calls = [(api, _arguments(api, by_key[api.api_name], rng, spec, words), by_key[api.api_name]["name"]) for api in targets]
    query = _query(calls, doc.tool_name, spec)

    if spec.system_style == "short":
        offered_functions = [_compact(f) for f in functions] + [COMPACT_FINISH]
        system = SHORT_SYSTEM
        user = f"\n{query}\nBegin!\n"
    else:
        from tasks.toolbench.inference.prompts import initial_messages, task_description

        offered_functions = functions + [FINISH_FUNCTION]
        system_msg, user_msg = initial_messages(task_description([(doc.standard_name, doc.tool_description)]), query)
        system, user = system_msg["content"], user_msg["content"]

    history = [Message("system", system), Message("user", user)]
    train_messages = []
    quoted = ""
    for api, args, fname in calls:
        thought = f"I need {_words(api.api_name)}." if spec.thoughts else None
        history.append(Message("assistant", thought, FunctionCall(fname, json.dumps(args))))
        train_messages.append(tuple(history))
        observation, quoted = _observation(api, rng, spec, words)
        history.append(Message("function", observation, name=fname))
    answer = json.dumps({"return_type": "give_answer", "final_answer": f'The result is "{quoted}".'})
    history.append(Message("assistant", "I have the answer." if spec.thoughts else None, FunctionCall("Finish", answer)))
    train_messages.append(tuple(history))
    return AnswerFile(
        file=f"synthetic/{split}/{index}_synthetic_DFS_woFilter_w2.json",
        query=query,
        valid_data=True,
        finish_type="give_answer",
        final_answer=answer,
        query_count=n_calls + 1,
        total_tokens=None,
        functions=tuple(offered_functions),
        train_messages=tuple(train_messages),
    )


def generate(docs: list[ToolDocument], split: str, n: int, spec: SyntheticSpec = SyntheticSpec()) -> list[AnswerFile]:
    """``n`` trajectories of ``split`` (train or heldout), the same for the same spec and n."""
    if split not in SPLITS:
        raise ValueError(f"split: unknown {split!r}; choose one of {', '.join(SPLITS)}")
    tools = split_tools(sorted(docs, key=lambda d: (d.category, d.standard_name)), spec)[split]
    if not tools:
        raise ValueError(f"no tools in the {split} split")
    rng = random.Random(f"toolbench-synthetic|{spec.seed}|{split}")
    words = name_words(tools)
    return [make_trajectory(rng.choice(tools), rng, spec, i, split, words) for i in range(n)]
