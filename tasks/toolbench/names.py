"""ToolBench's name standardisation (``toolbench/utils.py`` @d56fdd8, re-implemented).

Function names the model writes are ``change_name(standardize(api_name)) + "_for_" +
standardize(tool_name)``, cut to their last 64 characters (OpenAI's limit on function names).
``standardize`` keeps ASCII letters, digits, ``_``, CJK ideographs (U+4E00..U+9FA5) and —
a quirk of its regular expression, whose ``^`` inside the class is literal — ``^``; every other
character becomes ``_``, runs of ``_`` collapse, ends are trimmed, the result is lower-cased
and a leading digit gets ``get_`` in front. ``change_name`` prefixes ``is_`` to a few Python
keywords and JSON words that cannot be argument names.
"""

from __future__ import annotations

import re

_NOT_KEPT = re.compile("[^\\u4e00-\\u9fa5^a-z^A-Z^0-9^_]")
_UNDERSCORE_RUNS = re.compile(r"(_)\1+")
_RENAMED = frozenset({"from", "class", "return", "false", "true", "id", "and"})
MAX_FUNCTION_NAME = 64


def standardize(name: str) -> str:
    """``"Kick.com API | Kick API"`` -> ``"kick_com_api_kick_api"``; ``"3D Models"`` -> ``"get_3d_models"``."""
    text = _UNDERSCORE_RUNS.sub("_", _NOT_KEPT.sub("_", name)).lower().strip("_")
    if text and text[0].isdigit():
        text = "get_" + text
    return text


def change_name(name: str) -> str:
    """``"id"`` -> ``"is_id"``: names ToolBench renames for argument and function use."""
    return "is_" + name if name in _RENAMED else name


def standardize_category(category: str) -> str:
    """A category as ToolBench names its folder (``"Data, Media"`` -> ``"Data_Media"``)."""
    text = category.replace(" ", "_").replace(",", "_").replace("/", "_")
    return text.replace("__", "_")


def function_name(api_name: str, standard_tool_name: str) -> str:
    """The function name the model calls for ``api_name`` of the tool ``standard_tool_name``
    (already standardised: the tool document's file stem)."""
    return (change_name(standardize(api_name)) + "_for_" + standard_tool_name)[-MAX_FUNCTION_NAME:]


def argument_name(parameter_name: str) -> str:
    """A parameter's name in the function schema (``"id"`` -> ``"is_id"``)."""
    return change_name(standardize(parameter_name))
