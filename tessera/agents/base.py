"""The specialist contract: one class per kind, one ``run`` method.

A specialist gets a subtask's instruction (``{{id}}`` references already filled in) and returns a
:class:`SpecialistRun`. Built-in kinds: ``general`` (:mod:`tessera.agents.general`), ``coder``
(:mod:`tessera.agents.coder`), ``tool`` (:mod:`tessera.agents.toolagent`), ``retriever``. Users add kinds
with :func:`specialist` or a ``module:Class`` path in ``specialists.<name>.kind``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.tools import BaseTool

    from tessera.config import SpecialistConfig, TeamConfig

__all__ = ["REGISTRY", "Specialist", "SpecialistContext", "SpecialistRun", "specialist"]


@dataclass
class SpecialistRun:
    """What one subtask's specialist produced."""

    output: str = ""
    error: str | None = None
    failure: Exception | None = None
    """The typed failure behind ``error``: the exception an attempt raised (a model's
    :class:`~tessera.errors.ModelUnreachable`, a :class:`~tessera.errors.SpecialistTimeout`, ...). The
    subtask executor fills it in (a :class:`~tessera.errors.SpecialistError`) when a specialist only
    returned ``error``; escalation and fallback decide on its type, never on the text."""
    attempts: int = 0
    tokens: int = 0
    artifacts: dict[str, Any] = field(default_factory=dict)
    """Kind-specific extras, e.g. the coder's final ``code`` and ``exit_code``, a WAV's ``path``."""


@dataclass
class SpecialistContext:
    """Everything a specialist may use for one subtask."""

    name: str
    spec: SpecialistConfig
    team: TeamConfig
    model: BaseChatModel | None
    """The specialist's model from the pool (None for tool agents)."""
    tools: list[BaseTool]
    """Only the tools the specialist lists (tool agents: their one tool)."""
    output_dir: Path
    on_token: Callable[[str], None] | None = None
    """Set when the run streams: pass generated text pieces here."""
    scratch: dict[str, Any] = field(default_factory=dict)
    """Context a specialist built for this subtask (retrieved sources, ...). It survives escalation to a
    bigger model, so the next tier reuses it instead of building it again."""


class Specialist(ABC):
    """Base of the built-in specialists. Subclasses implement :meth:`run`."""

    manages_attempts: bool = False
    """True when :meth:`run` loops over ``max_attempts`` itself (it then gets one overall deadline)."""

    def __init__(self, ctx: SpecialistContext) -> None:
        self.ctx = ctx

    @abstractmethod
    async def run(self, instruction: str) -> SpecialistRun:
        """Do the subtask. Failures are returned (``error``), not raised, so attempts can be counted."""


REGISTRY: dict[str, type[Any]] = {}
"""Specialist classes registered with :func:`specialist`, by kind name."""

C = TypeVar("C", bound=type[Any])


def specialist(cls: C | None = None, /, *, name: str | None = None) -> Any:
    """Register a class as a specialist kind, usable as ``kind: NAME`` in YAML.

    The class has a ``run(instruction)`` method, sync or async, returning text or a
    :class:`SpecialistRun`. Its ``__init__`` takes the :class:`SpecialistContext`, or nothing. The kind's
    name is ``name`` or the class name in lower case.
    """

    def register(target: C) -> C:
        if not callable(getattr(target, "run", None)):
            raise TypeError(f"specialist {target.__name__} needs a run(instruction) method")
        REGISTRY[name or target.__name__.lower()] = target
        return target

    return register(cls) if cls is not None else register


def instantiate(cls: type[Any], ctx: SpecialistContext) -> Any:
    """``cls(ctx)`` when its ``__init__`` takes an argument, else ``cls()``."""
    params = [p for p in inspect.signature(cls).parameters.values() if p.kind != p.VAR_KEYWORD]
    return cls(ctx) if params else cls()
