"""The single-model baseline of ``tessera bench tasks``: LangGraph's prebuilt ReAct agent.

One model (the team's planner model) with every tool the team's specialists use: ``python`` (the
sandbox), ``ocr``, ``tts`` and ``knowledge``. It reasons and calls tools in a loop until it answers, as
``langgraph.prebuilt.create_react_agent`` does; a step limit stops a loop that never ends.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.bench._task_suite import WAV_PATH, SuiteTask, TaskOutcome, check_answer

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.models.pool import ModelPool

__all__ = ["REACT_PROMPT", "ReactBaseline"]

REACT_PROMPT = (
    "You are a helpful assistant with tools. Use the python tool for any computation (print the result), "
    "the knowledge tool for questions about the team's documents, ocr to read images and tts to speak "
    "text aloud. When you have everything, answer the user directly and completely."
)
MAX_STEPS = 8
"""Model calls one task may make (each tool round trip is two graph steps)."""


class ReactBaseline:
    """A ReAct agent over the team's planner model and the tools of the team's specialists."""

    def __init__(self, config: TeamConfig, pool: ModelPool, output_dir: Path) -> None:
        from langgraph.prebuilt import create_react_agent

        from tessera.tools.base import ToolEnv, resolve_tool

        output_dir.mkdir(parents=True, exist_ok=True)
        env = ToolEnv(config, output_dir)
        tools = [
            resolve_tool(name, env, where=f"react.{name}") for name in ("python", "ocr", "tts", "knowledge")
        ]
        self.model_name = config.planner.model
        self.agent: Any = create_react_agent(pool.get(self.model_name), tools, prompt=REACT_PROMPT)

    def run(self, task: SuiteTask, text: str) -> TaskOutcome:
        """Run one task through the agent and judge its last message (with the WAVs its tools wrote)."""
        from langchain_core.messages import AIMessage, ToolMessage

        started = time.monotonic()
        try:
            state = self.agent.invoke({"messages": [("user", text)]}, {"recursion_limit": 2 * MAX_STEPS + 1})
        except Exception as exc:  # noqa: BLE001 - a step limit or a broken call fails one task
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            return TaskOutcome(
                task.id, "react", False, "run failed", time.monotonic() - started, error=reason
            )
        seconds = time.monotonic() - started
        messages = state["messages"]
        answer = str(messages[-1].content) if messages else ""
        tokens = 0
        for message in messages:
            if isinstance(message, AIMessage) and message.usage_metadata:
                tokens += message.usage_metadata["output_tokens"]
        files = [p for m in messages if isinstance(m, ToolMessage) for p in WAV_PATH.findall(str(m.content))]
        correct, why = check_answer(task.check, answer, files)
        tools = [c["name"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
        return TaskOutcome(
            task.id, "react", correct, why, seconds, tokens=tokens, specialists=tools, answer=answer
        )
