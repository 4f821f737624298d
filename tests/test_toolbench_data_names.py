"""ToolBench's name standardisation, function schemas and the rebuilt tool documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.toolbench.formats import read_query_file, read_tool_root
from tasks.toolbench.names import argument_name, change_name, function_name, standardize, standardize_category
from tasks.toolbench.schema import FINISH_FUNCTION, FINISH_FUNCTION_INFERENCE, offered_functions
from tasks.toolbench.tooldocs import build_tool_documents, read_queries, stabletoolbench_query_files, write_tool_root

FIXTURES = Path(__file__).parent / "fixtures" / "toolbench"

try:
    QUERY_FILES = stabletoolbench_query_files()
except FileNotFoundError:  # pragma: no cover
    QUERY_FILES = None
needs_data = pytest.mark.skipif(QUERY_FILES is None, reason="StableToolBench queries not found")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Kick.com API | Kick API", "kick_com_api_kick_api"),
        ("TheClique", "theclique"),
        ("Get Chat User (like user from chat)", "get_chat_user_like_user_from_chat"),
        ("/offices/search/:service/:stateIsoCode/:keyword", "offices_search_service_stateisocode_keyword"),
        ("3D Models", "get_3d_models"),
        ("__a__b__", "a_b"),
        ("", ""),
        ("!!!", ""),
        ("中文 名", "中文_名"),
        ("a^b", "a^b"),  # upstream's character class keeps '^' (a literal inside [...])
        ("Ünïcode", "n_code"),
    ],
)
def test_standardize(raw, expected):
    assert standardize(raw) == expected


def test_function_names():
    assert change_name("id") == "is_id" and change_name("ids") == "ids"
    assert argument_name("ID") == "is_id"  # standardised first, then renamed
    assert function_name("Get Channel Clips", "kick_com_api_kick_api") == "get_channel_clips_for_kick_com_api_kick_api"
    assert function_name("from", "t") == "is_from_for_t"
    long = function_name("a" * 70, "tool")
    assert len(long) == 64 and long.endswith("_for_tool")
    assert standardize_category("Data, Media/Video") == "Data_Media_Video"


@needs_data
def test_function_schemas_match_stabletoolbench_answers():
    """The schemas StableToolBench's own runs offered for three queries, rebuilt from the queries."""
    fixture = json.loads((FIXTURES / "stabletoolbench_functions.json").read_text())
    queries = {str(q.query_id): q for q in read_query_file(QUERY_FILES[0].parent / fixture["query_file"])}
    for query_id, functions in fixture["functions"].items():
        mine = offered_functions(list(queries[query_id].api_list), FINISH_FUNCTION_INFERENCE)
        assert mine == functions
        assert str(mine) == str(functions)  # key order too: the prompt embeds str(functions)


def test_function_schema_quirks():
    from tasks.toolbench.formats.apis import ApiRecord, Parameter

    opt = Parameter("limit", "NUMBER", "how many", 5)
    no_required = ApiRecord("C", "My Tool", "List All", "List All items", (), (opt,))
    schema = offered_functions([no_required])[0]
    assert schema["name"] == "list_all_for_my_tool"
    assert schema["description"].endswith('"list_all_for_my_tool items"')  # the API's name replaced by the function's
    assert schema["parameters"]["properties"] == {}  # upstream lists optional ones only beside a required one
    with_required = ApiRecord("C", "My Tool", "Get", "", (Parameter("id", "ENUM", "x" * 300, ""),), (opt,))
    props = offered_functions([with_required])[0]["parameters"]
    assert props["required"] == ["is_id"] and props["optional"] == ["limit"]
    assert props["properties"]["is_id"] == {"type": "string", "description": "x" * 256}
    assert props["properties"]["limit"] == {"type": "integer", "description": "how many", "example_value": 5}
    assert offered_functions([])[-1] is FINISH_FUNCTION


@needs_data
def test_tool_documents_from_stabletoolbench(tmp_path):
    queries = read_queries(QUERY_FILES)
    assert len(queries) == 765
    docs = build_tool_documents(queries)
    assert len(docs) == 814
    assert sum(len(d.api_list) for d in docs) == 2490
    assert len({d.category for d in docs}) == 47
    distinct = {a.key for q in queries for a in q.api_list}
    assert {(d.category, d.tool_name, a.name) for d in docs for a in d.api_list} == distinct
    # Written in the upstream layout and read back by the tool-document reader, unchanged.
    subset = docs[:40]
    back = read_tool_root(write_tool_root(subset, tmp_path / "tools"))
    assert [back[(d.category, d.standard_name)] for d in subset] == subset
    assert (tmp_path / "tools" / subset[0].category / f"{subset[0].standard_name}.json").is_file()
