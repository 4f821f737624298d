"""GSM8K: grade-school word problems solved with a sandboxed Python interpreter.

The model writes a program between ``<request><PythonInterpreter>`` and ``<call>``; the
interpreter (orchestrator/tools/python_interpreter.py, a bubblewrap sandbox in a Ray tool
actor) runs it and answers with what it printed; the model then writes
``Result=<number><submit>``. Reward 1 when that number, in the model's own text, is within
``tolerance`` of the number after ``####`` in the GSM8K answer (the seed's rule).

Data: ``openai/gsm8k`` (config ``main``) from the hub when it answers, else the JSONL files
``train.jsonl`` / ``test.jsonl`` in ``local_dir`` (``{"question", "answer"}`` per line).
Training draws from the train split, evaluation from the test split. For a byte-level
model (``byte_context`` set: model=tiny) only problems with short prompts are used, in both
splits: its runs are a pipeline check, not a GSM8K score (docs/gsm8k.md).

Demonstrations for the tiny model are built from the ``<<48/2=24>>`` calculator
annotations of the training answers: each annotation becomes one assignment, and a number
that repeats an earlier result becomes that result's variable::

    a=48/2
    b=48+a
    print(b)

What ``print`` shows is computed here by the same arithmetic Python does (an AST walk, so
the demonstrations cost no sandbox runs); tests/test_gsm8k.py checks it against the sandbox.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import math
import operator
import os
import random
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.hub import hub_reachable
from orchestrator.env import PROTOCOL_TOKENS
from orchestrator.episode import Episode
from orchestrator.task import Demonstration, Problem, Task
from orchestrator.tools.calculator import format_number

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("auto", "hub", "local")
SPLITS = ("train", "test")

# ---------------------------------------------------------------- data

_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_NUMBER_TEXT = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")


def parse_answer(answer_text: str) -> float:
    """The number after the last ``####`` of a GSM8K answer, commas (and a ``$``) dropped.

    ``"... #### 1,080"`` -> 1080.0. Raises ValueError when there is no such number.
    """
    head, sep, tail = answer_text.rpartition("####")
    if not sep:
        raise ValueError(f"no '####' in answer {answer_text[-60:]!r}")
    text = tail.strip().replace(",", "").replace("$", "").strip()
    if not _NUMBER_TEXT.fullmatch(text):
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


def resolve_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as given when absolute, else against the working directory, else against the
    repository (Ray workers do not share the driver's working directory)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    for base in (Path.cwd(), REPO_ROOT):
        if (base / p).exists():
            return (base / p).resolve()
    return (Path.cwd() / p).resolve()


# ---------------------------------------------------------------- programs from annotations

_ANNOTATION = re.compile(r"<<([^<>]*)=([^<>=]*)>>")
_EXPR_TOKEN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+|[-+*/()])")
_QUESTION_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?|\.\d+")
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def variable_names() -> Iterator[str]:
    """a, b, ..., z, a1, b1, ... (l and o are skipped: they read as 1 and 0)."""
    letters = [c for c in string.ascii_lowercase if c not in "lo"]
    yield from letters
    n = 1
    while True:
        yield from (f"{c}{n}" for c in letters)
        n += 1


def literal(token: str) -> str:
    """A number as the annotation wrote it, as a valid Python literal (``05`` -> ``5``, ``.5`` -> ``0.5``)."""
    if "." not in token:
        return str(int(token))
    whole, frac = token.split(".", 1)
    return f"{int(whole or '0')}.{frac or '0'}"


def run_arithmetic(program: str, max_exponent: int = 100) -> str | None:
    """What Python prints for a program of ``name=arithmetic`` lines and one final
    ``print(name)``; None for anything else, or for arithmetic Python would reject.

    Same operators and number types as Python, so ``str(value)`` is exactly what the
    sandbox prints; an AST walk, never ``exec``.
    """
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return None
    env: dict[str, int | float] = {}

    def walk(node: ast.AST) -> int | float:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.Name) and node.id in env:
            return env[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > max_exponent:
                raise ArithmeticError("exponent too large")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        raise ArithmeticError(f"unsupported: {ast.dump(node)[:60]}")

    *assignments, last = tree.body or [None]
    try:
        for stmt in assignments:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
                return None
            env[stmt.targets[0].id] = walk(stmt.value)
        if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and isinstance(last.value.func, ast.Name)
                and last.value.func.id == "print" and len(last.value.args) == 1 and not last.value.keywords):
            return None
        value = walk(last.value.args[0])
    except (ArithmeticError, ValueError, OverflowError):  # ZeroDivisionError is an ArithmeticError
        return None
    if isinstance(value, complex) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return f"{value}\n"


@dataclass(frozen=True)
class Annotation:
    expression: str
    result: float


def annotations(solution: str) -> list[Annotation] | None:
    """The ``<<expression=result>>`` steps of a GSM8K answer; None when one does not parse."""
    steps = []
    for expression, result in _ANNOTATION.findall(solution):
        try:
            steps.append(Annotation(expression, float(result.replace(",", "").strip())))
        except ValueError:
            return None
    return steps


def _numbers_in(text: str) -> set[float]:
    return {float(n.replace(",", "")) for n in _QUESTION_NUMBER.findall(text)}


def _program_lines(steps: list[Annotation], link: bool) -> list[tuple[str, str]] | None:
    """(variable, expression) per step; with ``link``, a number equal to an earlier result
    becomes that result's variable (the latest one)."""
    names = variable_names()
    lines: list[tuple[str, str]] = []
    results: list[tuple[float, str]] = []
    for step in steps:
        pieces, pos = [], 0
        expression = step.expression.replace(",", "").rstrip()
        while pos < len(expression):
            match = _EXPR_TOKEN.match(expression, pos)
            if match is None:
                return None
            token, pos = match.group(1), match.end()
            if token[0].isdigit() or token[0] == ".":
                value = float(token)
                earlier = [name for result, name in results if result == value] if link else []
                token = earlier[-1] if earlier else literal(token)
            pieces.append(token)
        if not pieces:
            return None
        name = next(names)
        lines.append((name, "".join(pieces)))
        results.append((step.result, name))
    return lines


