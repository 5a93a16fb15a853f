"""Tessera: teams of small specialist models.

The public face. Names are imported lazily, so ``import tessera`` (and ``tessera --help``) stays fast and
pulls in no torch, chromadb or llama_cpp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tessera._version import __version__

if TYPE_CHECKING:
    from tessera.agents.base import Specialist, SpecialistContext, SpecialistRun, specialist
    from tessera.config import TeamConfig, load_team
    from tessera.errors import (
        AgentRunError,
        ConfigError,
        ModelDownloadError,
        ModelLoadError,
        ModelUnreachable,
        SpecialistError,
        SpecialistTimeout,
        StructuredOutputError,
        TesseraError,
        UserError,
    )
    from tessera.events import Event
    from tessera.models.function import FunctionModel, ScriptedModel
    from tessera.models.llama_cpp import LlamaCppChatModel
    from tessera.models.openai import OpenAIChatModel
    from tessera.models.pool import ModelPool
    from tessera.team import Team
    from tessera.tools.base import tool
    from tessera.types import Approval, Plan, RunResult, Subtask, SubtaskResult

_EXPORTS = {
    "Team": "tessera.team",
    "RunResult": "tessera.types",
    "Approval": "tessera.types",
    "Event": "tessera.events",
    "specialist": "tessera.agents.base",
    "Specialist": "tessera.agents.base",
    "SpecialistContext": "tessera.agents.base",
    "SpecialistRun": "tessera.agents.base",
    "tool": "tessera.tools.base",
    "Plan": "tessera.types",
    "Subtask": "tessera.types",
    "SubtaskResult": "tessera.types",
    "TeamConfig": "tessera.config",
    "load_team": "tessera.config",
    "FunctionModel": "tessera.models.function",
    "ScriptedModel": "tessera.models.function",
    "LlamaCppChatModel": "tessera.models.llama_cpp",
    "OpenAIChatModel": "tessera.models.openai",
    "ModelPool": "tessera.models.pool",
    **{
        name: "tessera.errors"
        for name in (
            "TesseraError",
            "UserError",
            "ConfigError",
            "ModelLoadError",
            "ModelDownloadError",
            "AgentRunError",
            "StructuredOutputError",
            "ModelUnreachable",
            "SpecialistError",
            "SpecialistTimeout",
        )
    },
}

__all__ = [
    "AgentRunError",
    "Approval",
    "Event",
    "Plan",
    "RunResult",
    "Subtask",
    "SubtaskResult",
    "Team",
    "ConfigError",
    "FunctionModel",
    "LlamaCppChatModel",
    "ModelDownloadError",
    "ModelLoadError",
    "ModelPool",
    "ModelUnreachable",
    "OpenAIChatModel",
    "ScriptedModel",
    "Specialist",
    "SpecialistContext",
    "SpecialistRun",
    "SpecialistError",
    "SpecialistTimeout",
    "StructuredOutputError",
    "TeamConfig",
    "TesseraError",
    "UserError",
    "__version__",
    "load_team",
    "specialist",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tessera' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
