"""A stand-in for a tool-calling model, so the example runs with no download.

It calls the first tool it is offered with the first two integers of its instruction, then reports the
tool's answer. A real model (``backend: llama_cpp`` or ``openai``) decides the call itself.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage


def tool_user(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **_: Any) -> Any:
    last = messages[-1]
    if last["role"] == "tool":
        return f"The result is {last['content']}."
    numbers = [int(n) for n in re.findall(r"-?\d+", last["content"])][:2]
    if not tools or len(numbers) < 2:
        return "I need a tool and two integers."
    name = tools[0]["function"]["name"]
    call = {"name": name, "args": {"a": numbers[0], "b": numbers[1]}, "id": "call1", "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call])
