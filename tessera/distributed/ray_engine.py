"""``distributed.engine: ray``: a team's local models run as Ray actors, placed by their resources.

:class:`RayModelPool` is the team's :class:`~tessera.models.pool.ModelPool` under Ray. For each local model
(``llama_cpp`` and ``function`` backends) it starts one actor that asks Ray for the model's
``models.<name>.ray`` resources, and hands out a :class:`RayChatModel`: a chat model whose generation,
streaming and structured output are calls on that actor. Async calls await the actor's result without
blocking the event loop, so subtasks on different actors run in parallel, wherever Ray put them. Remote
(``openai``) models stay in this process: they are network calls already.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

from tessera.distributed._actor import ModelActor, connect, import_ray
from tessera.errors import ModelLoadError
from tessera.models import build_model, is_local, loads_weights
from tessera.models.base import TesseraChatModel
from tessera.models.function import FunctionModel
from tessera.models.pool import ModelPool, ModelStatus

if TYPE_CHECKING:
    from tessera.config import ModelConfig, TeamConfig

__all__ = ["RayChatModel", "RayModelPool"]

"""Backends whose models run inside actors; the others are called from this process."""
_MB = 1 << 20


class RayChatModel(TesseraChatModel):
    """A chat model that lives in a Ray actor; every call goes to the actor.

    Structured output is validated (and retried) here, from the JSON text the actor's model produces,
    exactly as for an in-process model. The first call waits up to ``start_timeout_s`` for Ray to place
    the actor and build the model, then fails with a one-line :class:`ModelLoadError`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    actor: Any
    """The Ray actor handle."""
    backend: str = "function"
    resources: dict[str, float] = {}
    """What the actor asked Ray for (num_cpus, num_gpus, memory)."""
    start_timeout_s: float = 60.0
    tools_supported: bool = True
    _placement: dict[str, Any] | None = PrivateAttr(None)

    @property
    def _llm_type(self) -> str:
        return "tessera-ray"

    @property
    def placement(self) -> dict[str, Any] | None:
        """Where the actor runs (``pid``, ``node_id``, ``resources``), once it answered."""
        return self._placement

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """Pass the tools on to the actor's model as OpenAI tool dicts, as a function model gets them."""
        if not self.tools_supported:
            raise NotImplementedError(f"model {self.model_id!r} ({self.backend}) does not call tools")
        specs = [t if isinstance(t, dict) else convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=specs, **kwargs)

    # -- readiness ----------------------------------------------------------------------------------

    def ready(self) -> dict[str, Any]:
        """Wait for the actor (at most ``start_timeout_s``); return where it runs."""
        if self._placement is None:
            ray = import_ray()
            try:
                self._placement = _get(self.actor.ready.remote(), self.model_id, self.start_timeout_s)
            except ray.exceptions.GetTimeoutError:
                raise ModelLoadError(self._not_started()) from None
        return self._placement

    async def aready(self) -> dict[str, Any]:
        """Async :meth:`ready`."""
        if self._placement is None:
            try:
                async with asyncio.timeout(self.start_timeout_s):
                    self._placement = await _await(self.actor.ready.remote(), self.model_id)
            except TimeoutError:
                raise ModelLoadError(self._not_started()) from None
        return self._placement

    def _not_started(self) -> str:
        ray = import_ray()
        asked = ", ".join(f"{k}={v:g}" for k, v in self.resources.items()) or "no resources"
        have = ray.cluster_resources()
        cluster = ", ".join(f"{k} {have[k]:g}" for k in ("CPU", "GPU") if k in have) or "nothing"
        return (
            f"model {self.model_id!r}: Ray did not start its actor within {self.start_timeout_s:g}s "
            f"(it asks for {asked}; the cluster has {cluster}); see models.{self.model_id}.ray"
        )

    # -- calls ----------------------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.ready()
        result: ChatResult = _get(self.actor.generate.remote(messages, stop, kwargs), self.model_id)
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await self.aready()
        result: ChatResult = await _await(self.actor.generate.remote(messages, stop, kwargs), self.model_id)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self.ready()
        refs = self.actor.stream.options(num_returns="streaming").remote(messages, stop, kwargs)
        for ref in refs:
            chunk: ChatGenerationChunk = _get(ref, self.model_id)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        await self.aready()
        refs = self.actor.stream.options(num_returns="streaming").remote(messages, stop, kwargs)
        try:
            async for ref in refs:
                chunk: ChatGenerationChunk = await _await(ref, self.model_id)
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        except (asyncio.CancelledError, GeneratorExit):
            import_ray().cancel(refs)
            raise

    def _structured(self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any) -> AIMessage:
        self.ready()
        message: AIMessage = _get(self.actor.structured.remote(messages, schema, kwargs), self.model_id)
        return message

    async def _astructured(
        self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any
    ) -> AIMessage:
        await self.aready()
        message: AIMessage = await _await(
            self.actor.structured.remote(messages, schema, kwargs), self.model_id
        )
        return message


