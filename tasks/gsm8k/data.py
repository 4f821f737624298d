"""GSM8K's data: ``openai/gsm8k`` (config ``main``) from the hub when it answers, else the JSONL
files ``train.jsonl`` / ``test.jsonl`` of a local folder (``{"question", "answer"}`` per line).
The answer's last ``####`` holds the number the reward checks."""

from __future__ import annotations

import json
import os
import re

from orchestrator.task import Problem

SPLITS = ("train", "test")

NUMBER_TEXT = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")


def parse_answer(answer_text: str) -> float:
    """The number after the last ``####`` of a GSM8K answer, commas (and a ``$``) dropped.

    ``"... #### 1,080"`` -> 1080.0. Raises ValueError when there is no such number.
    """
    head, sep, tail = answer_text.rpartition("####")
    if not sep:
        raise ValueError(f"no '####' in answer {answer_text[-60:]!r}")
    text = tail.strip().replace(",", "").replace("$", "").strip()
    if not NUMBER_TEXT.fullmatch(text):
        raise ValueError(f"not a number after '####': {tail.strip()!r}")
    return float(text)


def make_problem(question: str, answer_text: str) -> Problem:
    return Problem(question=question.strip(), answer=parse_answer(answer_text), meta={"solution": answer_text})


def read_jsonl(path: str | os.PathLike[str]) -> list[Problem]:
    """``{"question", "answer"}`` lines; a line that does not parse raises ValueError naming FILE:LINE."""
    problems = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                problems.append(make_problem(row["question"], row["answer"]))
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path}:{line_no}: cannot read a GSM8K problem ({err})") from None
    return problems


def load_hub(dataset: str, config: str, split: str) -> list[Problem]:
    from datasets import load_dataset

    return [make_problem(row["question"], row["answer"]) for row in load_dataset(dataset, config, split=split)]


