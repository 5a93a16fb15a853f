"""Demo function models: a team that runs with no download at all (``configs/offline.yaml``).

They are deterministic and honest about what they are: ``echo`` repeats the request, and answers a
structured request with the simplest JSON value that satisfies the schema.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["echo", "example_for"]


def echo(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """Reply with the last user message (or, for structured output, a minimal valid JSON value)."""
    if schema is not None:
        return json.dumps(example_for(schema))
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
    return f"echo: {last['content']}"


def example_for(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The simplest value that validates against ``schema`` (required fields only)."""
    defs = defs if defs is not None else {**schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return example_for(defs[str(schema["$ref"]).rsplit("/", 1)[-1]], defs)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return example_for(schema[key][0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example_for(props[k], defs) for k in schema.get("required", []) if k in props}
    if kind == "array":
        item = schema.get("items", {})
        return [example_for(item, defs) for _ in range(int(schema.get("minItems", 0)))]
    if kind == "string":
        return "x" * int(schema.get("minLength", 0))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None
