"""Strict JSON reading with errors that say where: ``FILE: [3].api_list[1].type: message``.

ToolBench's files are big hand-made JSON (16k tool documents, 126k SFT instances); a reader
that fails with ``KeyError: 'name'`` leaves the user to bisect a 1 GB file. Every reader here
walks the JSON through :class:`At`, which carries the file and the JSON path of the value it
holds, so a bad entry is reported as the place to look.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

_JSON_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


class FormatError(ValueError):
    """A file that does not hold the format it should; ``str()`` names the file and JSON path."""

    def __init__(self, file: str, path: str, message: str) -> None:
        self.file = file
        self.path = path
        self.message = message
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {message}")


def _describe(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _kinds_text(kinds: tuple[type, ...]) -> str:
    return " or ".join(_JSON_TYPE_NAMES.get(k, k.__name__) for k in kinds)


@dataclass(frozen=True)
class At:
    """A JSON value with the file and the path it came from."""

    value: Any
    file: str
    path: str = ""

    def fail(self, message: str) -> NoReturn:
        raise FormatError(self.file, self.path, message)

    def expect(self, *kinds: type) -> At:
        """This value, after checking it is one of ``kinds`` (bool is not accepted as int)."""
        value = self.value
        ok = any(
            isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
            for kind in kinds
        )
        if not ok:
            self.fail(f"expected {_kinds_text(kinds)}, found {_describe(value)}")
        return self

    def _child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and key in self.value

    def key(self, key: str, *kinds: type, default: Any = ...) -> At:
        """The member ``key`` of this object; missing is an error unless ``default`` is given."""
        self.expect(dict)
        if key not in self.value:
            if default is ...:
                self.fail(f"missing key {key!r}")
            return At(default, self.file, self._child_path(key))
        child = At(self.value[key], self.file, self._child_path(key))
        return child.expect(*kinds) if kinds else child

    def get(self, key: str, *kinds: type, default: Any = ...) -> Any:
        """The plain value of :meth:`key`."""
        return self.key(key, *kinds, default=default).value

    def items(self) -> Iterator[At]:
        """The elements of this list, each with its index in the path."""
        self.expect(list)
        for index, value in enumerate(self.value):
            yield At(value, self.file, self._child_path(index))

    def members(self) -> Iterator[tuple[str, At]]:
        """The (key, value) pairs of this object."""
        self.expect(dict)
        for key, value in self.value.items():
            yield key, At(value, self.file, self._child_path(key))


def load_json(path: str | os.PathLike[str]) -> At:
    """Parse a JSON file; a syntax error names the file, line and column."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(name, "", "no such file") from None
    except UnicodeDecodeError as err:
        raise FormatError(name, "", f"not UTF-8 text ({err})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise FormatError(name, "", f"not JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    return At(value, name, "")
