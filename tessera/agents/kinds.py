"""From ``specialists.<name>.kind`` to a specialist class; :mod:`tessera.graphs.executor` runs it.

Kinds: ``general``, ``coder``, ``tool``, ``retriever``, a name registered with ``@tessera.specialist``, or a
``module:Class`` path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tessera.agents.base import REGISTRY
from tessera.errors import ConfigError, UserError

if TYPE_CHECKING:
    from tessera.config import TeamConfig

__all__ = ["BUILTIN_KINDS", "check_specialists", "specialist_class", "specialist_problems"]

BUILTIN_KINDS = {
    "general": "tessera.agents.general:General",
    "coder": "tessera.agents.coder:Coder",
    "tool": "tessera.agents.toolagent:ToolAgent",
    "retriever": "tessera.agents.retriever:Retriever",
}


def check_specialists(config: TeamConfig) -> None:
    """Import ``imports``, then check every custom kind and named tool; raise :class:`UserError` early."""
    problems = specialist_problems(config)
    if problems:
        raise ConfigError(problems)


def specialist_problems(config: TeamConfig) -> list[str]:
    """Import ``imports``, custom kinds and ``module:attr`` tools; one line per one that fails."""
    from tessera._imports import import_object
    from tessera.tools.base import BUILTIN_TOOLS
    from tessera.tools.base import REGISTRY as TOOLS

    problems: list[str] = []
    for i, module in enumerate(config.imports):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - reported as the config's problem
            problems.append(f"imports.{i}: cannot import {module!r}: {type(exc).__name__}: {exc}")
    for name, spec in config.specialists.items():
        try:
            if spec.kind not in BUILTIN_KINDS:
                specialist_class(spec.kind, where=f"specialists.{name}.kind")
        except UserError as exc:
            problems.append(str(exc))
        for i, tool in enumerate([*spec.tools, *([spec.tool] if spec.tool else [])]):
            where = f"specialists.{name}.tool" if tool == spec.tool else f"specialists.{name}.tools.{i}"
            if ":" in tool:
                try:
                    import_object(tool, where=where)
                except UserError as exc:
                    problems.append(str(exc))
            elif tool not in BUILTIN_TOOLS and tool not in TOOLS:
                known = ", ".join(sorted({*BUILTIN_TOOLS, *TOOLS}))
                problems.append(f"{where}: unknown tool {tool!r} (known: {known}; or module:attr)")
    return problems


def specialist_class(kind: str, *, where: str) -> type[Any]:
    """The class behind ``kind``; a :class:`UserError` naming ``where`` when there is none."""
    if kind in REGISTRY:
        return REGISTRY[kind]
    path = BUILTIN_KINDS.get(kind, kind if ":" in kind else None)
    if path is None:
        known = ", ".join([*BUILTIN_KINDS, *REGISTRY])
        raise UserError(f"{where}: unknown kind {kind!r} (known: {known}; or module:Class)")
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if kind in BUILTIN_KINDS:
            raise UserError(f"{where}: the {kind!r} specialist is not available yet ({exc})") from None
        raise UserError(f"{where}: cannot import {module_name!r}: {exc}") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise UserError(f"{where}: module {module_name!r} has no attribute {attr!r}")
    if not isinstance(cls, type) or not callable(getattr(cls, "run", None)):
        raise UserError(f"{where}: {path!r} is not a class with a run(instruction) method")
    return cls