def annotation_program(solution: str, tolerance: float = 0.1) -> tuple[str, str] | None:
    """A program built from the solution's annotations and what it prints, or None.

    The program prints the last step whose value is the final answer (within ``tolerance``);
    the steps after it are dropped. Linking numbers to earlier variables can change a
    result when an annotation was rounded (``<<2/3=0.67>>``): then the literal numbers are
    used instead.
    """
    steps = annotations(solution)
    if not steps:
        return None
    answer = parse_answer(solution)
    for link in (True, False):
        lines = _program_lines(steps, link)
        if lines is None:
            return None
        for end in range(len(lines), 0, -1):
            body = "\n".join(f"{name}={expr}" for name, expr in lines[:end])
            program = f"{body}\nprint({lines[end - 1][0]})"
            printed = run_arithmetic(program)
            if printed is not None and _NUMBER_TEXT.fullmatch(printed.strip()) and abs(float(printed) - answer) < tolerance:
                return program, printed
    return None


# ---------------------------------------------------------------- prompt

# Two worked examples in the protocol, for hub models (the tool's answer is exactly what
# the program prints; tests/test_gsm8k.py runs them in the sandbox).
FEW_SHOT = """\
Q: A baker made 36 muffins. She sold 2/3 of them in the morning and gave 5 of the rest to a neighbour. How many muffins does she have left?

<request><{tool}>
muffins = 36
sold = muffins * 2 // 3
left = muffins - sold - 5
print(left)
<call>7
<response>

Result=7<submit>

Q: Tom buys 3 notebooks at $4.50 each and a pen for $2. He pays with a $20 bill. How much change does he get?

<request><{tool}>
notebooks = 3 * 4.50
total = notebooks + 2
change = 20 - total
print(change)
<call>4.5
<response>

Result=4.5<submit>

"""


def question_prompt(question: str) -> str:
    return f"Q: {question}\n\n"


# ---------------------------------------------------------------- reward

# The seed's pattern, plus thousands separators (GSM8K's own answers use them: 1,080).
RESULT_RE = re.compile(r"Result\s*=\s*(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)\s*<submit>")


def result_reward(model_text: str, answer: float, tolerance: float) -> float:
    """1.0 when the first ``Result=<number><submit>`` is within ``tolerance`` of ``answer``."""
    match = RESULT_RE.search(model_text)
    if match is None:
        return 0.0
    return 1.0 if abs(float(match.group(1).replace(",", "")) - float(answer)) < tolerance else 0.0


# ---------------------------------------------------------------- the task


