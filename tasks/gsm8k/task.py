"""GSM8K: grade-school word problems solved with a sandboxed Python interpreter.

The model writes a program between ``<request><PythonInterpreter>`` and ``<call>``; the
interpreter (a bubblewrap sandbox in a Ray tool actor) answers with what it printed; the model
then writes ``Result=<number><submit>``. Reward 1 when that number is within ``tolerance`` of
the GSM8K answer (the seed's rule). For a byte-level model (``byte_context`` set, as
conf/experiment/gsm8k_tiny.yaml does) only problems with short prompts are used, in both
splits: its runs are a pipeline check, not a GSM8K score (docs/gsm8k.md).
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

from orchestrator.config.fields import value
from orchestrator.rollout.episode import Episode
from orchestrator.rollout.protocol import PROTOCOL_TOKENS, tool_tag
from orchestrator.task import Demonstration, Problem, Task
from orchestrator.task.demonstrations import mix_demonstrations, total_demos
from orchestrator.task.sources import SOURCES, hub_or_local, resolve_path
from orchestrator.tools.sandbox import ISOLATION_MODES, isolation_problem
from tasks.gsm8k.data import SPLITS, load_hub, read_jsonl
from tasks.gsm8k.demonstrations import ProgramDemo, program_demo
from tasks.gsm8k.programs import annotation_program
from tasks.gsm8k.prompt import prompt
from tasks.gsm8k.reward import result_reward
from tasks.gsm8k.tools import interpreter_tool

log = logging.getLogger(__name__)


@dataclass
class GSM8KSpec:
    """``conf/task/gsm8k.yaml`` under ``spec:`` (the values, each with a comment, are there)."""

    source: str = value(choices=SOURCES)
    hub_dataset: str = value()
    hub_config: str = value()
    local_dir: str = value()
    tool_name: str = value()
    tool_timeout_s: float = value(gt=0)
    tool_max_output_chars: int = value(ge=1)
    sandbox_workers: int = value(ge=0)
    isolation: str = value(choices=ISOLATION_MODES)
    tolerance: float = value(gt=0)
    num_eval: Optional[int] = value(ge=1)
    eval_seed: int = value(ge=0)
    byte_context: Optional[int] = value(ge=16)
    max_prompt_bytes: int = value(ge=1)
    demo_tool_frac: float = value(ge=0, le=1)
    demo_direct_correct_frac: float = value(ge=0, le=1)
    demo_practice_frac: float = value(ge=0)


class GSM8KTask(Task):
    """Word problems, a Python interpreter, reward on the model's ``Result=``."""

    Spec = GSM8KSpec

    def __init__(self, spec: GSM8KSpec, name: str = "gsm8k") -> None:
        super().__init__(spec, name)
        self._splits: dict[str, list[Problem]] = {}
        self._eval: list[Problem] | None = None

    def problems(self) -> list[str]:
        s, found = self.spec, []
        if s.byte_context is not None and not s.max_prompt_bytes < s.byte_context:
            found.append(f"task.spec.max_prompt_bytes: {s.max_prompt_bytes} must be below task.spec.byte_context="
                         f"{s.byte_context}")
        if s.source == "local" and not (resolve_path(s.local_dir) / "train.jsonl").exists():
            found.append(f"task.spec.local_dir: {s.local_dir} holds no train.jsonl (resolved: {resolve_path(s.local_dir)})")
        problem = isolation_problem(s.isolation)
        if problem:
            found.append(f"task.spec.isolation: {problem}")
        return found

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
                         name, len(kept), len(problems), self.spec.max_prompt_bytes)
            if not kept:
                raise ValueError(f"gsm8k {name}: no prompt has at most max_prompt_bytes={self.spec.max_prompt_bytes} bytes")
            self._splits[name] = kept
        return self._splits[name]

    def _load(self, split: str) -> list[Problem]:
        s = self.spec

        def local() -> list[Problem]:
            path = resolve_path(s.local_dir) / f"{split}.jsonl"
            if not path.exists():
                raise FileNotFoundError(f"gsm8k: {path} not found (task.spec.local_dir={s.local_dir!r})")
            log.info("gsm8k %s: from %s", split, path)
            return read_jsonl(path)

        return hub_or_local(s.source, f"gsm8k {split}", lambda: load_hub(s.hub_dataset, s.hub_config, split), local)

    def fits(self, problem: Problem) -> bool:
        """For a byte-level model (``byte_context`` set): the bare prompt has at most
        ``max_prompt_bytes`` tokens. Hub models keep every problem."""
        if self.spec.byte_context is None:
            return True
        return self.num_tokens(self.prompt(problem, few_shot=False)) <= self.spec.max_prompt_bytes

    def num_tokens(self, text: str) -> int:
        """Tokens of ``text`` for a byte-level model: one per byte, one per protocol marker or tool tag."""
        n = len(text.encode())
        for marker in (*PROTOCOL_TOKENS, tool_tag(self.spec.tool_name)):
            n -= text.count(marker) * (len(marker.encode()) - 1)
        return n

    def eval_problems(self) -> list[Problem]:
        """``num_eval`` test problems drawn by ``eval_seed`` (in file order), or all of them."""
        if self._eval is None:
            test = self.split("test")
            if self.spec.num_eval is None or self.spec.num_eval >= len(test):
                self._eval = list(test)
            else:
                picked = sorted(random.Random(self.spec.eval_seed).sample(range(len(test)), self.spec.num_eval))
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
        return prompt(problem.question, self.spec.tool_name, few_shot)

    # ------------------------------------------------------------ tools

    def tools(self) -> list[dict[str, Any]]:
        s = self.spec
        return [interpreter_tool(s.tool_name, s.tool_timeout_s, s.tool_max_output_chars, s.sandbox_workers, s.isolation)]

    # ------------------------------------------------------------ reward

    def reward(self, episode: Episode) -> float:
        return result_reward(episode.model_text(), episode.meta["answer"], self.spec.tolerance)

    # ------------------------------------------------------------ demonstrations

    def usable_programs(self) -> list[ProgramDemo]:
        """Training problems whose annotations make a program that prints the answer, and whose
        whole demonstration fits ``byte_context``."""
        s = self.spec
        opener = f"<request>{tool_tag(s.tool_name)}"
        usable = []
        for p in self.split("train"):
            made = annotation_program(p.meta["solution"], s.tolerance)
            if made is None:
                continue
            program, printed = made
            text = f"{self.prompt(p, False)}{opener}{program}<call>{printed}<response>\n\nResult={printed.strip()}<submit>"
            if s.byte_context is None or self.num_tokens(text) + 1 <= s.byte_context:
                usable.append(ProgramDemo(p, program, printed))
        if not usable:
            raise ValueError("gsm8k: no training problem gives a demonstration that fits byte_context")
        log.info("gsm8k demonstrations: %d of %d training problems have a usable program",
                 len(usable), len(self.split("train")))
        return usable

    def demonstrations(self, n: int | None, rng: random.Random) -> list[Demonstration]:
        """Decision and practice demos of the shared mix, over the usable programs."""
        s = self.spec
        usable = self.usable_programs()
        n = n or len(usable)
        chosen = [rng.choice(usable) for _ in range(total_demos(n, s.demo_practice_frac))]
        demo = program_demo(s.tool_name, s.demo_direct_correct_frac, lambda p: self.prompt(p, few_shot=False))
        return mix_demonstrations(chosen, n, s.demo_tool_frac, demo, rng)

    def fingerprint(self) -> dict[str, Any]:
        """What the demonstrations depend on: their settings and the training data's content
        (not where it came from, so the hub and the local files share one cached model)."""
        digest = hashlib.sha256()
        for p in self.split("train"):
            digest.update(f"{p.question}\0{p.meta['solution']}\0".encode())
        keys = ("tool_name", "tolerance", "byte_context", "max_prompt_bytes", "demo_tool_frac",
                "demo_direct_correct_frac", "demo_practice_frac")
        return {k: getattr(self.spec, k) for k in keys} | {"task": self.name, "train": digest.hexdigest()[:16], "demos": 2}
