"""The graph's state: a TypedDict with reducers, so parallel subtasks merge their results.

A thread keeps its state between runs, so a new task on an old thread starts by writing ``None`` to
``results`` and ``notes``: their reducers treat ``None`` as "start empty".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from tessera.types import Plan, SubtaskResult

__all__ = ["TeamState", "add_notes", "conversation", "fresh_state", "merge_results", "next_history"]


def merge_results(
    old: dict[str, SubtaskResult] | None, new: dict[str, SubtaskResult] | None
) -> dict[str, SubtaskResult]:
    """Results by subtask id; a later result for an id (a rerun after a replan) replaces the earlier one.

    ``None`` resets to empty (a new task on the thread).
    """
    if new is None:
        return {}
    return {**(old or {}), **new}


def add_notes(old: list[str] | None, new: list[str] | None) -> list[str]:
    """Notes accumulate; ``None`` resets to empty."""
    if new is None:
        return []
    return [*(old or []), *new]


class TeamState(TypedDict, total=False):
    """Everything one task's run knows, checkpointed between steps."""

    task: str
    plan: Plan | None
    results: Annotated[dict[str, SubtaskResult], merge_results]
    replans: int
    replan_reason: str | None
    rejected: str | None
    """Set when the user rejected the plan (the reason, possibly empty)."""
    memory_failed: bool
    """Set when long-term memory could not be recalled (its embedder did not load): the run is partial."""
    notes: Annotated[list[str], add_notes]
    planning_s: float
    answer: str
    history: list[dict[str, str]]
    """Earlier turns of the conversation on this thread, oldest first: ``{"user": ..., "assistant": ...}``."""


MAX_TURNS = 6
"""How many earlier turns of a thread the planner and the answer model see."""
_TURN_CHARS = 600


def fresh_state(task: str, history: list[dict[str, str]] | None = None) -> TeamState:
    """The input that starts ``task`` from scratch, on a new thread or an old one (``history``: its turns)."""
    return {
        "task": task,
        "history": list(history or [])[-MAX_TURNS:],
        "plan": None,
        "results": None,  # type: ignore[typeddict-item]  # reset, see merge_results
        "replans": 0,
        "replan_reason": None,
        "rejected": None,
        "notes": None,  # type: ignore[typeddict-item]
        "planning_s": 0.0,
        "answer": "",
    }


def next_history(previous: Mapping[str, Any]) -> list[dict[str, str]]:
    """The history a new task on a thread starts with: the thread's, plus its last task if it was answered."""
    turns = [t for t in previous.get("history") or [] if isinstance(t, dict)]
    task, answer = previous.get("task"), previous.get("answer")
    if isinstance(task, str) and isinstance(answer, str) and task and answer:
        turns.append({"user": _clip(task), "assistant": _clip(answer)})
    return turns[-MAX_TURNS:]


def conversation(history: list[dict[str, str]]) -> str:
    """Earlier turns as prompt context (empty when there are none)."""
    if not history:
        return ""
    lines = ["Conversation so far:"]
    for turn in history:
        lines += [f"User: {turn.get('user', '')}", f"Assistant: {turn.get('assistant', '')}"]
    return "\n".join(lines)


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TURN_CHARS else text[: _TURN_CHARS - 1] + "…"
