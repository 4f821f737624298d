"""The virtual API server as a tool, for ToolPool's Ray actors like every other tool.

The query is a StableToolBench request body as JSON text; the answer is JSON text
``{"observation", "code", "source"}``: the observation as ToolBench's client shows it (cut
at 1,024 characters), its status code, and where it came from. Tool config::

    _target_: tasks.toolbench.server.tool.VirtualRapidAPI
    name: RapidAPI
    answer_paths: [...]          # any ServerConfig field
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.tools.base import ToolError
from tasks.toolbench.server.server import ServerConfig, VirtualAPIServer
from tasks.toolbench.server.wire import BadRequest

TOOL_NAME = "RapidAPI"


class VirtualRapidAPI:
    description = ("ToolBench's RapidAPI, served offline: send a StableToolBench request body "
                   "{category, tool_name, api_name, tool_input} as JSON.")

    def __init__(self, name: str = TOOL_NAME, **server_cfg: Any) -> None:
        self.name = name
        self.server = VirtualAPIServer(ServerConfig(**server_cfg))

    def call(self, query: str) -> str:
        try:
            body = json.loads(query)
        except json.JSONDecodeError as err:
            raise ToolError(f"the query must be a JSON request body ({err})") from None
        try:
            response = self.server.handle(body)
        except BadRequest as err:
            raise ToolError(str(err)) from None
        return json.dumps(response.to_record(self.server.cfg.max_observation_chars))

    def call_batch(self, queries: list[str]) -> list[str]:
        return [self.call(q) for q in queries]
