"""Tools: langchain-core tools, built in (``python``, ``ocr``, ``tts``, ``asr``, ``knowledge``) or registered
with ``@tessera.tool``.

A built-in tool lives in ``tessera/tools/<name>.py`` and exposes two functions:

- ``make_tool(env: ToolEnv) -> BaseTool``: the tool, configured from ``env.config.tools.<name>``;
- ``args_from_instruction(instruction: str) -> dict``: the tool's arguments when a tool agent
  (``kind: tool``) gets a subtask's instruction. It raises ``ValueError`` with a clear message when the
  instruction does not contain what the tool needs (e.g. no image path).

A specialist's ``tools:`` entries are names: a built-in, a name registered with :func:`tool`, or a
``module:attr`` path to a langchain-core tool (or a plain function, wrapped on the spot).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from langchain_core.tools import BaseTool, StructuredTool

from tessera.errors import UserError

if TYPE_CHECKING:
    from tessera.config import TeamConfig

__all__ = ["BUILTIN_TOOLS", "REGISTRY", "ToolEnv", "resolve_tool", "tool", "tool_module"]

BUILTIN_TOOLS = ("python", "ocr", "tts", "asr", "knowledge")

REGISTRY: dict[str, BaseTool] = {}
"""Tools registered with :func:`tool`, by name."""

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ToolEnv:
    """What a built-in tool is configured from."""

    config: TeamConfig
    output_dir: Path
    """Where tools write files (e.g. the WAVs of ``tts``)."""


@overload
def tool(fn: F, /) -> BaseTool: ...
@overload
def tool(*, name: str | None = None) -> Callable[[F], BaseTool]: ...


def tool(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Register a function as a tool, usable by name from a specialist's ``tools:`` list.

    ``@tessera.tool`` or ``@tessera.tool(name="weather")``. The docstring is the description the model
    sees; the signature's type hints are its arguments.
    """

    def register(func: Callable[..., Any]) -> BaseTool:
        made = StructuredTool.from_function(func, name=name or func.__name__)
        REGISTRY[made.name] = made
        return made

    return register(fn) if fn is not None else register


def tool_module(name: str) -> Any:
    """The module of built-in tool ``name``."""
    return importlib.import_module(f"tessera.tools.{name}")


def resolve_tool(name: str, env: ToolEnv, *, where: str) -> BaseTool:
    """The tool a ``tools:`` entry names; a :class:`UserError` naming ``where`` when there is none."""
    if name in BUILTIN_TOOLS:
        made: BaseTool = tool_module(name).make_tool(env)
        return made
    if name in REGISTRY:
        return REGISTRY[name]
    if ":" in name:
        from tessera._imports import import_object

        target: Any = import_object(name, where=where)
        if isinstance(target, BaseTool):
            return target
        if callable(target):
            return StructuredTool.from_function(target)
        raise UserError(f"{where}: {name!r} is neither a tool nor a function")
    known = sorted({*BUILTIN_TOOLS, *REGISTRY})
    raise UserError(f"{where}: unknown tool {name!r} (known: {', '.join(known)}; or module:attr)")
