"""Function models served by ``tessera serve`` in the tests (``tests.serve.remote_fakes:NAME``).

Each server process gets ``TESSERA_TEST_SERVER`` (its name in the test) and may log its calls to
``TESSERA_TEST_CALLS``: a ``start <instruction>`` line when a call begins, ``end <instruction>`` when it
returns, so a test can tell which server did which work, and that nothing ran twice.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def _log(event: str, text: str) -> None:
    path = os.environ.get("TESSERA_TEST_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{event} {text}\n")


def tag(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """Says which server answered; with a schema, a JSON object naming it."""
    server = os.environ.get("TESSERA_TEST_SERVER", "?")
    text = messages[-1]["content"] if schema is None else messages[0]["content"]
    if schema is not None:
        return json.dumps({"server": server, "words": len(text.split())})
    _log("start", text)
    delay = float(os.environ.get("TESSERA_TEST_SLEEP", "0"))
    if delay:
        time.sleep(delay)
    _log("end", text)
    return f"{server} did: {text}"


def words(messages: list[dict[str, Any]], **_: Any) -> Any:
    """Streams its answer word by word."""
    server = os.environ.get("TESSERA_TEST_SERVER", "?")
    for word in f"{server} says: {messages[-1]['content']}".split(" "):
        yield word + " "


def caller(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **_: Any) -> Any:
    """Calls the first tool it is given with ``{"x": 1}``; answers in text once a tool has replied."""
    from langchain_core.messages import AIMessage

    if tools and messages[-1]["role"] != "tool":
        return AIMessage(
            content="", tool_calls=[{"name": tools[0]["function"]["name"], "args": {"x": 1}, "id": "c1"}]
        )
    return "tool said: " + str(messages[-1]["content"])
