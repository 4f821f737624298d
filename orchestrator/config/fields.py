"""Typed config fields with their valid ranges, and the check that reads them.

A group's dataclass (its schema) says each key's type and what values are valid; the YAML
file of each option says the values, with a comment per key. Values have no default in
the schema (``???``): a YAML file that forgets a key fails at compose time instead of
silently taking a second default from Python.

Hydra checks types while composing (``trainer.num_workers=abc`` fails there); ranges and
choices are checked by :func:`range_problems` right after, before Ray starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def value(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] | None = None,
    default: Any = MISSING,
) -> Any:
    """A schema field: required (its YAML sets it) unless ``default`` is given, with bounds or
    choices. Bounds of an ``Optional`` field apply when it is not null."""
    meta = {k: v for k, v in dict(ge=ge, gt=gt, le=le, lt=lt, choices=choices).items() if v is not None}
    if default is MISSING:
        return field(metadata=meta)
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def describe(meta: dict[str, Any]) -> str:
    """The valid values of a field, as a user reads them: '>= 1', '> 0 and <= 1', 'one of a, b'."""
    if "choices" in meta:
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    parts = []
    for key, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if key in meta:
            parts.append(f"{sign} {meta[key]}")
    return " and ".join(parts)


def field_problem(v: Any, meta: dict[str, Any]) -> str | None:
    """Why ``v`` is not valid for a field with ``meta``, or None."""
    if v is None or not meta:
        return None
    if "choices" in meta:
        return None if v in meta["choices"] else f"got {v!r} (valid: {', '.join(map(str, meta['choices']))})"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None  # types are Hydra's job
    ok = all((
        "ge" not in meta or v >= meta["ge"],
        "gt" not in meta or v > meta["gt"],
        "le" not in meta or v <= meta["le"],
        "lt" not in meta or v < meta["lt"],
    ))
    return None if ok else f"must be {describe(meta)}, got {v!r}"


def range_problems(node: Any, prefix: str = "") -> list[str]:
    """``key: what is wrong`` for every field of every schema below ``node`` whose value is
    out of its range or not one of its choices (a composed DictConfig, unresolved parts skipped)."""
    problems: list[str] = []
    if isinstance(node, DictConfig):
        schema = OmegaConf.get_type(node)
        metas = {f.name: f.metadata for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
        for key in node.keys():
            dotted = f"{prefix}{key}"
            if OmegaConf.is_missing(node, key):
                problems.append(f"{dotted}: no value (the YAML of this option must set it)")
                continue
            try:
                child = node[key]
            except Exception:  # noqa: BLE001 - an interpolation that cannot resolve here: checked when used
                continue
            msg = field_problem(child, dict(metas.get(str(key), {})))
            if msg:
                problems.append(f"{dotted}: {msg}")
            problems += range_problems(child, dotted + ".")
    elif isinstance(node, ListConfig):
        for i, child in enumerate(node):
            problems += range_problems(child, f"{prefix}{i}.") if isinstance(child, (DictConfig, ListConfig)) else []
    return problems
