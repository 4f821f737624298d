"""The virtual RapidAPI server: ToolBench's APIs answered offline and deterministically.

``server.py`` (:class:`VirtualAPIServer`): validate, cache, simulate, optionally an LLM or
the real API. ``tool.py``: the server as a tool in Ray actors (ToolPool). ``serve.py``: the
server on Ray Serve, answering StableToolBench's ``POST /virtual``. See docs/toolbench.md.
"""

from tasks.toolbench.server.server import ServerConfig, VirtualAPIServer
from tasks.toolbench.server.wire import SOURCES, APIRequest, APIResponse, BadRequest, cut_observation

__all__ = ["SOURCES", "APIRequest", "APIResponse", "BadRequest", "ServerConfig", "VirtualAPIServer", "cut_observation"]
