"""The APIs the server knows: names as it keys them, the arguments each takes, its response
schema and what the LLM simulator is told about it.

A request names an API the way StableToolBench's client does (category, standard tool
name, pure API name); the server standardises all three exactly as StableToolBench's
``prepare_tool_name_and_url`` does, so the client's spelling and ours meet. APIs come from
query files (``api_list`` entries: full parameters and ``template_response``) and from the
function schemas of answer files (the sample's trees come without their query files); an
API known from both keeps the query file's record.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.toolbench.formats import ApiRecord, FormatError, read_response_examples
from tasks.toolbench.names import argument_name, change_name, standardize, standardize_category

log = logging.getLogger(__name__)

_TOOL_IN_DESCRIPTION = re.compile(r'^This is the subfunction for tool "([^"]*)"')


@dataclass(frozen=True)
class ServedAPI:
    """One API as the server serves it."""

    category: str
    tool: str
    api: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    schema: Any = None
    # Name and description, for the LLM simulator's prompt.
    doc: dict[str, Any] = field(default_factory=dict, compare=False)
    # Where it was read from (a query file, an answer file) and what kind of source that
    # was: "query" (full record), "function" (an answer file's schema), "example" (schema only).
    origin: str = field(default="", compare=False)
    kind: str = "query"


def request_names(category: str, tool_name: str, api_name: str) -> tuple[str, str, str]:
    """(category, tool, api) as the server keys them, from a request's fields.

    StableToolBench's server: the tool loses a ``_for_<category>`` suffix, the API is
    ``change_name(standardize(api_name))`` cut before ``_for_<tool>``."""
    category = standardize_category(category)
    suffix = f"_for_{category}"
    tool = standardize(tool_name[: -len(suffix)] if tool_name.endswith(suffix) else tool_name)
    api = change_name(standardize(api_name)).split(f"_for_{tool}")[0]
    return category, tool, api


def from_record(api: ApiRecord, origin: str = "") -> ServedAPI:
    category, tool, name = request_names(api.category_name, api.tool_name, api.api_name)
    return ServedAPI(
        category=category, tool=tool, api=name,
        required=tuple(argument_name(p.name) for p in api.required_parameters),
        optional=tuple(argument_name(p.name) for p in api.optional_parameters),
        schema=api.template_response,
        doc={"name": api.api_name, "description": api.api_description, "tool": api.tool_name,
             "category": api.category_name, "method": api.method,
             "required_parameters": [p.to_json() for p in api.required_parameters],
             "optional_parameters": [p.to_json() for p in api.optional_parameters]},
        origin=origin,
    )


def from_function(function: dict[str, Any], category: str = "", origin: str = "") -> ServedAPI | None:
    """An API from its OpenAI function schema (``<api>_for_<tool>``, the tool named in the
    description); None for ``Finish`` or a schema that does not name its tool."""
    name = function.get("name", "")
    match = _TOOL_IN_DESCRIPTION.match(str(function.get("description", "")))
    if name == "Finish" or match is None:
        return None
    tool = match.group(1)
    suffix = f"_for_{tool}"
    api = name[: -len(suffix)] if name.endswith(suffix) else name
    params = function.get("parameters") or {}
    required = tuple(r for r in params.get("required", []) if r)
    listed_optional = tuple(o for o in params.get("optional", []) if o)
    rest = tuple(p for p in params.get("properties", {}) if p not in required and p not in listed_optional)
    return ServedAPI(category=category, tool=tool, api=api, required=required, optional=listed_optional + rest,
                     doc={"name": name, "description": function.get("description", "")}, origin=origin,
                     kind="function")


class APIRegistry:
    """APIs by (tool, api); the category is kept for error texts but not part of the key
    (standard tool names are unique across categories in ToolBench's crawl)."""

    def __init__(self) -> None:
        self._apis: dict[tuple[str, str], ServedAPI] = {}
        self._function_tools: dict[str, tuple[str, str]] = {}

    def __len__(self) -> int:
        return len(self._apis)

    def get(self, tool: str, api: str) -> ServedAPI | None:
        return self._apis.get((tool, api))

    def add(self, served: ServedAPI, replace: bool = False) -> None:
        key = (served.tool, served.api)
        old = self._apis.get(key)
        if old is None or replace:
            self._apis[key] = served
        elif not old.category and served.category:
            self._apis[key] = dataclasses.replace(old, category=served.category)

    def add_records(self, records: Iterable[ApiRecord], origin: str = "") -> None:
        """Query-file records win over function-derived entries."""
        for record in records:
            served = from_record(record, origin)
            old = self.get(served.tool, served.api)
            if old is not None and old.kind != "query" and served.schema is None:
                served = dataclasses.replace(served, schema=old.schema)
            self.add(served, replace=old is not None and old.kind != "query")

    def add_functions(self, functions: Iterable[dict[str, Any]], origin: str = "") -> dict[str, ServedAPI]:
        """Register the APIs behind an answer file's functions; returns them by function name."""
        by_name = {}
        for function in functions:
            served = from_function(function, origin=origin)
            if served is None:
                continue
            known = self.get(served.tool, served.api)
            if known is None:
                self.add(served)
                known = served
            by_name[function["name"]] = known
        return by_name

    def add_response_examples(self, folder: str | Path) -> int:
        """Give schemas from ``toolenv/response_examples`` to known APIs that have none (and
        register the rest as schema-only APIs); returns how many schemas were used."""
        used = 0
        for path in sorted(Path(folder).glob("*/*.json")):
            category = standardize_category(path.parent.name)
            try:
                examples = read_response_examples(path)
            except FormatError as err:  # ToolBench's sample holds an empty one; a hint, not a must
                log.warning("response examples skipped: %s", err)
                continue
            for example in examples:
                api = change_name(standardize(example.api_name))
                old = self.get(path.stem, api)
                if example.schema in (None, {}, ""):
                    continue
                if old is None:
                    self.add(ServedAPI(category=category, tool=path.stem, api=api, schema=example.schema,
                                       doc={"name": example.api_name}, origin=str(path), kind="example"))
                elif old.schema is None:
                    self._apis[(old.tool, old.api)] = dataclasses.replace(old, schema=example.schema)
                else:
                    continue
                used += 1
        return used

