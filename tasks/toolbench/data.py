"""The functions a ToolBench task calls: trajectories in, demonstrations and held-out cases out.

    trajectories = load_trajectories("synthetic", "train", n=20000)
    demos = to_demonstrations(trajectories, format="packed", template="toolllama")
    cases = heldout_cases(load_trajectories("synthetic", "heldout", n=300))
    scores = [score_step(generate(case.prompt), case.reference, case.functions) for case in cases]
    aggregate(scores)     # {"eval/parses": ..., "eval/action_right": ..., ...}

``data``: ``sample`` (ToolBench's 15 example trees, 13 valid), ``synthetic``
(:mod:`.synthetic` over the 2,490 StableToolBench APIs, or over a ``toolenv/tools`` folder),
``full`` (``source`` = an ``answer/`` folder of the release, one answer file, or
``toolllama_G123_dfs_train.json``). Splits are by tool: a held-out trajectory uses at least
one tool no training trajectory uses.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from tasks.toolbench.conversation import Conversation
from tasks.toolbench.convert import FORMATS, convert_answers, tools_of
from tasks.toolbench.formats import AnswerFile, find_answer_files, read_answer_file, read_tool_root
from tasks.toolbench.metrics import HeldoutCase
from tasks.toolbench.metrics import heldout_cases as _cases
from tasks.toolbench.paths import toolbench_sample_dir
from tasks.toolbench.render import Demonstration, make_template
from tasks.toolbench.sft_source import read_sft_as_answers
from tasks.toolbench.synthetic import SPLITS, SyntheticSpec, generate

log = logging.getLogger(__name__)

DATA = ("sample", "synthetic", "full")
DEFAULT_SYNTHETIC_SIZES = {"train": 20000, "heldout": 300}


def answer_tools(answer: AnswerFile) -> list[str]:
    system = answer.train_messages[0][0].content if answer.train_messages else ""
    return tools_of(system or "", answer.functions)


def _heldout_tool(tool: str, fraction: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}|{tool}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_by_tool(answers: list[AnswerFile], split: str, heldout_fraction: float, seed: int = 0) -> list[AnswerFile]:
    """An answer is held out when any of its tools is (a seeded hash per tool name)."""
    if split not in SPLITS:
        raise ValueError(f"split: unknown {split!r}; choose one of {', '.join(SPLITS)}")
    valid = [a for a in answers if a.valid_data]
    held = [a for a in valid if any(_heldout_tool(t, heldout_fraction, seed) for t in answer_tools(a))]
    chosen = held if split == "heldout" else [a for a in valid if a not in held]
    if not chosen:
        log.warning("the %s split of %d answers is empty (heldout_fraction=%s, seed=%s)", split, len(valid), heldout_fraction, seed)
    return chosen


def read_answers(source: str | os.PathLike[str]) -> list[AnswerFile]:
    """An answer folder (all ``*DFS_woFilter_w2*.json`` below it), one answer file, or an SFT file."""
    path = Path(source)
    if path.is_dir():
        return [read_answer_file(f) for f in find_answer_files(path)]
    with open(path, encoding="utf-8") as f:
        first = f.read(64).lstrip()[:1]
    return read_sft_as_answers(path) if first == "[" else [read_answer_file(path)]


@functools.lru_cache(maxsize=4)
def _tool_documents(tools: str | None) -> tuple[Any, ...]:
    """The documents the generator draws from (read once per process and folder)."""
    if tools is not None:
        return tuple(read_tool_root(tools).values())
    from tasks.toolbench.tooldocs import build_tool_documents, read_queries, stabletoolbench_query_files

    return tuple(build_tool_documents(read_queries(stabletoolbench_query_files())))


def load_trajectories(
    data: str,
    split: str,
    *,
    source: str | os.PathLike[str] | None = None,
    n: int | None = None,
    synthetic: SyntheticSpec | None = None,
    tools: str | os.PathLike[str] | None = None,
    heldout_fraction: float = 0.1,
    seed: int = 0,
) -> list[AnswerFile]:
    """Answer files (real or generated) of one split.

    ``source``: for ``full``, where the release lies (required); for ``sample``, another
    ``data_example/answer`` folder. ``n``: how many synthetic trajectories (default 20,000
    train, 300 held out); a cap for the others. ``tools``: a ``toolenv/tools`` folder for the
    synthetic generator (default: the documents rebuilt from StableToolBench's queries).
    """
    if data not in DATA:
        raise ValueError(f"data: unknown {data!r}; choose one of {', '.join(DATA)}")
    if data == "synthetic":
        spec = synthetic or SyntheticSpec(seed=seed)
        return generate(list(_tool_documents(str(tools) if tools is not None else None)), split, n if n is not None else DEFAULT_SYNTHETIC_SIZES[split], spec)
    if data == "full" and source is None:
        raise ValueError("data=full needs source: the release's answer/ folder or toolllama_G123_dfs_train.json")
    answers = read_answers(source if source is not None else toolbench_sample_dir() / "answer")
    chosen = split_by_tool(answers, split, heldout_fraction, seed)
    return chosen[:n] if n is not None else chosen


def to_conversations(trajectories: list[AnswerFile], format: str = "packed", keep_thoughts: bool = True) -> list[Conversation]:
    if format not in FORMATS:
        raise ValueError(f"format: unknown {format!r}; choose one of {', '.join(FORMATS)}")
    return convert_answers(trajectories, format, keep_thoughts)


def to_demonstrations(
    trajectories: list[AnswerFile],
    format: str = "packed",
    template: str = "toolllama",
    keep_thoughts: bool = True,
    tokenizer: Any = None,
    **template_options: Any,
) -> list[Demonstration]:
    """Training demonstrations: ``(source, text)`` spans, the loss on ``model`` spans."""
    tpl = make_template(template, tokenizer, **template_options)
    return [tpl.demonstration(c) for c in to_conversations(trajectories, format, keep_thoughts)]


def heldout_cases(
    trajectories: list[AnswerFile],
    template: str = "toolllama",
    keep_thoughts: bool = True,
    tokenizer: Any = None,
    limit: int | None = None,
    **template_options: Any,
) -> list[HeldoutCase]:
    """One case per step of each trajectory (its context rendered as at training)."""
    tpl = make_template(template, tokenizer, **template_options)
    cases = _cases(to_conversations(trajectories, "packed", keep_thoughts), tpl)
    return cases[:limit] if limit is not None else cases


def write_answer_files(trajectories: list[AnswerFile], root: str | os.PathLike[str]) -> list[Path]:
    """Generated trajectories as ToolBench answer files (``<root>/<split>/<id>_..._w2.json``)."""
    from tasks.toolbench.formats.answers import answer_to_json

    paths = []
    for answer in trajectories:
        path = Path(root) / Path(answer.file).relative_to(Path(answer.file).parts[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(answer_to_json(answer), indent=2, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths
