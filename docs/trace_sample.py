"""Run a small sample team and draw its timeline: ``python docs/trace_sample.py [OUT.png]``.

The team: a function planner that takes a moment and returns a 4-subtask DAG; a researcher on a function
model that sleeps like a remote call; a counter that calls a tool; a writer on a real llama.cpp model (a
generated ~26M-parameter GGUF, so load, prefill and decode show; ``preload: false`` keeps its load inside
the subtask); ``max_concurrency: 2``, so one subtask waits for a slot. Writes ``docs/trace.png`` and
``docs/trace_run.json`` (what ``tessera run --json`` prints), then prints the text timeline.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage

import tessera

PLAN = {
    "subtasks": [
        {
            "id": "facts",
            "specialist": "researcher",
            "instruction": "0.6 Gather facts about tea.",
            "depends_on": [],
        },
        {
            "id": "count",
            "specialist": "counter",
            "instruction": "How many words: green black oolong white.",
            "depends_on": [],
        },  # fmt: skip
        {
            "id": "draft",
            "specialist": "writer",
            "instruction": "Write about tea: {{facts}} ({{count}} kinds).",
            "depends_on": ["facts", "count"],
        },  # fmt: skip
        {"id": "title", "specialist": "researcher", "instruction": "0.3 Suggest a title.", "depends_on": []},
    ]
}


@tessera.tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    time.sleep(0.15)
    return len(text.split(":")[-1].split())


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    time.sleep(0.25)
    if schema is not None and "subtasks" in schema.get("properties", {}):
        return json.dumps(PLAN)
    if schema is not None:
        return json.dumps({"done": True, "reason": ""})
    return "A short piece about tea, with a title."


def researcher(messages: list[dict[str, Any]], **_: Any) -> str:
    seconds, _, text = messages[-1]["content"].partition(" ")
    time.sleep(float(seconds))
    return "Notes: " + text


def counter(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **_: Any) -> Any:
    time.sleep(0.05)
    if messages[-1]["role"] == "tool":
        return f"{messages[-1]['content']} words"
    call = {"name": "word_count", "args": {"text": messages[-1]["content"]}, "id": "c1", "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call])


def main(out: Path) -> None:
    from tessera import Team, TeamConfig
    from tessera.testing.tiny import write_bench_gguf
    from tessera.tracing.chart import draw_png
    from tessera.tracing.view import timeline_text

    gguf = write_bench_gguf(Path(tempfile.mkdtemp()) / "writer.gguf", n_ctx=1024)
    fn = {"backend": "function"}
    config = TeamConfig.from_dict(
        {
            "name": "trace-sample",
            "models": {
                "planner": {**fn, "callable": "__main__:planner"},
                "researcher-api": {**fn, "callable": "__main__:researcher"},
                "counter-fn": {**fn, "callable": "__main__:counter"},
                "writer-26m": {
                    "backend": "llama_cpp",
                    "path": str(gguf),
                    "n_ctx": 1024,
                    "max_tokens": 32,
                    "n_threads": 1,
                    "seed": 1,
                },
            },
            "planner": {"model": "planner"},
            "specialists": {
                "researcher": {"description": "finds facts", "model": "researcher-api"},
                "counter": {"description": "counts", "model": "counter-fn", "tools": ["__main__:word_count"]},
                "writer": {
                    "description": "writes",
                    "model": "writer-26m",
                    "system_prompt": "You write. " * 40,
                },
            },
            "runtime": {"max_concurrency": 2, "preload": False},  # the writer loads inside its subtask
            "memory": {"long_term": False},
            "state_dir": tempfile.mkdtemp(),
        }
    )
    team = Team(config)
    try:
        result = team.run("Write a short piece about tea.")
    finally:
        team.close()
    assert result.trace is not None
    out.with_name("trace_run.json").write_text(
        json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8"
    )
    draw_png(result.trace, out, title="sample run: docs/trace_sample.py", dpi=80)
    from rich.console import Console

    Console(width=120).print(timeline_text(result.trace, width=60))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("trace.png"))