class GSM8KTask(Task):
    """Word problems, a Python interpreter, reward on the model's ``Result=``."""

    name = "gsm8k"

    def __init__(
        self,
        source: str = "auto",
        hub_dataset: str = "openai/gsm8k",
        hub_config: str = "main",
        local_dir: str = "../shared/data/gsm8k",
        tool_name: str = "PythonInterpreter",
        tool_timeout_s: float = 2.0,
        tool_max_output_chars: int = 200,
        sandbox_workers: int = 0,
        isolation: str = "auto",
        tolerance: float = 0.1,
        num_eval: int | None = 32,
        eval_seed: int = 1234,
        byte_context: int | None = None,
        max_prompt_bytes: int = 128,
        demo_tool_frac: float = 0.9,
        demo_direct_correct_frac: float = 0.1,
        demo_practice_frac: float = 0.0,
    ) -> None:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if num_eval is not None and num_eval < 1:
            raise ValueError(f"num_eval must be >= 1 or null (the whole test split), got {num_eval}")
        if byte_context is not None and not 0 < max_prompt_bytes < byte_context:
            raise ValueError(f"max_prompt_bytes ({max_prompt_bytes}) must be in (0, byte_context={byte_context})")
        self.source = source
        self.hub_dataset = hub_dataset
        self.hub_config = hub_config
        self.local_dir = local_dir
        self.tool_name = tool_name
        self.tool_timeout_s = tool_timeout_s
        self.tool_max_output_chars = tool_max_output_chars
        self.sandbox_workers = sandbox_workers
        self.isolation = isolation
        self.tolerance = tolerance
        self.num_eval = num_eval
        self.eval_seed = eval_seed
        self.byte_context = byte_context
        self.max_prompt_bytes = max_prompt_bytes
        self.demo_tool_frac = demo_tool_frac
        self.demo_direct_correct_frac = demo_direct_correct_frac
        self.demo_practice_frac = demo_practice_frac
        self._source: str | None = None  # "hub" or "local", once decided
        self._splits: dict[str, list[Problem]] = {}
        self._eval: list[Problem] | None = None

    # ------------------------------------------------------------ data

    def split(self, name: str) -> list[Problem]:
        """The problems of ``train`` or ``test`` that :meth:`fits` keeps (all of them for hub models)."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        if name not in self._splits:
            problems = self._load(name)
            kept = [p for p in problems if self.fits(p)]
            if len(kept) < len(problems):
                log.info("gsm8k %s: %d of %d problems have prompts of at most %d bytes (byte-level model)",
                         name, len(kept), len(problems), self.max_prompt_bytes)
            if not kept:
                raise ValueError(f"gsm8k {name}: no prompt has at most max_prompt_bytes={self.max_prompt_bytes} bytes")
            self._splits[name] = kept
        return self._splits[name]

    def _load(self, split: str) -> list[Problem]:
        if self._source is None:
            self._source = self.source if self.source != "auto" else "hub" if hub_reachable() else "local"
        if self._source == "hub":
            log.info("gsm8k %s: from the hub (%s, %s)", split, self.hub_dataset, self.hub_config)
            try:
                return load_hub(self.hub_dataset, self.hub_config, split)
            except Exception as err:  # noqa: BLE001 - auto falls back to the local files, loudly
                if self.source == "hub":
                    raise
                log.warning("gsm8k: the hub answered but loading %s failed (%s); using %s", self.hub_dataset, err,
                            self.local_dir)
                self._source = "local"
        path = resolve_dir(self.local_dir) / f"{split}.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"gsm8k: {path} not found (task.spec.local_dir={self.local_dir!r}; the hub "
                                    f"{'was not asked' if self.source == 'local' else 'did not answer'})")
        log.info("gsm8k %s: from %s", split, path)
        return read_jsonl(path)

    def fits(self, problem: Problem) -> bool:
        """For a byte-level model (``byte_context`` set): the bare prompt has at most
        ``max_prompt_bytes`` tokens. Hub models keep every problem."""
        if self.byte_context is None:
            return True
        return self.num_tokens(self.prompt(problem, few_shot=False)) <= self.max_prompt_bytes

    def num_tokens(self, text: str) -> int:
        """Tokens of ``text`` for a byte-level model: one per byte, one per protocol marker or tool tag."""
        n = len(text.encode())
        for marker in (*PROTOCOL_TOKENS, f"<{self.tool_name}>"):
            n -= text.count(marker) * (len(marker.encode()) - 1)
        return n

    def eval_problems(self) -> list[Problem]:
        """``num_eval`` test problems drawn by ``eval_seed`` (in file order), or all of them."""
        if self._eval is None:
            test = self.split("test")
            if self.num_eval is None or self.num_eval >= len(test):
                self._eval = list(test)
            else:
                picked = sorted(random.Random(self.eval_seed).sample(range(len(test)), self.num_eval))
                self._eval = [test[i] for i in picked]
        return self._eval

    def train_problems(self, seed: int) -> Iterator[Problem]:
        """The train split, shuffled by ``seed``, reshuffled every pass."""
        train = self.split("train")
        rng = random.Random(seed)
        order = list(range(len(train)))
        while True:
            rng.shuffle(order)
            for i in order:
                yield train[i]

    # ------------------------------------------------------------ prompt

    def prompt(self, problem: Problem, few_shot: bool) -> str:
        prefix = FEW_SHOT.format(tool=self.tool_name) if few_shot else ""
        return prefix + question_prompt(problem.question)

    # ------------------------------------------------------------ tools

    def tools(self) -> list[dict[str, Any]]:
        return [
            {
                "_target_": "orchestrator.tools.python_interpreter.PythonInterpreter",
                "name": self.tool_name,
                "timeout_s": self.tool_timeout_s,
                "max_output_chars": self.tool_max_output_chars,
                "num_workers": self.sandbox_workers,
                "isolation": self.isolation,
            }
        ]

    # ------------------------------------------------------------ reward

    def reward(self, episode: Episode) -> float:
        return result_reward(episode.model_text(), episode.meta["answer"], self.tolerance)

    # ------------------------------------------------------------ warm start

    def _guess(self, problem: Problem, rng: random.Random) -> str:
        """A direct answer as a model without the tool gives one: a number from the question
        or one near the truth; right with probability ``demo_direct_correct_frac``."""
        answer = float(problem.answer)
        if rng.random() < self.demo_direct_correct_frac:
            return format_number(answer, 2)
        given = sorted(_numbers_in(problem.question) - {answer})
        if given and rng.random() < 0.5:
            return format_number(rng.choice(given), 2)
        off = rng.choice([-1, 1]) * max(1.0, round(abs(answer) * rng.choice([0.1, 0.2, 0.5, 1.0])))
        return format_number(answer + off, 2)

    def demonstrations(self, n: int, rng: random.Random) -> list[Demonstration]:
        """``n`` decision demos (the annotation program with probability ``demo_tool_frac``,
        else a direct guess), plus ``demo_practice_frac * n`` practice demos: the tool's
        mechanics (write the program, copy what it printed) with the decision to call given
        as context. Only training problems whose annotations make a program that prints the
        answer, and whose whole demo fits ``byte_context``, are used.
        """
        opener = f"<request><{self.tool_name}>"
        usable = []
        for p in self.split("train"):
            made = annotation_program(p.meta["solution"], self.tolerance)
            if made is None:
                continue
            program, printed = made
            prompt = self.prompt(p, few_shot=False)
            call, tool, answer = f"{program}<call>", f"{printed}<response>", f"\n\nResult={printed.strip()}<submit>"
            if self.byte_context is None or self.num_tokens(prompt + opener + call + tool + answer) + 1 <= self.byte_context:
                usable.append((p, prompt, call, tool, answer))
        if not usable:
            raise ValueError("gsm8k: no training problem gives a demonstration that fits byte_context")
        log.info("gsm8k demonstrations: %d of %d training problems have a usable program",
                 len(usable), len(self.split("train")))
        demos: list[Demonstration] = []
        for i in range(n + int(self.demo_practice_frac * n)):
            p, prompt, call, tool, answer = rng.choice(usable)
            if i >= n:  # practice: the decision tokens are context, not targets
                demos.append([("prompt", prompt + opener), ("model", call), ("tool", tool), ("model", answer)])
            elif rng.random() < self.demo_tool_frac:
                demos.append([("prompt", prompt), ("model", opener + call), ("tool", tool), ("model", answer)])
            else:
                demos.append([("prompt", prompt), ("model", f"Result={self._guess(p, rng)}<submit>")])
        rng.shuffle(demos)
        return demos

    def fingerprint(self) -> dict[str, Any]:
        """What the demonstrations depend on: their settings and the training data's content
        (not where it came from, so the hub and the local files share one cached model)."""
        digest = hashlib.sha256()
        for p in self.split("train"):
            digest.update(f"{p.question}\0{p.meta['solution']}\0".encode())
        keys = ("tool_name", "tolerance", "byte_context", "max_prompt_bytes", "demo_tool_frac",
                "demo_direct_correct_frac", "demo_practice_frac")
        return {k: getattr(self, k) for k in keys} | {"task": self.name, "train": digest.hexdigest()[:16], "demos": 1}
