"""ToolBench readers: the real sample files read, and a bad entry is reported as FILE: JSON path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.toolbench.formats import (
    FormatError,
    ParamKind,
    find_answer_files,
    param_kind,
    read_answer_file,
    read_query_file,
    read_query_ids,
    read_response_examples,
    read_sft_file,
    read_tool_document,
    read_tool_root,
)
from tasks.toolbench.paths import shared_data_dir

try:
    DATA = shared_data_dir()
except FileNotFoundError:  # pragma: no cover - the data is part of the project's machines
    DATA = None
needs_data = pytest.mark.skipif(DATA is None, reason="shared/data not found")


def _write(tmp_path: Path, name: str, value) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def _query(**api_overrides):
    api = {
        "category_name": "Data",
        "tool_name": "Keyword Analysis",
        "api_name": "QueryKeywords",
        "api_description": "Main keywords",
        "required_parameters": [{"name": "q", "type": "STRING", "description": "", "default": "cats"}],
        "optional_parameters": [],
        "method": "GET",
    } | api_overrides
    return {"api_list": [api], "query": "keywords for cats", "relevant APIs": [["Keyword Analysis", "QueryKeywords"]], "query_id": 7}


# --- the real files ---------------------------------------------------------------------------


@needs_data
def test_sample_query_files_read():
    queries = [q for g in ("G1", "G2", "G3") for q in read_query_file(DATA / f"toolbench/data_example/instruction/{g}_query.json")]
    assert len(queries) == 10
    assert all(q.api_list and q.relevant_apis for q in queries)
    kinds = {p.kind for q in queries for a in q.api_list for p in a.parameters}
    assert {ParamKind.STRING, ParamKind.NUMBER} <= kinds
    demo = read_query_file(DATA / "toolbench/data_example/instruction/inference_query_demo.json")[0]
    assert demo.query_id == 82217 and demo.api_list[0].api_description == "" and demo.relevant_apis == ()
    open_domain = read_query_file(DATA / "toolbench/data_example/instruction/inference_query_demo_open_domain.json")[0]
    assert open_domain.api_list == ()


@needs_data
def test_stabletoolbench_queries_and_ids_read():
    folder = DATA / "stabletoolbench/solvable_queries"
    counts = {p.stem: len(read_query_file(p)) for p in sorted((folder / "test_instruction").glob("*.json"))}
    assert counts == {"G1_category": 153, "G1_instruction": 163, "G1_tool": 158, "G2_category": 124,
                      "G2_instruction": 106, "G3_instruction": 61}
    ids = read_query_ids(folder / "test_query_ids/G3_instruction.json")
    assert len(ids) == 61
    assert set(ids) == {str(q.query_id) for q in read_query_file(folder / "test_instruction/G3_instruction.json")}


@needs_data
def test_sample_answer_trees_read():
    files = find_answer_files(DATA / "toolbench/data_example/answer")
    answers = [read_answer_file(f) for f in files]
    assert len(answers) == 15
    valid = [a for a in answers if a.valid_data]
    assert len(valid) == 13
    assert sorted(a.finish_type for a in valid).count("give_answer") == 9
    assert all(a.functions[-1]["name"] == "Finish" for a in answers)
    first = next(a for a in answers if a.file.endswith("G1_answer/10_ChatGPT_DFS_woFilter_w2.json"))
    assert first.query_id == "10" and first.query_count == 3 and len(first.train_messages) == 3
    step = first.train_messages[-1][-1]
    assert step.role == "assistant" and step.function_call.name == "Finish"
    nodes = first.tree.walk()
    assert {n.node_type for n in nodes} == {"Action", "Action Input"}
    assert any(n.observation_code == 3 for n in nodes)  # the Finish node's "successfully giving the final answer"
    # Observations were cut by the collector at 1,024 characters plus "...".
    longest = max(len(m.content) for a in valid for tm in a.train_messages for m in tm if m.role == "function")
    assert longest == 1027


@needs_data
def test_response_examples_read():
    examples = read_response_examples(DATA / "toolbench/data_example/toolenv/response_examples/Advertising/privatepublicapi.json")
    assert [e.api_name for e in examples][:2] == ["getPetById", "getUserByName"]
    assert examples[0].schema == {"code": "int", "message": "str"}


def test_tool_document_round_trip(tmp_path):
    doc = {
        "tool_name": "Keyword Analysis",
        "tool_description": "Keywords for a query",
        "title": "Keyword Analysis",
        "host": "keyword-analysis.p.rapidapi.com",
        "api_list": [{
            "name": "QueryKeywords", "url": "https://x/q", "description": "Main keywords", "method": "GET",
            "required_parameters": [{"name": "q", "type": "STRING", "description": "query", "default": "cats"}],
            "optional_parameters": [], "code": "import requests", "statuscode": 200, "schema": {},
        }],
    }
    path = _write(tmp_path, "tools/Data/keyword_analysis.json", doc)
    read = read_tool_document(path)
    assert (read.category, read.standard_name, read.tool_name) == ("Data", "keyword_analysis", "Keyword Analysis")
    assert read.api_list[0].required_parameters[0].default == "cats"
    assert read.api_list[0].extra["statuscode"] == 200  # crawl fields are kept, not dropped
    (tmp_path / "tools/Data/api.py").write_text("key = 'secret'\n")  # upstream's modules lie beside the documents
    assert list(read_tool_root(tmp_path / "tools")) == [("Data", "keyword_analysis")]
    assert read_tool_root(tmp_path / "tools")[("Data", "keyword_analysis")].records()[0].api_name == "QueryKeywords"


def test_param_kinds_cover_rapidapi_types():
    assert param_kind("DATE (YYYY-MM-DD)") is ParamKind.DATE
    assert param_kind("TIME (24-hour HH:MM)") is ParamKind.TIME
    assert param_kind("GEOPOINT (latitude, longitude)") is ParamKind.GEOPOINT
    assert param_kind("string") is ParamKind.STRING
    assert param_kind("int") is ParamKind.NUMBER
    assert param_kind("FOO") is None


# --- errors name the file and the JSON path ---------------------------------------------------


def test_unknown_parameter_type_names_file_and_path(tmp_path):
    queries = [_query(), _query(), _query(), _query()]
    queries[3]["api_list"].append(dict(queries[3]["api_list"][0], required_parameters=[{"name": "q", "type": "FOO", "description": "", "default": ""}]))
    path = _write(tmp_path, "G1_query.json", queries)
    with pytest.raises(FormatError) as info:
        read_query_file(path)
    assert str(info.value).startswith(f"{path}: [3].api_list[1].required_parameters[0].type: unknown type 'FOO'")


@pytest.mark.parametrize(
    ("mutate", "where", "what"),
    [
        (lambda q: q.pop("query"), "[0]", "missing key 'query'"),
        (lambda q: q["api_list"][0].update(api_name=3), "[0].api_list[0].api_name", "expected a string, found an integer"),
        (lambda q: q["api_list"][0]["required_parameters"][0].pop("name"), "[0].api_list[0].required_parameters[0]", "missing key 'name'"),
        (lambda q: q.update({"relevant APIs": [["Keyword Analysis"]]}), "[0].relevant APIs[0]", "expected a [tool_name, api_name] pair"),
        (lambda q: q.update(query_id=True), "[0].query_id", "expected an integer or a string, found a boolean"),
    ],
)
def test_query_file_errors(tmp_path, mutate, where, what):
    query = _query()
    mutate(query)
    path = _write(tmp_path, "G2_query.json", [query])
    with pytest.raises(FormatError) as info:
        read_query_file(path)
    assert str(info.value).startswith(f"{path}: {where}: {what}")


def test_not_json_names_line(tmp_path):
    path = tmp_path / "G1_query.json"
    path.write_text('[\n {"query": "x",\n}\n]')
    with pytest.raises(FormatError, match=r"G1_query.json: not JSON: .* line 3"):
        read_query_file(path)


def _answer(**overrides):
    system = {"role": "system", "content": "sys with a function call to actually excute your step."}
    user = {"role": "user", "content": "\nq\nBegin!\n"}
    call = {"role": "assistant", "content": None, "function_call": {"name": "Finish", "arguments": "{}"}}
    gen = {"valid_data": True, "query_count": 1, "total_tokens": 10, "final_answer": "", "finish_type": "give_answer",
           "function": [{"name": "Finish"}], "chain": [], "train_messages": [[system, user, call]], "query": "q"}
    return {"answer_generation": gen | overrides}


@pytest.mark.parametrize(
    ("overrides", "where", "what"),
    [
        ({"finish_type": "give_down"}, "answer_generation.finish_type", "unknown finish_type 'give_down'"),
        ({"train_messages": [[{"role": "robot", "content": "x"}]]}, "answer_generation.train_messages[0][0].role", "unknown role 'robot'"),
        ({"train_messages": [[{"role": "user", "content": "x"}]]}, "answer_generation.train_messages[0]", "must end with an assistant message"),
        ({"train_messages": [[{"role": "assistant", "content": None, "function_call": {"name": "f"}}]]},
         "answer_generation.train_messages[0][0].function_call", "missing key 'arguments'"),
        ({"train_messages": []}, "answer_generation.train_messages", "valid_data is true but there are no train_messages"),
        ({"query_count": "3"}, "answer_generation.query_count", "expected an integer, found a string"),
    ],
)
def test_answer_file_errors(tmp_path, overrides, where, what):
    path = _write(tmp_path, "G1_answer/5_ChatGPT_DFS_woFilter_w2.json", _answer(**overrides))
    with pytest.raises(FormatError) as info:
        read_answer_file(path)
    assert str(info.value).startswith(f"{path}: {where}: {what}")


def test_invalid_answer_needs_no_messages(tmp_path):
    path = _write(tmp_path, "8_ChatGPT_DFS_woFilter_w2.json", _answer(valid_data=False))
    data = json.loads(path.read_text())
    del data["answer_generation"]["train_messages"]
    path.write_text(json.dumps(data))
    assert read_answer_file(path).train_messages == ()


def test_sft_file_errors_and_read(tmp_path):
    good = [{"id": "Step 2: q", "conversations": [{"from": "system", "value": "s"}, {"from": "assistant", "value": "\nThought: "}]}]
    assert read_sft_file(_write(tmp_path, "ok.json", good))[0].conversations[1].value == "\nThought: "
    bad = good + [{"id": "Step 4: q", "conversations": [{"from": "system", "value": "s"}, {"from": "bot", "value": "x"}]}]
    path = _write(tmp_path, "toolllama_G123_dfs_train.json", bad)
    with pytest.raises(FormatError) as info:
        read_sft_file(path)
    assert str(info.value).startswith(f"{path}: [1].conversations[1].from: unknown role 'bot'")


def test_tool_document_errors(tmp_path):
    path = _write(tmp_path, "tools/Data/kw.json", {"tool_name": "kw", "tool_description": "", "api_list": [{"name": "a", "required_parameters": [{"name": "x", "type": "FOO", "description": "", "default": ""}]}]})
    with pytest.raises(FormatError) as info:
        read_tool_document(path)
    assert str(info.value).startswith(f"{path}: api_list[0].required_parameters[0].type: unknown type 'FOO'")
