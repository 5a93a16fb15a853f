"""Models that are plain Python: :class:`FunctionModel` and :class:`ScriptedModel`.

These are real backends, not mocks: a team file can use one (``backend: function``,
``callable: mypkg.fakes:planner``), the test suite drives the real orchestration with them, and they are
the seam for custom integrations.

The contract of the callable: ``fn(messages: list[dict], **kw) -> str``, where ``messages`` are
OpenAI-style ``{"role", "content"}`` dicts. When structured output is asked for it gets
``schema=<JSON schema dict>`` and returns JSON text (a dict or pydantic model is accepted too). With tools
bound it gets ``tools=[<OpenAI tool dicts>]`` and may return an ``AIMessage`` with ``tool_calls``.
Async callables and generators (streaming) work too.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from tessera._async import run_sync
from tessera._imports import import_object
from tessera.errors import AgentRunError, ImportTargetError, ModelLoadError
from tessera.models.base import TesseraChatModel, json_schema_of, to_openai_messages
from tessera.tracing import record_span

if TYPE_CHECKING:
    from tessera.config import FunctionModelConfig

__all__ = ["FunctionModel", "ScriptedModel", "import_callable"]

Reply = str | dict[str, Any] | BaseModel | AIMessage

_EXECUTOR = ThreadPoolExecutor(max_workers=64, thread_name_prefix="tessera-fn")
"""Sync callables run here, not on asyncio's default pool (cpu_count + 4 threads: 6 on a 2-core box), so
that many slow function models (remote calls, sleeps) run side by side."""


async def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, call)


_END = object()


class FunctionModel(TesseraChatModel):
    """A chat model backed by a Python callable (sync or async, returning text or yielding chunks)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    fn: Callable[..., Any]

    def __init__(self, fn: Callable[..., Any] | None = None, /, **data: Any) -> None:
        if fn is not None:
            data["fn"] = fn
        super().__init__(**data)

    @classmethod
    def from_config(cls, name: str, config: FunctionModelConfig) -> FunctionModel:
        """Build from a team's ``models.<name>`` entry by importing its ``callable``."""
        if config.callable is None:
            raise ModelLoadError(
                f"models.{name}: no callable; give the model in Python: "
                f"Team(config, models={{{name!r}: ...}})"
            )
        fn = import_callable(config.callable, where=f"models.{name}.callable")
        return cls(fn, model_id=name)

    @property
    def _llm_type(self) -> str:
        return "tessera-function"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """Pass the tools to the callable as ``tools=[...]`` (OpenAI tool dicts)."""
        specs = [t if isinstance(t, dict) else convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=specs, **kwargs)

    def _invoke_fn(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        return self.fn(to_openai_messages(messages), **kwargs)

    def _traced(self, start: float, message: AIMessage | None = None, first: float | None = None) -> None:
        """Record one call as a ``decode`` span; a streamed call's wait for its first piece is ``prefill``."""
        if first is not None and first > start:
            record_span("prefill", start, first, model=self.model_id)
            start = first
        usage = message.usage_metadata if message is not None else None
        tokens = usage["output_tokens"] if usage else None
        record_span("decode", start, time.time(), model=self.model_id, tokens=tokens)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        start = time.time()
        result = self._invoke_fn(messages, _kw(stop, kwargs))
        if inspect.isawaitable(result) or inspect.isasyncgen(result):
            result = run_sync(_collect_async(result))
        message = _to_message(result)
        self._traced(start, message)
        return _result(message)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        start = time.time()
        if inspect.iscoroutinefunction(self.fn) or inspect.isasyncgenfunction(self.fn):
            result = await _collect_async(self._invoke_fn(messages, _kw(stop, kwargs)))
        else:
            result = await _in_thread(self._invoke_fn, messages, _kw(stop, kwargs))
            if inspect.isawaitable(result) or inspect.isasyncgen(result):
                result = await _collect_async(result)
        message = _to_message(result)
        self._traced(start, message)
        return _result(message)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        start, first = time.time(), None
        result = self._invoke_fn(messages, _kw(stop, kwargs))
        if inspect.isawaitable(result) or inspect.isasyncgen(result):
            result = run_sync(_collect_async(result))
        if _is_stream(result):
            try:
                for piece in result:
                    first = first or time.time()
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=str(piece)))
                    if run_manager:
                        run_manager.on_llm_new_token(str(piece), chunk=chunk)
                    yield chunk
            finally:
                self._traced(start, first=first)
            return
        message = _to_message(result)
        self._traced(start, message)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=message.content,
                tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                    for i, c in enumerate(message.tool_calls)
                ],
                usage_metadata=message.usage_metadata,
            )
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if not inspect.isasyncgenfunction(self.fn):
            for chunk in await _in_thread(lambda: list(self._stream(messages, stop, **kwargs))):
                if run_manager:
                    await run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
                yield chunk
            return
        start, first = time.time(), None
        try:
            async for piece in self._invoke_fn(messages, _kw(stop, kwargs)):
                first = first or time.time()
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=str(piece)))
                if run_manager:
                    await run_manager.on_llm_new_token(str(piece), chunk=chunk)
                yield chunk
        finally:
            self._traced(start, first=first)

    def _structured(self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any) -> AIMessage:
        start = time.time()
        result = self._invoke_fn(messages, {**kwargs, "schema": schema})
        if inspect.isawaitable(result) or inspect.isasyncgen(result):
            result = run_sync(_collect_async(result))
        message = _to_message(result)
        self._traced(start, message)
        return message

    async def _astructured(
        self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any
    ) -> AIMessage:
        if inspect.iscoroutinefunction(self.fn):
            start = time.time()
            message = _to_message(await self._invoke_fn(messages, {**kwargs, "schema": schema}))
            self._traced(start, message)
            return message
        return await _in_thread(self._structured, messages, schema, **kwargs)  # type: ignore[no-any-return]

    async def astream_structured(self, value: LanguageModelInput, schema: Any) -> AsyncIterator[str]:
        """Stream the callable's JSON as it yields it (sync generators are read in a worker thread)."""
        messages = self._convert_input(value).to_messages()
        start, first = time.time(), None
        kwargs = {"schema": json_schema_of(schema)}
        if inspect.isasyncgenfunction(self.fn) or inspect.iscoroutinefunction(self.fn):
            result = self._invoke_fn(messages, kwargs)
        else:
            result = await _in_thread(self._invoke_fn, messages, kwargs)
        if inspect.isawaitable(result):
            result = await result
        try:
            if inspect.isasyncgen(result):
                async for piece in result:
                    first = first or time.time()
                    yield str(piece)
            elif _is_stream(result):
                pieces = iter(result)
                while (piece := await _in_thread(next, pieces, _END)) is not _END:
                    first = first or time.time()
                    yield str(piece)
            else:
                message = _to_message(result)
                yield message.content if isinstance(message.content, str) else json.dumps(message.content)
        finally:
            self._traced(start, first=first)


