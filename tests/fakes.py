"""Function models for orchestration tests (importable as ``tests.fakes:NAME`` from team configs)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

PLANS: dict[str, Any] = {}
"""Plan JSON by task text, set by the tests."""


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    first_user = next(m for m in messages if m["role"] == "user")
    task = first_user["content"].rsplit("Task: ", 1)[-1]
    if schema is not None and "subtasks" in schema.get("properties", {}):
        plan = PLANS[task]
        return json.dumps(plan(messages) if callable(plan) else plan)
    if schema is not None:  # the join decision
        return json.dumps(
            {"done": "Replan because" in str(messages) or "replan" not in task, "reason": "retry it"}
        )
    return "final: " + " | ".join(
        line for line in messages[-1]["content"].splitlines() if line.startswith("[")
    )


def sleeper(messages: list[dict[str, Any]], **_: Any) -> str:
    time.sleep(0.5)
    return "slept: " + messages[-1]["content"]


def echo(messages: list[dict[str, Any]], **_: Any) -> str:
    text = messages[-1]["content"]
    if "FAIL" in text:
        raise RuntimeError("asked to fail")
    if "HANG" in text:
        time.sleep(3)
    return "did: " + text


def counting(messages: list[dict[str, Any]], **_: Any) -> str:
    """Logs each instruction to $TESSERA_TEST_CALLS; 'SLOW' ones sleep while $TESSERA_TEST_SLOW is set."""
    text = messages[-1]["content"]
    with open(os.environ["TESSERA_TEST_CALLS"], "a", encoding="utf-8") as log:
        log.write(text + "\n")
    if "SLOW" in text and os.environ.get("TESSERA_TEST_SLOW"):
        time.sleep(120)
    return "did: " + text


def env_planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **kw: Any) -> str:
    """Plans with the JSON in $TESSERA_TEST_PLAN (for tests that run the CLI in a subprocess)."""
    if schema is not None and "subtasks" in schema.get("properties", {}):
        return os.environ["TESSERA_TEST_PLAN"]
    return planner(messages, schema=schema, **kw)


def streamer(messages: list[dict[str, Any]], **_: Any) -> Any:
    """Yields its answer word by word (a streaming model)."""
    for word in ("did: " + messages[-1]["content"]).split(" "):
        yield word + " "


def scribe(messages: list[dict[str, Any]], **_: Any) -> Any:
    """An answer model that shows which system prompt it got, in pieces."""
    yield "scribe"
    yield f"({messages[0]['content'][:12]})"
    yield ": " + str(messages[-1]["content"].count("\n[")) + " results"


def broken(messages: list[dict[str, Any]], **_: Any) -> str:
    """A model that always fails (for escalation tests)."""
    raise RuntimeError("this tier cannot do it")


def hang(messages: list[dict[str, Any]], **_: Any) -> str:
    """A model that never answers in time."""
    time.sleep(3)
    return "too late"


def wrong_add(messages: list[dict[str, Any]], **_: Any) -> str:
    """A coder model whose code runs but fails its tests."""
    return "```python\ndef add(a, b):\n    return a - b\n```"


def right_add(messages: list[dict[str, Any]], **_: Any) -> str:
    """A coder model whose code passes."""
    return "```python\ndef add(a, b):\n    return a + b\n```"


def hard(instruction: str, dependencies: int) -> float:
    """A ``routing.difficulty`` that sends everything to the largest tier."""
    return 0.99


def small_json(messages: list[dict[str, Any]], **_: Any) -> str:
    """A small tier whose output breaks the schema {"answer": string} (wrong type)."""
    return json.dumps({"answer": 42})


def large_json(messages: list[dict[str, Any]], **_: Any) -> str:
    """A large tier whose output matches the schema {"answer": string}, in a fenced block."""
    return '```json\n{"answer": "LARGE: ' + messages[-1]["content"][:40] + '"}\n```'


def judge(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """A verifier that accepts only work the large tier did."""
    ok = "LARGE" in messages[-1]["content"]
    return json.dumps({"ok": ok, "reason": "" if ok else "too shallow"})


def rater(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """A smallest tier that, as the difficulty classifier, rates proofs 5 and everything else 1."""
    if schema is not None and "difficulty" in schema.get("properties", {}):
        return json.dumps({"difficulty": 5 if "prove" in messages[-1]["content"].lower() else 1})
    return "small did: " + messages[-1]["content"]


PLAN_FINISHED: dict[str, float] = {}
"""Task -> when ``slow_planner`` yielded the last piece of its plan."""


def slow_planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **kw: Any) -> Any:
    """Streams the plan in ``PLANS`` (see ``planner``) in 40 pieces over about 2 seconds."""
    if schema is None or "subtasks" not in schema.get("properties", {}):
        return planner(messages, schema=schema, **kw)
    task = next(m for m in messages if m["role"] == "user")["content"].rsplit("Task: ", 1)[-1]
    text = planner(messages, schema=schema, **kw)
    return _trickle(task, text)


def _trickle(task: str, text: str) -> Any:
    step = max(1, len(text) // 40)
    for i in range(0, len(text), step):
        time.sleep(0.05)
        yield text[i : i + step]
    PLAN_FINISHED[task] = time.time()
