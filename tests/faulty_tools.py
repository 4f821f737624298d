"""Tools that misbehave on purpose, for the tool-pool tests (built inside Ray actors)."""

import os
import time

from orchestrator.tools.base import ToolError


class Faulty:
    description = "answers 'ok:<q>'; 'raise' raises, 'hang' sleeps, 'die' kills its process"

    def __init__(self, name: str = "Faulty") -> None:
        self.name = name
        self.isolation = {"full": True, "mode": "none-needed"}  # what a sandboxed tool reports

    def call(self, query: str) -> str:
        if query == "raise":
            raise ToolError("asked to fail")
        if query == "hang":
            time.sleep(600)
        if query == "die":
            os._exit(1)
        if query == "pid":
            return str(os.getpid())
        return f"ok:{query}"
