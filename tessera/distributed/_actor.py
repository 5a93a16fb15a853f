"""The Ray side: connecting to (or starting) Ray, and the actor that holds one model.

Nothing here imports ``ray`` at module level: :func:`import_ray` is the one place that does, so a team
without ``engine: ray`` never pays for it and a missing install is a one-line error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from tessera.errors import UserError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage
    from langchain_core.outputs import ChatGenerationChunk, ChatResult

    from tessera.config import DistributedConfig

__all__ = ["ModelActor", "connect", "import_ray"]

_MB = 1 << 20
INSTALL_HINT = 'distributed.engine: ray needs Ray: pip install "tessera[distributed]"'


def import_ray(settings: DistributedConfig | None = None) -> Any:
    """``import ray``, or a :class:`UserError` saying how to install it.

    With ``settings`` for a Ray that Tessera will start (no address), ``RAY_AUTH_MODE`` defaults to
    ``token`` first: Ray reads it once, on import.
    """
    if settings is not None and settings.address is None and "ray" not in sys.modules:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


def connect(settings: DistributedConfig) -> bool:
    """Join the Ray that ``settings`` names, or start a private one; True when this call started Ray.

    A Ray that is already initialized in this process (a test's ``ray.init``, a user's script) is used
    as it is. A private Ray is sized for small machines: ``num_cpus`` and a small object store (only
    messages travel through it), no dashboard, and token authentication (``RAY_AUTH_MODE=token`` unless
    set): Ray's ports listen on every interface, and without a token anyone who can reach them can run
    code here. Ray writes the token to ``~/.ray/auth_token`` once.
    """
    ray = import_ray(settings)
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if settings.address is None:
        ray.init(
            num_cpus=settings.num_cpus,
            object_store_memory=settings.object_store_mb * _MB,
            include_dashboard=False,
            **quiet,
        )
        return True
    try:
        ray.init(address=settings.address, **quiet)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; the user needs the address and why
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if os.environ.get("RAY_AUTH_MODE") != "token":
            reason += " (a cluster with token auth needs RAY_AUTH_MODE=token and its token here)"
        raise UserError(f"distributed.address: cannot join Ray at {settings.address!r}: {reason}") from None
    return False


class ModelActor:
    """One model inside a Ray worker process (an async actor; made remote by the pool).

    Args:
        factory: builds the model in the worker. An error is kept and raised by every call, so the
            caller sees the real cause instead of a dead actor.
    """

    def __init__(self, factory: Callable[[], BaseChatModel]) -> None:
        self._model: Any = None
        self._error: Exception | None = None
        try:
            self._model = factory()
        except Exception as exc:  # noqa: BLE001 - surfaced on the first call
            self._error = exc

    def _get(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._model

    async def ready(self) -> dict[str, Any]:
        """Where this actor runs: pid, node, and the resources Ray gave it."""
        import ray

        self._get()
        context = ray.get_runtime_context()
        return {
            "pid": os.getpid(),
            "node_id": context.get_node_id(),
            "resources": context.get_assigned_resources(),
        }

    async def generate(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatResult:
        """One generation."""
        result: ChatResult = await self._get()._agenerate(messages, stop, None, **kwargs)
        return result

    async def structured(
        self, messages: list[BaseMessage], schema: dict[str, Any], kwargs: dict[str, Any]
    ) -> AIMessage:
        """JSON text for ``schema`` (the caller validates it and retries)."""
        message: AIMessage = await self._get()._astructured(messages, schema, **kwargs)
        return message

    async def stream(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Chunks as the model makes them (called with ``num_returns="streaming"``)."""
        async for chunk in self._get()._astream(messages, stop, None, **kwargs):
            yield chunk

    async def load(self) -> None:
        """Load the weights now (a no-op for models without any)."""
        model = self._get()
        if hasattr(model, "load"):
            await asyncio.to_thread(model.load)

    async def status(self) -> dict[str, Any]:
        """Whether the weights are loaded, and how many generations run or wait."""
        model = self._model
        return {
            "loaded": bool(getattr(model, "loaded", model is not None)),
            "queue": int(getattr(model, "queue_length", 0)),
        }
