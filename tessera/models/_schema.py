"""JSON schemas for structured output: bound them, size them, and turn them into a safe grammar.

A grammar only helps if generation must end: an unbounded string or array lets a small model ramble until
``max_tokens`` cuts the JSON in half. So every string and array gets a bound, ``max_tokens`` is sized for
the longest output the bounded schema allows, and integer ranges small enough to list become enums (the
grammar cannot enforce ``minimum``/``maximum`` otherwise; validation plus a retry covers the rest).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

DEFAULT_MAX_STRING = 512
DEFAULT_MAX_ITEMS = 16
MAX_ENUM_SPAN = 256
_SPACE = 1  # the grammar allows at most one space between tokens
_NUMBER_CHARS = 40  # "-" + 16 digits + "." + 16 digits + exponent
_INTEGER_CHARS = 18
_CHAR_TOKENS = 4  # tokens one character of string content can take, at worst
_BOUNDED_FORMATS = ("date", "time", "date-time", "uuid")

# JSON strings may not hold raw control characters; llama-cpp-python's stock rule lets them through.
# Raw non-ASCII text is valid JSON, so \uXXXX escapes are never needed: leaving them out also keeps the
# worst case at four tokens per character (a 4-byte UTF-8 character spelled in single-byte tokens).
SAFE_CHAR_RULE = r'[^"\\\x00-\x1F\x7F] | "\\" ["\\/bfnrt]'

SAFE_DOT_RULE = r'[^"\\\x00-\x1F\x7F]'


def bound_schema(
    schema: dict[str, Any],
    *,
    max_string: int = DEFAULT_MAX_STRING,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> dict[str, Any]:
    """Return a copy of ``schema`` where every string and array is bounded.

    Also closes objects (``additionalProperties: false`` unless set) and turns small integer ranges into
    enums so the grammar enforces them.
    """
    out = copy.deepcopy(schema)
    _bound(out, max_string, max_items)
    return out


def _bound(node: Any, max_string: int, max_items: int) -> None:
    if isinstance(node, list):
        for item in node:
            _bound(item, max_string, max_items)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    fixed = node.get("format") in _BOUNDED_FORMATS or "enum" in node or "const" in node
    if kind == "string" and not fixed:
        if "pattern" not in node:
            node["maxLength"] = min(int(node.get("maxLength", max_string)), max_string)
    if kind == "array" and "prefixItems" not in node:  # a tuple's length is its own bound
        node["maxItems"] = min(int(node.get("maxItems", max_items)), max_items)
    if kind == "integer" and "enum" not in node:
        lo, hi = _int_range(node)
        if lo is not None and hi is not None and 0 <= hi - lo <= MAX_ENUM_SPAN:
            node["enum"] = list(range(lo, hi + 1))
    if (kind == "object" or "properties" in node) and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for key, value in node.items():
        if key in ("enum", "const", "default", "examples"):
            continue
        _bound(value, max_string, max_items)


def _int_range(node: dict[str, Any]) -> tuple[int | None, int | None]:
    lo = node.get("minimum")
    hi = node.get("maximum")
    if "exclusiveMinimum" in node:
        lo = int(node["exclusiveMinimum"]) + 1
    if "exclusiveMaximum" in node:
        hi = int(node["exclusiveMaximum"]) - 1
    return (None if lo is None else int(lo)), (None if hi is None else int(hi))


def fit_schema(schema: dict[str, Any], budget_tokens: int) -> tuple[dict[str, Any], int | None]:
    """Bound ``schema`` as loosely as possible while its longest output fits ``budget_tokens``.

    Returns the bounded schema and its worst-case token count (``None`` when the schema has parts no
    bound can cap, such as patterns; the caller then falls back to its configured ``max_tokens``).
    Raises ``ValueError`` when even the tightest bounds do not fit.
    """
    worst: int | None = None
    for max_string, max_items in _BOUND_STEPS:
        bounded = bound_schema(schema, max_string=max_string, max_items=max_items)
        try:
            worst = max_json_tokens(bounded)
        except ValueError:
            return bounded, None
        if worst <= budget_tokens:
            return bounded, worst
    raise ValueError(
        f"the schema's shortest worst-case output ({worst} tokens) does not fit the "
        f"{budget_tokens} tokens left in the context; raise n_ctx or bound the schema"
    )


_BOUND_STEPS = [(512, 16), (256, 16), (128, 8), (64, 8), (32, 4), (16, 4), (8, 2)]


def max_json_tokens(schema: dict[str, Any]) -> int:
    """An upper bound on the tokens of any JSON text the (bounded) grammar can produce.

    Raises ``ValueError`` when the schema has no bound (a pattern, free-form keys, recursion).
    Structural characters are one token at most; string content allows four per character.
    """
    defs = {**schema.get("$defs", {}), **schema.get("definitions", {})}
    return _chars(schema, defs, depth=0)


def _chars(node: dict[str, Any], defs: dict[str, Any], depth: int) -> int:
    if depth > 32:
        raise ValueError("schema nests too deeply (recursive $ref?) to bound its output")
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        return _chars(defs.get(name, {}), defs, depth + 1)
    if "const" in node:
        return len(json.dumps(node["const"])) + _SPACE
    if "enum" in node:
        return max((len(json.dumps(v)) for v in node["enum"]), default=4) + _SPACE
    for key in ("anyOf", "oneOf"):
        if key in node:
            return max(_chars(option, defs, depth + 1) for option in node[key])
    if "allOf" in node:
        return sum(_chars(option, defs, depth + 1) for option in node["allOf"])
    kind = node.get("type")
    if isinstance(kind, list):
        return max(_chars({**node, "type": k}, defs, depth + 1) for k in kind)
    if kind == "string":
        if node.get("format") in _BOUNDED_FORMATS:
            return 40
        if "maxLength" not in node or "pattern" in node:
            raise ValueError("unbounded string in schema")
        return 2 + _CHAR_TOKENS * int(node["maxLength"]) + _SPACE
    if kind == "integer":
        return _INTEGER_CHARS + _SPACE
    if kind == "number":
        return _NUMBER_CHARS + _SPACE
    if kind == "boolean":
        return 5 + _SPACE
    if kind == "null":
        return 4 + _SPACE
    if kind == "array" and "prefixItems" in node:
        if node.get("items", False) is not False:
            raise ValueError("a tuple with open extra items cannot be bounded")
        tuple_items = node["prefixItems"]
        return 2 + 2 * _SPACE + sum(_chars(item, defs, depth + 1) + 1 + _SPACE for item in tuple_items)
    if kind == "array":
        items = node.get("items", {})
        if "maxItems" not in node or not isinstance(items, dict):
            raise ValueError("unbounded array in schema")
        return 2 + 2 * _SPACE + int(node["maxItems"]) * (_chars(items, defs, depth + 1) + 1 + _SPACE)
    if kind == "object" or "properties" in node:
        if node.get("additionalProperties") not in (None, False):
            raise ValueError("an object with free-form keys cannot be bounded")
        props = node.get("properties", {})
        total = 2 + 2 * _SPACE
        for key, value in props.items():
            total += len(json.dumps(key)) + 2 + 2 * _SPACE + _chars(value, defs, depth + 1)
        return total
    raise ValueError(f"cannot bound a schema node without a type: {sorted(node)}")


def schema_to_grammar(schema: dict[str, Any]) -> str:
    """GBNF for ``schema`` via llama-cpp-python's converter, with control characters kept out of strings.

    A top-level property that is a tuple (``prefixItems``, ``items: false``) with ``minItems`` below its
    length gets optional trailing items, nested (``a ("," b ("," c)?)?``): one parse stack, where a union
    of tuples of every length would keep one stack alive per length while the first items are written.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    text = json_schema_to_gbnf(json.dumps(schema))
    short_tuples = {
        key.replace("_", "-"): int(value["minItems"])
        for key, value in schema.get("properties", {}).items()
        if isinstance(value, dict) and "prefixItems" in value and "minItems" in value
    }
    lines = []
    for line in text.splitlines():
        name, _, _ = line.partition(" ::= ")
        if name == "char":
            line = f"char ::= {SAFE_CHAR_RULE}"
        elif name == "dot":
            line = f"dot ::= {SAFE_DOT_RULE}"
        elif name in short_tuples:
            line = _optional_tail(name, line, short_tuples[name])
        lines.append(line)
    return "\n".join(lines)


def _optional_tail(name: str, line: str, min_items: int) -> str:
    """Rewrite ``name ::= "[" space t0 "," space t1 … "]" space`` so items past ``min_items`` are optional."""
    items = re.findall(rf"\b{re.escape(name)}-tuple-\d+\b", line)
    if not items or len(items) <= min_items:
        return line
    body = ' "," space '.join(items[: max(min_items, 1)])
    tail = ""
    for item in reversed(items[max(min_items, 1) :]):
        tail = f' ("," space {item}{tail})?'
    return f'{name} ::= "[" space {body}{tail} "]" space'
