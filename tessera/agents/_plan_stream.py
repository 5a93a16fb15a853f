"""Reading a plan while the planner is still writing it.

The planner's JSON arrives in pieces: ``{"subtasks": [{"id": "s1", ...}, {"id": "s2", ...`` and so on.
:class:`PlanScanner` finds each subtask object of the ``subtasks`` array the moment its closing brace
arrives, so the graph can dispatch it before the rest of the plan exists (as LLMCompiler's task-fetching
unit does). It tracks strings and escapes, so braces inside instructions do not confuse it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["PlanScanner"]


class PlanScanner:
    """Feed it text pieces; it returns each complete subtask object (a dict) as soon as it closes."""

    def __init__(self) -> None:
        self.text = ""
        self._pos = 0
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._array_depth: int | None = None  # depth of the "subtasks" array's items, once seen
        self._item_start: int | None = None
        self._last_key = ""
        self._key_start: int | None = None

    def feed(self, piece: str) -> list[dict[str, Any]]:
        """Add ``piece``; return the subtask objects it completed, in order."""
        self.text += piece
        found: list[dict[str, Any]] = []
        text = self.text
        for i in range(self._pos, len(text)):
            char = text[i]
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
                    if self._key_start is not None:
                        self._last_key = text[self._key_start : i]
                        self._key_start = None
                continue
            if char == '"':
                self._in_string = True
                self._key_start = i + 1 if self._depth == 1 else None
            elif char in "{[":
                self._depth += 1
                if char == "[" and self._depth == 2 and self._last_key == "subtasks":
                    self._array_depth = 3
                elif char == "{" and self._depth == self._array_depth:
                    self._item_start = i
            elif char in "}]":
                if char == "}" and self._depth == self._array_depth and self._item_start is not None:
                    item = _parse(text[self._item_start : i + 1])
                    if item is not None:
                        found.append(item)
                    self._item_start = None
                elif char == "]" and self._depth == 2:
                    self._array_depth = None
                self._depth -= 1
        self._pos = len(text)
        return found


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
