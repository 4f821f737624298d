"""A deterministic judge: an answer is Solved when it states what the APIs returned.

No LLM, no randomness: the same answers get the same labels on every machine, each with
one line saying why. It is a floor and a cross-check for the LLM judge, not a replacement:
it cannot tell a paraphrase from a hallucination, only whether the answer repeats values
that the tools actually returned.

The rule (``check_answer_status``; the second look, ``parse_answer_status``, applies the
same rule to the whole chain, which is all it reads in the first place):

- the *target* APIs are the query's relevant APIs when known (``EvalAnswer.relevant_apis``),
  else every API the answer's chain called;
- an API's *values* are the leaf values of its responses on the chain (JSON or Python-literal
  bodies, else sentences of the text), leaving out error fields (``message``, ``error``,
  ``status``...), short or common words, and anything the query or the call's own arguments
  already contain (an answer that echoes the question proves nothing);
- an API is *covered* when the final answer contains one of its values;
- all targets covered: Solved; some: Unsure; none: Unsolved.

(Answers without a Finish call, empty or given up never reach a judge: the scoring code
labels them Unsolved first, as ToolEval does.)
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

from tasks.toolbench.tooleval.judges.base import Judge, Verdict
from tasks.toolbench.tooleval.records import FINISH, AnswerStatus, EvalAnswer, TaskStatus

# Keys of error envelopes and response metadata, whose values are never facts to report.
ENVELOPE_KEYS = frozenset({"message", "error", "errors", "status", "statuscode", "status_code", "code",
                           "title", "type", "traceid", "detail", "success", "ts", "device_type"})
MIN_CHARS = 4
MIN_LETTERS_ONLY = 5
WHOLE_STRING_CHARS = 200
PIECE_CHARS = 20
MAX_BODY_CHARS = 200_000
RANK = {AnswerStatus.UNSOLVED.value: 0, AnswerStatus.UNSURE.value: 1, AnswerStatus.SOLVED.value: 2}


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def parse_body(body: str) -> Any:
    """A response body as data: JSON, else a Python literal (ToolBench often stores repr()),
    else, for a literal cut short (answer files truncate observations), its (key, value)
    tokens, else the text itself."""
    text = body.strip()
    if len(text) > MAX_BODY_CHARS:
        return text
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, str) and value.strip() != text:
            return parse_body(value)  # a JSON string holding JSON
        return value
    if text[:1] in "[{":
        return _literal_tokens(text)
    return text


_TOKEN = re.compile(r"""(?P<q>["'])(?P<s>(?:\\.|(?!(?P=q)).)*)(?P=q)(?P<key>\s*:)?"""
                    r"""|(?P<num>(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]))""", re.DOTALL)


def _literal_tokens(text: str) -> dict[str, list[Any]]:
    """The values of a truncated JSON / Python literal, grouped under the last key seen."""
    groups: dict[str, list[Any]] = {}
    key = ""
    for match in _TOKEN.finditer(text):
        if match.group("num") is not None:
            groups.setdefault(key, []).append(float(match.group("num")))
        elif match.group("key"):
            key = match.group("s")
        else:
            groups.setdefault(key, []).append(match.group("s").replace("\\'", "'").replace('\\"', '"'))
    return groups


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            if str(k).lower() not in ENVELOPE_KEYS:
                yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        if abs(value) >= 10:
            yield str(int(value)) if float(value).is_integer() else str(value)
    else:
        text = str(value)
        if len(text) <= WHOLE_STRING_CHARS:
            yield text
        else:
            for piece in re.split(r"(?<=[.!?;])\s+|\n+", text):
                if len(piece.strip()) >= PIECE_CHARS:
                    yield piece.strip()[:WHOLE_STRING_CHARS]


def salient(value: str) -> bool:
    """Long enough not to turn up in an answer by chance."""
    if len(value) < MIN_CHARS:
        return False
    if value.replace(" ", "").isalpha() and len(value) < MIN_LETTERS_ONLY:
        return False
    return any(ch.isalnum() for ch in value)


def observed_values(body: str, known: str) -> list[str]:
    """The salient values of one response body that ``known`` (query and arguments) lacks."""
    values = []
    seen = set()
    for leaf in _leaves(parse_body(body)):
        value = normalize(leaf)
        if value in seen or not salient(value) or value in known:
            continue
        seen.add(value)
        values.append(value)
    return values


def states(answer_text: str, value: str) -> bool:
    """``value`` occurs in the answer and is not part of a longer word or number."""
    return re.search(r"(?<![0-9a-z])" + re.escape(value) + r"(?![0-9a-z])", answer_text) is not None


@dataclass(frozen=True)
class Coverage:
    """Which target APIs the answer states a value of, with one example value each."""

    targets: tuple[str, ...]
    covered: dict[str, str]
    empty: tuple[str, ...]
    from_relevant: bool

    @property
    def status(self) -> str:
        if self.targets and len(self.covered) == len(self.targets):
            return AnswerStatus.SOLVED.value
        if self.covered:
            return AnswerStatus.UNSURE.value
        return AnswerStatus.UNSOLVED.value

    @property
    def fraction(self) -> float:
        return len(self.covered) / len(self.targets) if self.targets else 0.0

    def explain(self) -> str:
        source = "relevant APIs" if self.from_relevant else "APIs called (relevant APIs unknown)"
        if not self.targets:
            return f"{self.status}: the chain calls no API; no value to state"
        stated = "; ".join(f"{api}: {_short(v)}" for api, v in self.covered.items())
        missing = [api for api in self.targets if api not in self.covered]
        line = f"{self.status}: states values of {len(self.covered)}/{len(self.targets)} {source}"
        if stated:
            line += f" ({stated})"
        if missing:
            notes = [f"{api} (returned no value)" if api in self.empty else api for api in missing]
            line += "; nothing from " + ", ".join(notes)
        return line


def coverage(answer: EvalAnswer) -> Coverage:
    calls = [c for c in answer.calls if c.name != FINISH]
    from_relevant = answer.relevant_apis is not None
    targets = tuple(answer.relevant_apis) if from_relevant else tuple(dict.fromkeys(c.name for c in calls))
    text = normalize(answer.final_text)
    query = normalize(answer.query)
    covered: dict[str, str] = {}
    with_values: set[str] = set()
    for call in calls:
        if call.name not in targets:
            continue
        values = observed_values(call.body, query + " " + normalize(call.arguments))
        if values:
            with_values.add(call.name)
        if call.name in covered:
            continue
        for value in values:
            if states(text, value):
                covered[call.name] = value
                break
    ordered = {api: covered[api] for api in targets if api in covered}
    empty = tuple(api for api in targets if api not in with_values)
    return Coverage(targets=targets, covered=ordered, empty=empty, from_relevant=from_relevant)


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


class RulesJudge(Judge):
    """Labels from :func:`coverage`; see the module docstring for the rule."""

    name = "rules"

    def check_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        found = coverage(answer)
        return Verdict(found.status, found.explain())

    def parse_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        found = coverage(answer)
        return Verdict(found.status, "second look, same rule: " + found.explain())

    def check_task_solvable(self, answer: EvalAnswer, run: int) -> Verdict:
        tools = [t for t in answer.tool_names if t != FINISH]
        if answer.relevant_apis is None:
            if tools:
                return Verdict(TaskStatus.SOLVABLE.value,
                               f"Solvable: {len(tools)} tools available, relevant APIs unknown "
                               "(ToolBench generated the query from its tools)")
            return Verdict(TaskStatus.UNSOLVABLE.value, "Unsolvable: no tool available")
        missing = [api for api in answer.relevant_apis if api not in tools]
        if missing:
            return Verdict(TaskStatus.UNSOLVABLE.value,
                           f"Unsolvable: relevant APIs {missing} are not among the available tools")
        return Verdict(TaskStatus.SOLVABLE.value,
                       f"Solvable: all {len(answer.relevant_apis)} relevant APIs are available")

    def select_better_answer(self, shown: tuple[EvalAnswer, EvalAnswer], run: int) -> Verdict:
        found = [coverage(a) for a in shown]
        keys = [(RANK[f.status], f.fraction, -a.total_steps) for f, a in zip(found, shown)]
        summary = "; ".join(f"answer_{i}: {f.status}, {len(f.covered)}/{len(f.targets)} covered, "
                            f"{a.total_steps} steps" for i, (f, a) in enumerate(zip(found, shown)))
        if keys[0] == keys[1]:
            return Verdict(None, f"tie: {summary}")
        best = 0 if keys[0] > keys[1] else 1
        return Verdict(str(best), f"answer_{best} is better (status, coverage, fewer steps): {summary}")
