"""The error hierarchy.

Two roots, as in pydantic-ai: :class:`UserError` is a mistake the developer or user can fix (a bad config,
a missing file, a download that cannot happen offline); :class:`AgentRunError` is a model or a tool
misbehaving at run time. The CLI turns any :class:`TesseraError` into one line and an exit code.
"""

from __future__ import annotations


class TesseraError(Exception):
    """Base of every error Tessera raises on purpose."""

    exit_code: int = 1


class UserError(TesseraError):
    """Something the user can fix: bad config, bad input, a missing file."""

    exit_code = 2


class ConfigError(UserError):
    """A team config is invalid. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ModelLoadError(UserError):
    """A model cannot be loaded: missing file, not a GGUF file, not enough memory."""


class ModelDownloadError(UserError):
    """A model cannot be downloaded from the hub (offline, unknown repo or file)."""


class ImportTargetError(UserError):
    """A ``module:attr`` path in a config cannot be imported (no such module, or no such attribute)."""


class MissingDependencyError(UserError):
    """An optional dependency is not installed; the message says which extra to install."""


class AgentRunError(TesseraError):
    """A model or tool misbehaved while running."""


class ContextLengthError(AgentRunError):
    """A prompt does not fit a model's context window."""


class StructuredOutputError(AgentRunError):
    """A model's output did not validate against the requested schema, even after a retry."""


class ModelUnreachable(AgentRunError):
    """A model's endpoint did not answer: connection refused, a timeout, a 5xx. The endpoint failed, not
    the task, so a routed subtask falls back to a local tier (see :mod:`tessera.graphs.executor`)."""


class SpecialistError(AgentRunError):
    """A specialist failed an attempt at its subtask: an error it returned, an empty answer, a failed check.

    The subtask executor (:mod:`tessera.graphs.executor`) records one per failed attempt as the run's
    ``failure``; escalation and fallback decide on its type, its message is the subtask's ``error``.
    """


class SpecialistTimeout(SpecialistError):
    """An attempt ran past its specialist's ``timeout_s`` (or its kind's overall deadline)."""
