"""Typed readers for every ToolBench / StableToolBench file format.

Each reader returns dataclasses and raises :class:`FormatError` naming the file and the JSON
path of a bad entry (``G1_query.json: [3].api_list[1].required_parameters[0].type: unknown
type 'FOO'``). They accept the sample files under ``data_example`` and the full release's
layout (``data/instruction``, ``data/answer``, ``data/toolenv/tools``, ``data/test_instruction``,
``toolllama_G123_dfs_train.json``).

- :func:`read_query_file`, :func:`read_query_ids` — query files
- :func:`read_answer_file`, :func:`find_answer_files` — DFSDT / CoT answer trees
- :func:`read_tool_document`, :func:`read_tool_root`, :func:`write_tool_document` — tool documents
- :func:`read_sft_file`, :func:`write_sft_file`, :func:`dump_sft_json` — ToolLLaMA's SFT file
"""

from tasks.toolbench.formats.answers import (
    AnswerFile,
    FunctionCall,
    Message,
    TreeNode,
    find_answer_files,
    read_answer_file,
)
from tasks.toolbench.formats.apis import ApiRecord, Parameter, ParamKind, param_kind
from tasks.toolbench.formats.queries import Query, read_query_file, read_query_ids
from tasks.toolbench.formats.reading import At, FormatError, load_json
from tasks.toolbench.formats.sft import SftInstance, SftTurn, dump_sft_json, read_sft_file, write_sft_file
from tasks.toolbench.formats.tools import (
    ResponseExample,
    ToolApi,
    ToolDocument,
    read_response_examples,
    read_tool_document,
    read_tool_root,
    write_tool_document,
)

__all__ = [
    "AnswerFile", "ApiRecord", "At", "FormatError", "FunctionCall", "Message", "ParamKind",
    "Parameter", "Query", "ResponseExample", "SftInstance", "SftTurn", "ToolApi", "ToolDocument",
    "TreeNode", "dump_sft_json", "find_answer_files", "load_json", "param_kind", "read_answer_file",
    "read_query_file", "read_query_ids", "read_response_examples", "read_sft_file",
    "read_tool_document", "read_tool_root", "write_sft_file", "write_tool_document",
]
