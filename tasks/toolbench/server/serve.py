"""The virtual API server on Ray Serve, answering StableToolBench's ``POST /virtual``.

StableToolBench's client (``rapidapi_wrapper``, ``SERVICE_URL=http://host:port/virtual``)
posts the request body and reads the JSON answer as ``{"error", "response"}``; the answer
here is exactly that body, so their client and ours see the same observation. Where the
answer came from travels in the ``x-toolrl-source`` header (an extra field in the body would
change the observation their client computes).

    url = start_http(server_cfg, port=8080)   # http://127.0.0.1:8080/virtual
    ...
    stop_http()
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve

from tasks.toolbench.server.server import ServerConfig, VirtualAPIServer
from tasks.toolbench.server.wire import SOURCE_HEADER, BadRequest

log = logging.getLogger(__name__)

APP_NAME = "toolbench-virtual"


@serve.deployment(ray_actor_options={"num_cpus": 0})
class VirtualEndpoint:
    def __init__(self, server_cfg: dict[str, Any]) -> None:
        self.server = VirtualAPIServer(ServerConfig(**server_cfg))

    async def __call__(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        if request.method != "POST" or not request.url.path.rstrip("/").endswith("/virtual"):
            return JSONResponse({"error": "POST a request body to /virtual", "response": ""}, status_code=404)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "request body is not JSON", "response": ""}, status_code=400)
        try:
            response = self.server.handle(body)
        except BadRequest as err:
            return JSONResponse({"error": str(err), "response": ""}, status_code=422)
        return JSONResponse(response.body, headers={SOURCE_HEADER: response.source})

    def source_counts(self) -> dict[str, int]:
        return self.server.source_counts()


def start_http(server_cfg: dict[str, Any], host: str = "127.0.0.1", port: int = 8080, num_replicas: int = 1) -> str:
    """Start the endpoint on the connected Ray cluster; returns the URL to post to."""
    serve.start(http_options={"host": host, "port": port})
    app = VirtualEndpoint.options(num_replicas=num_replicas).bind(dict(server_cfg))
    serve.run(app, name=APP_NAME, route_prefix="/")
    url = f"http://{host}:{port}/virtual"
    log.info("virtual API server on %s (%d replica(s))", url, num_replicas)
    return url


def stop_http() -> None:
    """Remove the endpoint and shut Serve down."""
    serve.delete(APP_NAME)
    serve.shutdown()
