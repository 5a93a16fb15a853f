"""The model pool: a team's models, built on demand and kept warm under a memory budget.

Local models are expensive to load and cheap to keep, so the pool keeps them loaded until the RAM budget
forces a choice, then unloads the least recently used one that is not busy and not pinned
(``keep_warm``). Generations on one llama.cpp model are serialized by the model itself; the pool only
decides what stays in memory. It is safe to use from threads and from asyncio.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard

from langchain_core.language_models import BaseChatModel

from tessera._imports import import_object
from tessera._system import total_memory_bytes
from tessera.errors import ModelLoadError, UserError
from tessera.models import BACKENDS, build_model, is_local, loads_weights
from tessera.tracing import carry

if TYPE_CHECKING:
    from tessera.config import ModelConfig, TeamConfig
    from tessera.models.llama_cpp import LlamaCppChatModel

__all__ = ["ModelPool", "ModelStatus"]

ENGINES: dict[str, str] = {"ray": "tessera.distributed:RayModelPool"}
"""Pool classes for ``distributed.engine``, as ``module:Class``: a distributed engine builds on the pool,
so the pool names it and imports it only when a team asks for it (as ``tessera.models.BACKENDS`` does)."""

log = logging.getLogger(__name__)
_MB = 1 << 20


@dataclass(frozen=True)
class ModelStatus:
    """One model as the pool sees it."""

    name: str
    backend: str
    loaded: bool
    loads_weights: bool
    """Whether it holds weights here (a model without weights is always ready: ``loaded`` stays False)."""
    ram_bytes: int | None
    queue: int
    keep_warm: bool


class ModelPool:
    """Builds models lazily and keeps llama.cpp models loaded under ``memory_budget_bytes`` (LRU).

    Args:
        models: the team's models by name: ``models`` config entries, built on first use, or chat model
            instances (any ``BaseChatModel``), used as they are.
        memory_budget_bytes: RAM the loaded models may use together; default 70% of physical memory.
    """

    def __init__(
        self,
        models: Mapping[str, ModelConfig | BaseChatModel],
        *,
        memory_budget_bytes: int | None = None,
    ) -> None:
        self._configs: dict[str, ModelConfig] = {}
        self._models: dict[str, BaseChatModel] = {}
        self.memory_budget_bytes = memory_budget_bytes or int(total_memory_bytes() * 0.7)
        self._lru: OrderedDict[str, int] = OrderedDict()  # loaded local models -> estimated bytes
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        for name, model in models.items():
            if isinstance(model, BaseChatModel):
                self._adopt(name, model)
            else:
                self._configs[name] = model

    @classmethod
    def from_team(cls, config: TeamConfig, models: Mapping[str, BaseChatModel] | None = None) -> ModelPool:
        """The pool for a team config, with its ``runtime.memory_budget_mb``.

        ``models`` are chat model instances that take the place of the config's entries of the same name.
        With ``distributed.engine: ray`` it is that entry of :data:`ENGINES`, a ``RayModelPool``, whose
        local models run as Ray actors.
        """
        engine = ENGINES.get(config.distributed.engine)
        if engine is not None and cls is ModelPool:
            pool_class = import_object(engine, where="distributed.engine")
            return pool_class(config, models=models)  # type: ignore[no-any-return]
        budget = config.runtime.memory_budget_mb
        merged: dict[str, ModelConfig | BaseChatModel] = {**config.models, **(models or {})}
        return cls(merged, memory_budget_bytes=budget * _MB if budget else None)

    @property
    def names(self) -> list[str]:
        """The model names this pool can serve."""
        return sorted({*self._configs, *self._models})

    def is_local(self, name: str) -> bool:
        """Whether model ``name`` runs here rather than behind a network endpoint (its class says)."""
        model = self._models.get(name)
        if model is not None:
            return is_local(model)
        config = self._configs.get(name)
        if config is None:
            raise UserError(f"unknown model {name!r} (known: {', '.join(self.names) or 'none'})")
        return is_local(config)

    def get(self, name: str) -> BaseChatModel:
        """The chat model called ``name``, built on first use. Local weights load on first call."""
        with self._lock:
            model = self._models.get(name)
            if model is not None:
                return model
            config = self._configs.get(name)
            if config is None:
                raise UserError(f"unknown model {name!r} (known: {', '.join(self.names) or 'none'})")
            return self._adopt(name, build_model(name, config))

    def _adopt(self, name: str, model: BaseChatModel) -> BaseChatModel:
        if _is_local(model):
            model.attach_pool(before_load=self._make_room, on_use=self._touch)
        self._models[name] = model
        return model

    def load(self, name: str) -> BaseChatModel:
        """Get ``name`` and load its weights now (a no-op for remote and function models)."""
        model = self.get(name)
        if _is_local(model):
            model.load()
            self._touch(model)
        return model

    async def aload(self, name: str) -> BaseChatModel:
        """Async :meth:`load`: the load runs in a worker thread."""
        return await asyncio.to_thread(self.load, name)

    def preload(self, names: Iterable[str]) -> list[Future[BaseChatModel]]:
        """Start loading models in the background; return a future per model."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tessera-load")
            executor = self._executor
        return [executor.submit(carry(self.load), name) for name in names]  # loads join the run's trace

    def unload(self, name: str) -> None:
        """Unload ``name`` if it is a loaded local model."""
        model = self._models.get(name)
        if model is not None and _is_local(model):
            model.unload()
            with self._lock:
                self._lru.pop(name, None)

    def status(self) -> list[ModelStatus]:
        """Every model: backend, whether loaded, RAM estimate, queue length."""
        out = []
        for name in self.names:
            model = self._models.get(name)
            config = self._configs.get(name)
            local = model if _is_local(model) else None
            out.append(
                ModelStatus(
                    name=name,
                    backend=config.backend if config is not None else _backend_of(model),
                    loaded=local is not None and local.loaded,
                    loads_weights=loads_weights(model if model is not None else config),  # type: ignore[arg-type]
                    ram_bytes=self._lru.get(name),
                    queue=local.queue_length if local is not None else 0,
                    keep_warm=config is not None and config.keep_warm,
                )
            )
        return out

    @property
    def used_bytes(self) -> int:
        """Estimated RAM of the loaded local models."""
        with self._lock:
            return sum(self._lru.values())

    def close(self) -> None:
        """Unload every model and stop background loading."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        for name in list(self._models):
            self.unload(name)

    def __enter__(self) -> ModelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- called by the models -----------------------------------------------------------------------

    def _make_room(self, model: LlamaCppChatModel) -> None:
        """Before ``model`` loads: evict least recently used models until it fits the budget."""
        need = model.estimate_ram_bytes()
        if need > self.memory_budget_bytes:
            raise ModelLoadError(
                f"model {model.model_id!r} needs about {need / _MB:,.0f} MB, more than the memory "
                f"budget of {self.memory_budget_bytes / _MB:,.0f} MB (runtime.memory_budget_mb); "
                "lower its n_ctx or raise the budget"
            )
        with self._lock:
            for victim in list(self._lru):
                if sum(self._lru.values()) + need <= self.memory_budget_bytes:
                    break
                victim_config = self._configs.get(victim)
                if victim == model.model_id or (victim_config is not None and victim_config.keep_warm):
                    continue
                other = self._models[victim]
                if _is_local(other) and other.try_unload():
                    log.info("evicted model %r to make room for %r", victim, model.model_id)
                    del self._lru[victim]
            if sum(self._lru.values()) + need > self.memory_budget_bytes:
                log.warning(
                    "loading %r goes over the memory budget: the other models are busy or pinned",
                    model.model_id,
                )
            self._lru[model.model_id] = need
            self._lru.move_to_end(model.model_id)

    def _touch(self, model: LlamaCppChatModel) -> None:
        with self._lock:
            if model.model_id in self._lru:
                self._lru.move_to_end(model.model_id)
            elif model.loaded:  # loaded directly, not through the pool
                self._lru[model.model_id] = model.estimate_ram_bytes()


def _is_local(model: BaseChatModel | None) -> TypeGuard[LlamaCppChatModel]:
    """Whether the pool manages ``model``'s memory: its class has ``loads_weights`` (llama.cpp's does)."""
    return model is not None and loads_weights(model)


def _backend_of(model: BaseChatModel | None) -> str:
    """The registered backend name of a model given as an instance, else its LangChain type."""
    path = f"{type(model).__module__}:{type(model).__qualname__}"
    for backend, entry in BACKENDS.items():
        if entry.model == path:
            return backend
    return str(getattr(model, "_llm_type", type(model).__name__))
