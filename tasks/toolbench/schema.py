"""API record -> the OpenAI function schema ToolBench offers the model, and ``Finish``.

Re-implements ``rapidapi_wrapper.api_json_to_openai_json`` (ToolBench @d56fdd8) field for
field, quirks included, because the schemas are embedded verbatim (``str(functions)``) in
every system prompt ToolLLaMA was trained on:

- the name is :func:`~tasks.toolbench.names.function_name` (last 64 characters);
- descriptions are cut at 256 characters, and the API's own name inside its description is
  replaced by the function name;
- only the exact types ``NUMBER``/``STRING``/``BOOLEAN`` map to ``integer``/``string``/
  ``boolean``; every other type (``ENUM``, ``DATE (YYYY-MM-DD)``, lower-case ``string``...) is
  ``string``;
- a parameter's non-empty ``default`` becomes ``example_value``;
- optional parameters are listed only when the API has at least one required parameter (the
  optional loop sits inside the required one's ``if`` upstream).
"""

from __future__ import annotations

from typing import Any

from tasks.toolbench.formats.apis import ApiRecord, Parameter
from tasks.toolbench.names import argument_name, function_name, standardize

DESCRIPTION_MAX = 256
_JSON_TYPE = {"NUMBER": "integer", "STRING": "string", "BOOLEAN": "boolean"}

# ``Finish`` as the ToolBench training data (answer files, toolllama_G123_dfs_train.json) offers it.
FINISH_FUNCTION: dict[str, Any] = {
    "name": "Finish",
    "description": "If you think you get the result which can answer the task, call this function to give the final answer. Or, if you think you can't handle the task from this status, call this function to restart. Remember: you should ALWAYS call this function at the end of your try, and the final answer is the ONLY part that will be showed to user, so final answer should contain enough information.",
    "parameters": {
        "type": "object",
        "properties": {
            "return_type": {"type": "string", "enum": ["give_answer", "give_up_and_restart"]},
            "final_answer": {
                "type": "string",
                "description": "The final answer you want to give the user. You should have this field if \"return_type\"==\"give_answer\"",
            },
        },
        "required": ["return_type"],
    },
}

# ``Finish`` as ToolBench's inference code (rapidapi.py) and StableToolBench offer it.
FINISH_FUNCTION_INFERENCE: dict[str, Any] = {
    "name": "Finish",
    "description": "If you believe that you have obtained a result that can answer the task, please call this function to provide the final answer. Alternatively, if you recognize that you are unable to proceed with the task in the current state, call this function to restart. Remember: you must ALWAYS call this function at the end of your attempt, and the only part that will be shown to the user is the final answer, so it should contain sufficient information.",
    "parameters": FINISH_FUNCTION["parameters"],
}


def _property(param: Parameter) -> dict[str, Any]:
    prop: dict[str, Any] = {
        "type": _JSON_TYPE.get(param.type, "string"),
        "description": param.description[:DESCRIPTION_MAX],
    }
    if len(str(param.default)) != 0:
        prop["example_value"] = param.default
    return prop


def api_to_function(api: ApiRecord, standard_tool_name: str) -> dict[str, Any]:
    """The function schema of ``api``; ``standard_tool_name`` is the tool document's file stem
    (``standardize(api.tool_name)`` for every tool of the crawl)."""
    name = function_name(api.api_name, standard_tool_name)
    description = f'This is the subfunction for tool "{standard_tool_name}", you can use this tool.'
    if api.api_description.strip() != "":
        cut = api.api_description.strip().replace(api.api_name, name)[:DESCRIPTION_MAX]
        description += f'The description of this function is: "{cut}"'
    properties: dict[str, Any] = {}
    required: list[str] = []
    optional: list[str] = []
    if api.required_parameters:
        for param in api.required_parameters:
            arg = argument_name(param.name)
            properties[arg] = _property(param)
            required.append(arg)
        for param in api.optional_parameters:
            arg = argument_name(param.name)
            properties[arg] = _property(param)
            optional.append(arg)
    return {
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required, "optional": optional},
    }


def offered_functions(apis: list[ApiRecord], finish: dict[str, Any] = FINISH_FUNCTION) -> list[dict[str, Any]]:
    """The functions of a query, in ``api_list`` order, then ``Finish``."""
    return [api_to_function(api, standardize(api.tool_name)) for api in apis] + [finish]
