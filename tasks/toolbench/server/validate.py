"""Checking a call against its API before anything answers it.

ToolBench runs each API as a generated Python function (``toolenv/tools/<category>/<tool>/
api.py``) with the model's arguments as keywords, so a bad call fails the way Python fails
and the server wraps the message; these texts are reproduced here (the sample's answer trees
hold one: ``search_basic_free() got an unexpected keyword argument 'query'``):

* arguments that are not a JSON object: ``Tool input parse error...\\n`` (the server's text);
* an argument the API does not take: ``<api>() got an unexpected keyword argument '<name>'``;
* a required argument left out: ``<api>() missing 1 required positional argument: '<name>'``
  (Python's plural and list forms for several).

Types are not checked: ToolBench's functions pass values through to RapidAPI untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

PARSE_ERROR = "Tool input parse error...\n"


def parse_tool_input(tool_input: str | dict[str, Any]) -> dict[str, Any] | None:
    """The arguments as an object, or None when they are not one. An empty string is ``{}``
    (StableToolBench's server reads it so)."""
    if isinstance(tool_input, dict):
        return tool_input
    if tool_input.strip() == "":
        return {}
    try:
        value = json.loads(tool_input)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def execution_error(category: str, tool: str, api: str, message: str) -> str:
    """The server's wrapper around a failing API function (StableToolBench's module path)."""
    return f"Function executing from my_tools.{category}.{tool}.api import {api} error...\n{message}"


def argument_error(api: str, arguments: dict[str, Any], required: Iterable[str], optional: Iterable[str]) -> str | None:
    """Python's TypeError text for calling ``api(**arguments)``, or None when the call binds."""
    required = list(required)
    allowed = set(required) | set(optional)
    for name in arguments:
        if name not in allowed:
            return f"{api}() got an unexpected keyword argument '{name}'"
    missing = [name for name in required if name not in arguments]
    if not missing:
        return None
    quoted = [f"'{name}'" for name in missing]
    if len(quoted) == 1:
        listed = quoted[0]
    elif len(quoted) == 2:
        listed = f"{quoted[0]} and {quoted[1]}"
    else:
        listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    plural = "argument" if len(missing) == 1 else "arguments"
    return f"{api}() missing {len(missing)} required positional {plural}: {listed}"