class RayModelPool(ModelPool):
    """A :class:`ModelPool` whose local models run as Ray actors, one per model.

    Ray starts (or is joined) on the first model asked for. The memory budget does not apply to actors:
    each is its own process, placed by its ``ray`` resources. :meth:`close` kills the actors and shuts
    down a Ray this pool started.
    """

    def __init__(self, config: TeamConfig, models: Mapping[str, BaseChatModel] | None = None) -> None:
        import_ray(config.distributed)  # fail here, at the start, when Ray is not installed
        budget = config.runtime.memory_budget_mb
        merged: dict[str, ModelConfig | BaseChatModel] = {**config.models, **(models or {})}
        super().__init__(merged, memory_budget_bytes=budget * _MB if budget else None)
        self.settings = config.distributed
        self._proxies: dict[str, RayChatModel] = {}
        self._started_ray = False

    def get(self, name: str) -> BaseChatModel:
        """The model called ``name``; for a local model, a :class:`RayChatModel` on its actor.

        A model given as an instance, and a remote one, stay in this process.
        """
        config = self._configs.get(name)
        if config is None or name in self._models or not is_local(config):
            return super().get(name)
        with self._lock:
            proxy = self._proxies.get(name)
            if proxy is None:
                proxy = self._proxies[name] = self._spawn(name, config)
            return proxy

    def load(self, name: str) -> BaseChatModel:
        """Get ``name`` and load its weights now, inside its actor."""
        model = self.get(name)
        if isinstance(model, RayChatModel):
            model.ready()
            _get(model.actor.load.remote(), name)
            return model
        return super().load(name)

    def unload(self, name: str) -> None:
        """Kill ``name``'s actor (the next use starts a fresh one)."""
        with self._lock:
            proxy = self._proxies.pop(name, None)
        if proxy is not None:
            import_ray().kill(proxy.actor)
        super().unload(name)

    def status(self) -> list[ModelStatus]:
        """Every configured model; an actor's model reports its own loaded state and queue."""
        out = []
        for status in super().status():
            proxy = self._proxies.get(status.name)
            if proxy is not None:
                try:
                    live = _get(proxy.actor.status.remote(), status.name, timeout=5.0)
                except Exception:  # noqa: BLE001 - a dead or busy actor shows as not loaded
                    live = {"loaded": False, "queue": 0}
                status = dataclasses.replace(status, loaded=live["loaded"], queue=live["queue"])
            out.append(status)
        return out

    def close(self) -> None:
        """Kill the actors, unload in-process models, and shut down a Ray this pool started."""
        for name in list(self._proxies):
            self.unload(name)
        super().close()
        if self._started_ray:
            import_ray().shutdown()
            self._started_ray = False

    def _spawn(self, name: str, config: ModelConfig) -> RayChatModel:
        if not self._started_ray:
            self._started_ray = connect(self.settings) or self._started_ray
        ray = import_ray()
        model = build_model(name, config)  # here first: a bad callable fails in this process, clearly
        if isinstance(model, FunctionModel):  # the function itself travels (by value if from __main__)
            factory: Any = functools.partial(FunctionModel, model.fn, model_id=name)
        else:
            factory = functools.partial(build_model, name, config)
        resources = actor_resources(config)
        options = {
            "memory" if k == "memory_mb" else k: v * _MB if k == "memory_mb" else v
            for k, v in resources.items()
        }
        actor = ray.remote(ModelActor).options(**options).remote(factory)
        return RayChatModel(
            actor=actor,
            model_id=name,
            backend=config.backend,
            resources=resources,
            start_timeout_s=self.settings.start_timeout_s,
            tools_supported=type(model).bind_tools is not BaseChatModel.bind_tools,
        )


def actor_resources(config: ModelConfig) -> dict[str, float]:
    """The Ray resources a model's actor asks for (``models.<name>.ray``, with backend defaults).

    A llama.cpp model reserves its ``n_threads`` CPUs (1 if unset); a function model reserves none, so a
    team of test doubles fits any cluster.
    """
    ray = config.ray
    num_cpus = ray.num_cpus
    if num_cpus is None:
        num_cpus = float(getattr(config, "n_threads", None) or 1) if loads_weights(config) else 0.0
    out: dict[str, float] = {"num_cpus": num_cpus}
    if ray.num_gpus:
        out["num_gpus"] = ray.num_gpus
    if ray.memory_mb:
        out["memory_mb"] = float(ray.memory_mb)
    return out


def _get(ref: Any, model_id: str, timeout: float | None = None) -> Any:
    """``ray.get`` with the model's own exception instead of Ray's wrapper."""
    ray = import_ray()
    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.RayTaskError as exc:
        raise _cause(exc) from None
    except ray.exceptions.RayActorError as exc:
        raise _died(model_id, exc) from None


async def _await(ref: Awaitable[Any], model_id: str) -> Any:
    """Await an ObjectRef (the event loop stays free); cancel the actor's task if we are cancelled."""
    ray = import_ray()
    try:
        return await ref
    except asyncio.CancelledError:
        ray.cancel(ref)
        raise
    except ray.exceptions.RayTaskError as exc:
        raise _cause(exc) from None
    except ray.exceptions.RayActorError as exc:
        raise _died(model_id, exc) from None


def _cause(exc: Any) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def _died(model_id: str, exc: BaseException) -> ModelLoadError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelLoadError(f"model {model_id!r}: its Ray actor died: {first}")
