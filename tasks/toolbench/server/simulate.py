"""The schema simulator: a deterministic response built from an API's response schema.

Schemas are StableToolBench's ``template_response`` (and ToolBench's
``response_examples``' ``schema``, the same notation): a JSON shape whose leaves name types
(``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"NoneType"``, ``"empty list"``,
``"list of str with length 8"``), where a list holding one object with ``"_list_length": n``
means n such objects; a schema may also come as a string holding that JSON.

Values are drawn from a generator seeded by the run's seed and the call's cache key, so one
call always gets one answer, on every machine and in every run. A string field echoes the
call's argument of the same name when there is one (a lookup by ``city`` answers about that
city). The response text is ``str(value)`` cut at 2,048 characters, as ToolBench's server
writes real responses (OpenBMB/ToolBench @d56fdd8, ``toolbench/inference/server.py``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

# ToolBench's server cuts a response at this many characters before the client's cut.
MAX_RESPONSE_CHARS = 2048
# Longest list the simulator writes (schemas ask for up to hundreds; the text is cut anyway).
MAX_LIST = 10

_LIST_OF = re.compile(r"^list of (\w+) with length (\d+)$")
_WORDS = ("alpha", "bright", "cedar", "delta", "ember", "falcon", "granite", "harbor", "iris",
          "juniper", "kestrel", "lumen", "meadow", "nova", "orchid", "pioneer", "quartz", "river",
          "summit", "tundra", "umber", "vista", "willow", "xenon", "yarrow", "zephyr")


def simulator_rng(seed: int, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{key}".encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def load_schema(schema: Any) -> Any:
    """A schema as data: a string holding JSON is parsed; anything else is kept."""
    if isinstance(schema, str):
        text = schema.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return schema
    return schema


def has_schema(schema: Any) -> bool:
    return load_schema(schema) not in (None, "", {}, [])


def simulate_value(schema: Any, rng: random.Random, arguments: dict[str, Any], field: str = "") -> Any:
    """A value of the shape ``schema`` describes."""
    schema = load_schema(schema)
    if isinstance(schema, dict):
        return {k: simulate_value(v, rng, arguments, k) for k, v in schema.items() if k != "_list_length"}
    if isinstance(schema, list):
        if not schema:
            return []
        item = schema[0]
        if isinstance(item, dict) and isinstance(item.get("_list_length"), int):
            count = min(max(item["_list_length"], 0), MAX_LIST)
            return [simulate_value(item, rng, arguments, field) for _ in range(count)]
        if isinstance(item, str) and (_LIST_OF.match(item) or item == "empty list"):
            return simulate_value(item, rng, arguments, field)
        return [simulate_value(v, rng, arguments, field) for v in schema[:MAX_LIST]]
    if isinstance(schema, str):
        return _leaf(schema, rng, arguments, field)
    return schema


def _leaf(kind: str, rng: random.Random, arguments: dict[str, Any], field: str) -> Any:
    match = _LIST_OF.match(kind)
    if match:
        count = min(int(match.group(2)), MAX_LIST)
        return [_leaf(match.group(1), rng, arguments, field) for _ in range(count)]
    if kind == "empty list":
        return []
    if kind == "str":
        return _string(field, rng, arguments)
    if kind == "int":
        return rng.randint(0, 1000)
    if kind == "float":
        return round(rng.uniform(0, 1000), 2)
    if kind == "bool":
        return rng.random() < 0.5
    if kind in ("NoneType", "null", "None"):
        return None
    if kind in ("list", "dict"):
        return [] if kind == "list" else {}
    return kind  # a literal the schema spells out


def _string(field: str, rng: random.Random, arguments: dict[str, Any]) -> str:
    if field and field in arguments and isinstance(arguments[field], (str, int, float)):
        return str(arguments[field])
    name = field.lower()
    token = f"{rng.getrandbits(32):08x}"
    if any(w in name for w in ("url", "link", "href", "image", "website", "thumbnail")):
        return f"https://example.com/{name or 'item'}/{token}"
    if "email" in name:
        return f"{rng.choice(_WORDS)}.{token[:4]}@example.com"
    if "date" in name or name.endswith("_at") or "time" in name:
        return f"20{rng.randint(10, 24):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if name == "id" or name.endswith("id") or name.endswith("_key"):
        return token
    words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 3))]
    return " ".join(words).capitalize()


def simulate_body(schema: Any, seed: int, key: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The server's answer for a call with this schema: ``{"error": "", "response": text}``."""
    value = simulate_value(schema, simulator_rng(seed, key), arguments)
    return {"error": "", "response": str(value)[:MAX_RESPONSE_CHARS]}


def echo_body(api_name: str, arguments: dict[str, Any], seed: int, key: str) -> dict[str, Any]:
    """An answer for an API with no schema at all: a short deterministic acknowledgement that
    names the call, so the model can still go on (no LLM simulator configured)."""
    rng = simulator_rng(seed, key)
    value = {"status": "success", "api": api_name, "request": arguments,
             "result": " ".join(rng.choice(_WORDS) for _ in range(4))}
    return {"error": "", "response": str(value)[:MAX_RESPONSE_CHARS]}
