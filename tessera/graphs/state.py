"""The graph's state: a TypedDict with reducers, so parallel subtasks merge their results."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from tessera.types import Plan, SubtaskResult

__all__ = ["TeamState", "merge_results"]


def merge_results(
    old: dict[str, SubtaskResult] | None, new: dict[str, SubtaskResult] | None
) -> dict[str, SubtaskResult]:
    """Results by subtask id; a later result for an id (a rerun after a replan) replaces the earlier one."""
    return {**(old or {}), **(new or {})}


class TeamState(TypedDict, total=False):
    """Everything one task's run knows, checkpointed between steps."""

    task: str
    plan: Plan | None
    results: Annotated[dict[str, SubtaskResult], merge_results]
    replans: int
    replan_reason: str | None
    notes: Annotated[list[str], operator.add]
    planning_s: float
    answer: str
