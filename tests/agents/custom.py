"""A user's module: a custom tool and custom specialists, named from YAML (``imports: [tests.agents.custom]``)."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage

import tessera
from tessera import Specialist, SpecialistRun


@tessera.tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


@tessera.tool(name="secret")
def secret_tool(text: str) -> str:
    """A tool that no specialist in the tests lists."""
    return "leaked: " + text


@tessera.specialist(name="shouter")
class Shouter:
    """Registered by name; a plain class with a sync run method and no constructor argument."""

    def run(self, instruction: str) -> str:
        return instruction.upper()


class Reverser(Specialist):
    """Named by path (``kind: tests.agents.custom:Reverser``); gets its context."""

    async def run(self, instruction: str) -> SpecialistRun:
        return SpecialistRun(output=instruction[::-1], artifacts={"by": self.ctx.name})


def tool_caller(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **_: Any) -> Any:
    """A model that calls the first tool it is offered with the instruction, then reports the result."""
    last = messages[-1]
    if last["role"] == "tool":
        return f"tool said {last['content']}"
    offered = [t["function"]["name"] for t in tools or []]
    wanted = "secret" if "SECRET" in last["content"] else offered[0]
    return AIMessage(
        content="",
        tool_calls=[{"name": wanted, "args": {"text": last["content"]}, "id": "call1", "type": "tool_call"}],
    )


def plan(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """Plans from a JSON plan in the task text (``PLAN {...}``)."""
    task = next(m for m in messages if m["role"] == "user")["content"]
    if schema is not None and "subtasks" in schema.get("properties", {}):
        return task.split("PLAN ", 1)[1]
    if schema is not None:
        return json.dumps({"done": True, "reason": ""})
    return messages[-1]["content"]


def coder_model(messages: list[dict[str, Any]], **_: Any) -> str:
    """Writes a wrong ``add`` first, and a right one once it is told the tests failed."""
    if "failed" in messages[-1]["content"]:
        return "```python\ndef add(a, b):\n    return a + b\nprint(add(2, 3))\n```"
    return "```python\ndef add(a, b):\n    return a - b\nprint(add(2, 3))\n```"
