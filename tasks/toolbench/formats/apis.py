"""API records as the query files and tool documents describe them (RapidAPI's schema).

A parameter is ``{name, type, description, default}``. RapidAPI's types are upper-case words,
two of them with a format note (``DATE (YYYY-MM-DD)``, ``TIME (24-hour HH:MM)``,
``GEOPOINT (latitude, longitude)``); the crawled data also holds lower-case ``string`` and
Python names (``str``, ``int``). ``ParamKind`` is the normalised kind that argument checking
and the synthetic generator use; ``Parameter.type`` keeps the raw text because ToolBench's
function schema depends on it (only exact ``STRING``/``NUMBER``/``BOOLEAN`` map to JSON types).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from tasks.toolbench.formats.reading import At


class ParamKind(str, enum.Enum):
    STRING = "STRING"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    ENUM = "ENUM"
    DATE = "DATE"
    TIME = "TIME"
    GEOPOINT = "GEOPOINT"
    ARRAY = "ARRAY"
    OBJECT = "OBJECT"
    BINARY = "BINARY"
    FILE = "FILE"
    CREDENTIALS = "CREDENTIALS"


# The first word of a type, upper-cased, to its kind (synonyms seen in crawled data included).
_KIND_OF_WORD = {kind.value: kind for kind in ParamKind} | {
    "STR": ParamKind.STRING,
    "INT": ParamKind.NUMBER,
    "INTEGER": ParamKind.NUMBER,
    "FLOAT": ParamKind.NUMBER,
    "BOOL": ParamKind.BOOLEAN,
    "LIST": ParamKind.ARRAY,
}


def param_kind(type_text: str) -> ParamKind | None:
    """``"DATE (YYYY-MM-DD)"`` -> DATE, ``"string"`` -> STRING; None for an unknown type."""
    word = type_text.strip().split(" ", 1)[0].split("(", 1)[0].upper()
    return _KIND_OF_WORD.get(word)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    description: str
    default: Any = ""

    @property
    def kind(self) -> ParamKind:
        return param_kind(self.type) or ParamKind.STRING

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "description": self.description, "default": self.default}


@dataclass(frozen=True)
class ApiRecord:
    """One API of one tool, as a query file's ``api_list`` entry holds it.

    Inference-demo queries name only category, tool and API (the rest comes from the tool
    document), so everything past ``api_name`` is optional.
    """

    category_name: str
    tool_name: str
    api_name: str
    api_description: str = ""
    required_parameters: tuple[Parameter, ...] = ()
    optional_parameters: tuple[Parameter, ...] = ()
    method: str | None = None
    # A sketch of the response (``{"key": "str"}``), a string, or None when unknown.
    template_response: Any = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.category_name, self.tool_name, self.api_name)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return self.required_parameters + self.optional_parameters

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "category_name": self.category_name,
            "tool_name": self.tool_name,
            "api_name": self.api_name,
            "api_description": self.api_description,
            "required_parameters": [p.to_json() for p in self.required_parameters],
            "optional_parameters": [p.to_json() for p in self.optional_parameters],
        }
        if self.method is not None:
            out["method"] = self.method
        if self.template_response is not None:
            out["template_response"] = self.template_response
        return out


def read_parameter(at: At) -> Parameter:
    at.expect(dict)
    type_at = at.key("type", str, type(None))
    type_text = type_at.value
    if type_text is None:
        # Some crawled documents leave the type out; ToolBench treats it as a string.
        type_text = "STRING"
    elif param_kind(type_text) is None:
        type_at.fail(f"unknown type {type_text!r} (known: {', '.join(k.value for k in ParamKind)})")
    description = at.get("description", str, type(None), default="")
    return Parameter(
        name=at.get("name", str),
        type=type_text,
        description=description or "",
        default=at.get("default", default=""),
    )


def read_parameters(at: At) -> tuple[Parameter, ...]:
    if at.value is None:
        return ()
    return tuple(read_parameter(item) for item in at.items())


_API_KEYS = {
    "category_name", "tool_name", "api_name", "api_description", "required_parameters",
    "optional_parameters", "method", "template_response",
}


def read_api_record(at: At) -> ApiRecord:
    """A query file's ``api_list`` entry."""
    at.expect(dict)
    return ApiRecord(
        category_name=at.get("category_name", str),
        tool_name=at.get("tool_name", str),
        api_name=at.get("api_name", str),
        api_description=at.get("api_description", str, type(None), default="") or "",
        required_parameters=read_parameters(at.key("required_parameters", list, type(None), default=[])),
        optional_parameters=read_parameters(at.key("optional_parameters", list, type(None), default=[])),
        method=at.get("method", str, type(None), default=None),
        template_response=at.get("template_response", default=None),
        extra={k: v for k, v in at.value.items() if k not in _API_KEYS},
    )
