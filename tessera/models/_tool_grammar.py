"""Tool calls under a grammar: which tools a reply may call, and GBNF that makes any reply well formed.

A reply is text or Hermes / Qwen2.5 tool calls: ``<tool_call>`` blocks, one or more, each holding
``{"name": ..., "arguments": {...}}``. The grammar allows exactly these shapes:

* plain text that never contains ``<tool_call>`` and does not start with ``{``;
* tool-call blocks whose JSON is ``{"name": <one of the tools>, "arguments": <that tool's parameters>}``,
  bounded and free of control characters like structured output (:mod:`tessera.models._schema`);
* one such JSON object bare, without the tags (Qwen2.5-Coder-0.5B writes its calls so, even though its
  prompt shows the tags).

So a small model cannot emit a malformed call, and can always answer in text instead. ``tool_choice``
narrows it: ``none`` allows text only, ``any`` (or ``required``) only calls, a tool's name only calls of
that tool. Strings and arrays are bounded so that the longest call fits the context left; the caller
raises ``max_tokens`` to that length, so no call is ever cut off.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.utils.function_calling import convert_to_openai_tool

from tessera.errors import ContextLengthError
from tessera.models._schema import fit_schema, schema_to_grammar

__all__ = [
    "MAX_PARALLEL_CALLS",
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "Tools",
    "may_be_call",
    "normalize_choice",
    "openai_tools",
    "reply_grammar",
]

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
MAX_PARALLEL_CALLS = 4
_CALL_WRAP_TOKENS = len(TOOL_CALL_OPEN) + len(TOOL_CALL_CLOSE) + 3  # the tags and newlines, a token a char
_ROOT = re.compile(r"(?<![\w-])root(?![\w-])")
_LITERAL = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]')  # GBNF strings and character classes


def openai_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """Tools (langchain tools, functions, pydantic models or OpenAI dicts) as OpenAI tool dicts."""
    return [convert_to_openai_tool(t) for t in tools]


def _name(tool: dict[str, Any]) -> str:
    return str(tool["function"]["name"])


@dataclass
class Tools:
    """The tools bound to one call, how the model may use them, and how many calls it may make at once."""

    tools: list[dict[str, Any]]
    choice: str = "auto"
    """``auto``, ``none``, ``any``, or the name of the one tool to call."""
    parallel: bool = True
    listed: bool = True
    """Whether the prompt lists the tools (off when the model is to answer from the results it has)."""

    @classmethod
    def pop(cls, kwargs: dict[str, Any]) -> Tools | None:
        """Take ``tools``, ``tool_choice`` and ``parallel_tool_calls`` out of a call's kwargs."""
        tools = kwargs.pop("tools", None)
        choice = kwargs.pop("tool_choice", None)
        parallel = kwargs.pop("parallel_tool_calls", None)
        if not tools:
            return None
        specs = openai_tools(tools)
        return cls(specs, normalize_choice(choice, [_name(t) for t in specs]), parallel is not False)

    @property
    def offered(self) -> list[dict[str, Any]]:
        """The tools the model may call under ``choice``."""
        if self.choice in ("auto", "any", "none"):
            return self.tools
        return [t for t in self.tools if _name(t) == self.choice]


def normalize_choice(choice: Any, names: list[str]) -> str:
    """LangChain's ``tool_choice`` values as ``auto``, ``none``, ``any`` or a tool's name.

    Raises:
        ValueError: ``choice`` names no bound tool, or is not a form LangChain uses.
    """
    if choice is None or choice == "auto":
        return "auto"
    if choice == "none":
        return "none"
    if choice in ("any", "required") or choice is True:
        return "any"
    name = choice
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
    if isinstance(name, str) and name in names:
        return name
    known = ", ".join(names)
    raise ValueError(f"tool_choice {choice!r}: not auto, none, any, required or a bound tool ({known})")


def reply_grammar(tools: Tools, room: int) -> tuple[str, int | None]:
    """GBNF for a reply under ``tools`` in ``room`` tokens, and its longest tool-call reply in tokens.

    Raises:
        ContextLengthError: not even one call with the tightest bounds fits in ``room``.
    """
    rules = _text_rules()
    if tools.choice == "none":  # an answer from the results alone must not look like a call either
        return "\n".join([f"root ::= {'free' if tools.listed else 'text'}", *rules]), None
    try:
        schema, worst = fit_schema(_call_schema(tools.offered), room - _CALL_WRAP_TOKENS)
    except ValueError as exc:
        raise ContextLengthError(f"tool call: {exc}") from None
    per_call = None if worst is None else worst + _CALL_WRAP_TOKENS
    calls = 1 if per_call is None or not tools.parallel else max(1, min(MAX_PARALLEL_CALLS, room // per_call))
    more = f' ("\\n" call){{0,{calls - 1}}}' if calls > 1 else ""
    top = "root ::= text | calls | call-json" if tools.choice == "auto" else "root ::= calls | call-json"
    wrap = [
        f"calls ::= call{more}",
        f'call ::= "{TOOL_CALL_OPEN}" "\\n" call-json "\\n" "{TOOL_CALL_CLOSE}"',
    ]
    json_rules = _renamed_root(schema_to_grammar(schema), "call-json")
    return "\n".join([top, *wrap, *rules, json_rules]), None if per_call is None else calls * per_call


def _call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"name": <tool>, "arguments": <its parameters>}`` for each tool, as one JSON schema."""
    options: list[dict[str, Any]] = []
    defs: dict[str, dict[str, Any]] = {}
    for tool in tools:
        params = copy.deepcopy(tool["function"].get("parameters") or {"type": "object", "properties": {}})
        for key in ("$defs", "definitions"):
            defs.setdefault(key, {}).update(params.pop(key, {}))
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": _name(tool)}, "arguments": params},
                "required": ["name", "arguments"],
            }
        )
    schema: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
    schema.update({key: value for key, value in defs.items() if value})
    return schema


def _renamed_root(grammar: str, name: str) -> str:
    """``grammar`` with its start rule ``root`` renamed, in definitions and references (not in literals)."""
    lines = []
    for line in grammar.splitlines():
        pieces, last = [], 0
        for literal in _LITERAL.finditer(line):
            pieces += [_ROOT.sub(name, line[last : literal.start()]), literal.group()]
            last = literal.end()
        lines.append("".join([*pieces, _ROOT.sub(name, line[last:])]))
    return "\n".join(lines)


def _text_rules() -> list[str]:
    """``free``: one or more characters of any text in which ``<tool_call>`` never occurs; ``text``: the
    same, not starting with ``{`` either (a reply that starts with ``{`` is a bare call).

    A right-linear grammar over the states of matching ``<tool_call>``: ``free-K`` means the text so far
    ends in the marker's first K characters. The marker's only ``<`` is its first character, so on a
    mismatch the match restarts at ``<`` or at nothing.
    """
    marker = TOOL_CALL_OPEN
    rules = [
        'free ::= [^<] free-0 | "<" free-1',
        'text ::= [^<{] free-0 | "<" free-1',
        'free-0 ::= | [^<] free-0 | "<" free-1',
    ]
    for k in range(1, len(marker)):
        nxt = marker[k]
        onward = f' | "{nxt}" free-{k + 1}' if k + 1 < len(marker) else ""
        rules.append(f'free-{k} ::= | [^<{nxt}] free-0 | "<" free-1{onward}')
    return rules


def may_be_call(text: str) -> bool:
    """Whether a reply that starts with ``text`` is (or may still turn into) tool calls, not text."""
    return text.startswith(("{", TOOL_CALL_OPEN)) or TOOL_CALL_OPEN.startswith(text)
