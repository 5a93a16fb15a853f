"""Function models for memory tests (importable as ``tests.memory.recording:NAME`` from team configs)."""

from __future__ import annotations

from typing import Any

from tessera.testing.demo import planner as demo_planner

PLANNER_SAW: list[str] = []
"""The user message of every planning call, in order."""

ANSWERER_SAW: list[str] = []
"""The prompt of every call to ``answerer``."""


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **kw: Any) -> str:
    """The demo planner, recording what the planner was shown."""
    if schema is not None and "subtasks" in schema.get("properties", {}):
        PLANNER_SAW.append(next(m["content"] for m in messages if m["role"] == "user"))
    return demo_planner(messages, schema=schema, **kw)


def answerer(messages: list[dict[str, Any]], **_: Any) -> str:
    """Answers from the first numbered source, citing it, and records the prompt."""
    prompt = messages[-1]["content"]
    ANSWERER_SAW.append(prompt)
    if "[1]" not in prompt:
        return "no sources"
    source = prompt.split("[1] ", 1)[1].split("\n\n[2] ", 1)[0].split("\n\nQuestion:", 1)[0]
    text = [line for line in source.splitlines()[1:] if line.strip() and not line.startswith("#")]
    return f"According to the docs, {text[0].strip()} [1]"
