"""The graph's state: a TypedDict with reducers, so parallel subtasks merge their results.

A thread keeps its state between runs, so a new task on an old thread starts by writing ``None`` to
``results`` and ``notes``: their reducers treat ``None`` as "start empty".
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from tessera.types import Plan, SubtaskResult

__all__ = ["TeamState", "add_notes", "fresh_state", "merge_results"]


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
    notes: Annotated[list[str], add_notes]
    planning_s: float
    answer: str


def fresh_state(task: str) -> TeamState:
    """The input that starts ``task`` from scratch, on a new thread or an old one."""
    return {
        "task": task,
        "plan": None,
        "results": None,  # type: ignore[typeddict-item]  # reset, see merge_results
        "replans": 0,
        "replan_reason": None,
        "rejected": None,
        "notes": None,  # type: ignore[typeddict-item]
        "planning_s": 0.0,
        "answer": "",
    }
