"""Tool documents: ``toolenv/tools/<Category>/<standard_tool_name>.json``, one RapidAPI tool
each, and the ``toolenv/response_examples/<Category>/<tool>.json`` files.

A tool document holds the tool's ``tool_name`` and ``tool_description`` and its ``api_list``
(``name``, ``description``, ``method``, ``url``, required/optional parameters and, in the
crawl, ``code``/``statuscode``/``schema``...). ToolBench finds a tool's file by
``standardize(tool_name)`` inside the category folder; the file's stem is the *standard tool
name* that function names end with. Fields we do not use are kept in ``extra`` so a document
read and written again loses nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.toolbench.formats.apis import ApiRecord, Parameter, read_parameters
from tasks.toolbench.formats.reading import At, load_json

_API_KEYS = {"name", "description", "method", "url", "required_parameters", "optional_parameters", "template_response"}
_DOC_KEYS = {"tool_name", "tool_description", "standardized_name", "api_list"}


@dataclass(frozen=True)
class ToolApi:
    name: str
    description: str = ""
    method: str | None = None
    url: str | None = None
    required_parameters: tuple[Parameter, ...] = ()
    optional_parameters: tuple[Parameter, ...] = ()
    template_response: Any = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def record(self, category: str, tool_name: str) -> ApiRecord:
        """The same API as a query file's ``api_list`` entry."""
        return ApiRecord(
            category_name=category,
            tool_name=tool_name,
            api_name=self.name,
            api_description=self.description,
            required_parameters=self.required_parameters,
            optional_parameters=self.optional_parameters,
            method=self.method,
            template_response=self.template_response,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.method is not None:
            out["method"] = self.method
        if self.url is not None:
            out["url"] = self.url
        out["required_parameters"] = [p.to_json() for p in self.required_parameters]
        out["optional_parameters"] = [p.to_json() for p in self.optional_parameters]
        if self.template_response is not None:
            out["template_response"] = self.template_response
        return out | self.extra


@dataclass(frozen=True)
class ToolDocument:
    category: str
    # The file's stem: ToolBench's standard tool name (``standardize(tool_name)``).
    standard_name: str
    tool_name: str
    tool_description: str
    api_list: tuple[ToolApi, ...]
    file: str = field(default="", compare=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def records(self) -> list[ApiRecord]:
        return [api.record(self.category, self.tool_name) for api in self.api_list]

    def to_json(self) -> dict[str, Any]:
        return {
            "tool_name": self.tool_name,
            "tool_description": self.tool_description,
            "standardized_name": self.standard_name,
            **self.extra,
            "api_list": [api.to_json() for api in self.api_list],
        }


def read_tool_api(at: At) -> ToolApi:
    at.expect(dict)
    return ToolApi(
        name=at.get("name", str),
        description=at.get("description", str, type(None), default="") or "",
        method=at.get("method", str, type(None), default=None),
        url=at.get("url", str, type(None), default=None),
        required_parameters=read_parameters(at.key("required_parameters", list, type(None), default=[])),
        optional_parameters=read_parameters(at.key("optional_parameters", list, type(None), default=[])),
        template_response=at.get("template_response", default=None),
        extra={k: v for k, v in at.value.items() if k not in _API_KEYS},
    )


def read_tool_document(path: str | os.PathLike[str], category: str | None = None) -> ToolDocument:
    """One tool document; ``category`` defaults to the name of the folder it lies in."""
    path = Path(path)
    root = load_json(path).expect(dict)
    return ToolDocument(
        category=category if category is not None else path.parent.name,
        standard_name=path.stem,
        tool_name=root.get("tool_name", str),
        tool_description=root.get("tool_description", str, type(None), default="") or "",
        api_list=tuple(read_tool_api(item) for item in root.key("api_list", list).items()),
        file=str(path),
        extra={k: v for k, v in root.value.items() if k not in _DOC_KEYS},
    )


def read_tool_root(root: str | os.PathLike[str]) -> dict[tuple[str, str], ToolDocument]:
    """Every document under ``toolenv/tools``, keyed by (category, standard tool name).

    Other files there (the crawl's ``api.py`` modules, ``.DS_Store``) are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such tool folder (expected toolenv/tools/<Category>/<tool>.json)")
    docs: dict[tuple[str, str], ToolDocument] = {}
    for category_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(category_dir.glob("*.json")):
            doc = read_tool_document(path)
            docs[(doc.category, doc.standard_name)] = doc
    return docs


def write_tool_document(doc: ToolDocument, root: str | os.PathLike[str]) -> Path:
    """Write ``root/<category>/<standard_name>.json``; returns its path."""
    path = Path(root) / doc.category / f"{doc.standard_name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    return path


@dataclass(frozen=True)
class ResponseExample:
    """``toolenv/response_examples``: per API of a tool, a sketch of its response."""

    api_name: str
    schema: Any


def read_response_examples(path: str | os.PathLike[str]) -> list[ResponseExample]:
    root = load_json(path).expect(dict)
    out = []
    for item in root.key("api_list", list).items():
        out.append(ResponseExample(api_name=item.get("name", str), schema=item.get("schema", default=None)))
    return out

