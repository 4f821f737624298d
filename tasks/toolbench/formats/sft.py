"""The SFT file ToolBench trains ToolLLaMA on (``toolllama_G123_dfs_train.json``).

A list of ``{"id": "Step N: <query>", "conversations": [{"from", "value"}, ...]}``; roles are
system/user/assistant/function (template ``tool-llama-single-round``) or, in the older
``tool-llama`` template, human/gpt. Only the last assistant turn of an instance is trained.
:func:`write_sft_file` writes the bytes ToolBench's converter writes (``json.dump``,
indent 4, ``ensure_ascii=False``), which the golden test compares.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.toolbench.formats.reading import At, load_json

ROLES = ("system", "user", "assistant", "function", "human", "gpt")


@dataclass(frozen=True)
class SftTurn:
    role: str  # the JSON's "from"
    value: str


@dataclass(frozen=True)
class SftInstance:
    id: str
    conversations: tuple[SftTurn, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "conversations": [{"from": t.role, "value": t.value} for t in self.conversations]}


def read_sft_instance(at: At) -> SftInstance:
    turns = []
    for turn_at in at.key("conversations", list).items():
        role_at = turn_at.key("from", str)
        if role_at.value not in ROLES:
            role_at.fail(f"unknown role {role_at.value!r} (known: {', '.join(ROLES)})")
        turns.append(SftTurn(role=role_at.value, value=turn_at.get("value", str)))
    return SftInstance(id=at.get("id", str), conversations=tuple(turns))


def read_sft_file(path: str | os.PathLike[str]) -> list[SftInstance]:
    return [read_sft_instance(item) for item in load_json(path).expect(list).items()]


def dump_sft_json(instances: list[SftInstance]) -> str:
    """The text ToolBench's converter writes for these instances."""
    return json.dumps([inst.to_json() for inst in instances], indent=4, ensure_ascii=False)


def write_sft_file(instances: list[SftInstance], path: str | os.PathLike[str]) -> None:
    Path(path).write_text(dump_sft_json(instances), encoding="utf-8")