class ScriptedModel(FunctionModel):
    """Replies from a script, one entry per call, and records every call.

    Each entry is a reply (text, a dict or pydantic model for structured output, an ``AIMessage`` for tool
    calls) or a callable ``(messages, **kw) -> reply``. Running past the end raises
    :class:`~tessera.errors.AgentRunError`, so a test notices an unexpected extra call.
    """

    script: list[Any] = Field(default_factory=list)
    _calls: list[tuple[list[dict[str, Any]], dict[str, Any]]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, script: Sequence[Any] | None = None, /, **data: Any) -> None:
        data.setdefault("script", list(script or []))
        super().__init__(self._next, **data)

    @property
    def calls(self) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """Every call so far: ``(messages, kwargs)``."""
        return list(self._calls)

    def _next(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        with self._lock:
            index = len(self._calls)
            self._calls.append((messages, kwargs))
        if index >= len(self.script):
            raise AgentRunError(
                f"ScriptedModel {self.model_id!r}: script exhausted after {len(self.script)} call(s)"
            )
        entry = self.script[index]
        return entry(messages, **kwargs) if callable(entry) and not isinstance(entry, BaseTool) else entry


def import_callable(spec: str, *, where: str) -> Callable[..., Any]:
    """Import ``module:attr`` and check that it is callable; a :class:`ModelLoadError` if it fails."""
    try:
        target = import_object(spec, where=where)
    except ImportTargetError as exc:
        raise ModelLoadError(str(exc)) from None
    if not callable(target):
        raise ModelLoadError(f"{where}: {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def _kw(stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "stop": stop} if stop else dict(kwargs)


def _is_stream(value: Any) -> bool:
    return inspect.isgenerator(value) or (
        isinstance(value, Iterator) and not isinstance(value, str | bytes | dict)
    )


async def _collect_async(value: Any) -> Any:
    if inspect.isasyncgen(value):
        return "".join([str(piece) async for piece in value])
    result = await value
    if inspect.isasyncgen(result):
        return "".join([str(piece) async for piece in result])
    return result


def _to_message(result: Any) -> AIMessage:
    if _is_stream(result):
        result = "".join(str(piece) for piece in result)
    if isinstance(result, AIMessage):
        message = result
    elif isinstance(result, BaseModel):
        message = AIMessage(content=result.model_dump_json())
    elif isinstance(result, dict | list):
        message = AIMessage(content=json.dumps(result))
    elif isinstance(result, str):
        message = AIMessage(content=result)
    else:
        raise AgentRunError(f"function model returned {type(result).__name__}, expected str")
    if message.usage_metadata is None:
        text = message.content if isinstance(message.content, str) else json.dumps(message.content)
        out = len(text.split())
        message.usage_metadata = {"input_tokens": 0, "output_tokens": out, "total_tokens": out}
    return message


def _result(message: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])
