"""Function models for the chat REPL tests (importable as ``tests.repl_fakes:NAME`` from team files)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from tessera.models import demo

SLOW_S = 30.0
"""How long a SLOW subtask takes: far longer than any test waits, so only Ctrl-C ends it."""


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **kw: Any) -> str:
    """The rule-based demo planner; each planning call's user message is appended to $REPL_PLANNER_LOG.

    The log has one JSON string per line, so a test can read exactly what the planner saw on each turn.
    """
    if schema is not None and "subtasks" in schema.get("properties", {}):
        log = os.environ.get("REPL_PLANNER_LOG")
        if log:
            user = next(m["content"] for m in messages if m["role"] == "user")
            with open(log, "a", encoding="utf-8") as out:
                out.write(json.dumps(user) + "\n")
    return demo.planner(messages, schema=schema, **kw)


async def worker(messages: list[dict[str, Any]], **_: Any) -> AsyncIterator[str]:
    """Streams ``did: <instruction>`` word by word; an instruction with SLOW first waits (cancellably)."""
    text = str(messages[-1]["content"])
    if "SLOW" in text:
        yield "working "
        await asyncio.sleep(SLOW_S)
    for word in f"did: {text}".split(" "):
        await asyncio.sleep(0.005)
        yield word + " "
