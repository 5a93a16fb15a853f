"""Function models for the MCP tests: a model that calls the tool its instruction names."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage


def caller(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **_: Any) -> Any:
    """``CALL name {json args}`` calls that tool; the tool's answer comes back with the tools offered."""
    offered = ",".join(sorted(t["function"]["name"] for t in tools or []))
    last = messages[-1]
    if last["role"] == "tool":
        return f"tool said {last['content']} [offered: {offered}]"
    instruction = last["content"]
    if not instruction.startswith("CALL "):
        return f"no call [offered: {offered}]"
    name, _, args = instruction.removeprefix("CALL ").partition(" ")
    call = {"name": name, "args": json.loads(args or "{}"), "id": "c1", "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call])
