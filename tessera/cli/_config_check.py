"""Checks that a valid team file can also run: everything ``run`` would import or open must be there.

:func:`tessera.config.load_team` checks the file's shape and names. :func:`loadable_problems` goes further
and imports what the team names (``imports``, function-model callables, custom kinds, ``module:attr`` tools,
``routing.difficulty``) and looks for local model files, so ``tessera validate`` and ``tessera run`` report
such a mistake as one line naming the file and field, before any model runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tessera.errors import ConfigError, UserError

if TYPE_CHECKING:
    from tessera.config import TeamConfig

__all__ = ["check_loadable", "loadable_problems"]


def loadable_problems(config: TeamConfig) -> list[str]:
    """Every reason ``config`` cannot run, one line each, without the file prefix."""
    from tessera._imports import import_object
    from tessera.agents.kinds import specialist_problems
    from tessera.config import FunctionModelConfig, LlamaCppModelConfig
    from tessera.models.function import import_callable

    problems = specialist_problems(config)
    for name, model in config.models.items():
        if isinstance(model, FunctionModelConfig) and model.callable is not None:
            problems.extend(_failure(import_callable, model.callable, f"models.{name}.callable"))
        elif isinstance(model, LlamaCppModelConfig) and model.path is not None:
            if not model.path.is_file():
                problems.append(f"models.{name}.path: {model.path}: no such file")
    difficulty = config.routing.difficulty
    if difficulty is not None and difficulty != "classifier":
        problems.extend(_failure(import_object, difficulty, "routing.difficulty"))
    problems.extend(_mcp_problems(config))
    problems.extend(_embedder_problems(config))
    return problems


def _embedder_problems(config: TeamConfig) -> list[str]:
    """A sentence-transformers embedder needs the ``embed`` extra; a ``.gguf`` one runs on llama.cpp."""
    spec = (config.memory.embedder or "").strip()
    if not spec or spec.lower().endswith(".gguf"):
        return []
    from tessera.memory.embedder import require_sentence_transformers

    try:
        require_sentence_transformers()
    except UserError as exc:
        return [f"memory.embedder: {exc}"]
    return []


def _mcp_problems(config: TeamConfig) -> list[str]:
    """The ``mcp`` SDK must be installed for a team that lists servers, and a stdio command must exist."""
    import importlib.util
    import shutil

    if not config.mcp.servers:
        return []
    if importlib.util.find_spec("mcp") is None:
        return ['mcp.servers: MCP needs the mcp SDK: pip install "tessera[mcp]"']
    problems: list[str] = []
    for name, server in config.mcp.servers.items():
        command = server.command
        if command is not None and shutil.which(command, path=os.environ.get("PATH")) is None:
            if not (server.cwd is not None and shutil.which(str(server.cwd / command))):
                problems.append(f"mcp.servers.{name}.command: {command!r} is not a program on PATH")
    return problems


def check_loadable(config: TeamConfig, label: str) -> None:
    """Raise :class:`ConfigError` with ``label: field: problem`` lines when ``config`` cannot run."""
    problems = loadable_problems(config)
    if problems:
        raise ConfigError([f"{label}: {p}" for p in problems])


def _failure(importer: Callable[..., Any], spec: str, where: str) -> list[str]:
    try:
        importer(spec, where=where)
    except UserError as exc:
        return [str(exc)]
    return []
