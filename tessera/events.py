"""What :meth:`Team.stream` yields: typed events, one class per kind, each tagged with ``type``.

A run emits ``plan``, then ``subtask_started`` / ``token`` / ``subtask_finished`` for each subtask as it
runs (interleaved across parallel subtasks), ``replan`` when the join step asks for a new plan (then
``plan`` again), ``answer_token`` while the answer is written, and ``done`` with the :class:`RunResult`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tessera.types import Plan, RunResult, SubtaskResult

__all__ = [
    "AnswerToken",
    "Done",
    "Event",
    "PlanReady",
    "Replan",
    "SubtaskFinished",
    "SubtaskStarted",
    "Token",
]


class PlanReady(BaseModel):
    """The planner produced a plan (``replans`` is 0 for the first plan)."""

    type: Literal["plan"] = "plan"
    plan: Plan
    replans: int = 0
    fallback: bool = False


class SubtaskStarted(BaseModel):
    """A subtask got its dependencies and a slot, and its specialist is running."""

    type: Literal["subtask_started"] = "subtask_started"
    id: str
    specialist: str
    model: str | None = None
    started: float


class Token(BaseModel):
    """A piece of a subtask's output as its model generates it."""

    type: Literal["token"] = "token"
    id: str
    text: str


class SubtaskFinished(BaseModel):
    """A subtask ended: done, failed or skipped."""

    type: Literal["subtask_finished"] = "subtask_finished"
    result: SubtaskResult


class Replan(BaseModel):
    """The join step asked for a new plan."""

    type: Literal["replan"] = "replan"
    reason: str
    replans: int


class AnswerToken(BaseModel):
    """A piece of the final answer."""

    type: Literal["answer_token"] = "answer_token"
    text: str


class Done(BaseModel):
    """The run stopped: finished, failed, or waiting for plan approval (see ``result.status``)."""

    type: Literal["done"] = "done"
    result: RunResult


Event = Annotated[
    PlanReady | SubtaskStarted | Token | SubtaskFinished | Replan | AnswerToken | Done,
    Field(discriminator="type"),
]
