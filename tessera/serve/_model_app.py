"""Model mode: one of a team's models behind an OpenAI-compatible API (``tessera serve --model NAME``).

The model comes from the team's :class:`~tessera.models.pool.ModelPool`, so any backend can be served:
a GGUF on llama.cpp (its generations queue on the one context), a Python function, even another remote
model. ``response_format`` with a schema gets the model's own structured output (a llama.cpp grammar, a
function's ``schema=``); the client validates it, as it would with any server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage

from tessera.models.base import TesseraChatModel
from tessera.models.pool import ModelPool
from tessera.serve._common import (
    ApiError,
    ChatRequest,
    ServeOptions,
    base_app,
    chunk,
    completion,
    new_id,
    read_request,
    sse_stream,
    tool_calls_of,
    usage_of,
)

__all__ = ["create_model_app"]

_SAMPLING = ("temperature", "top_p", "seed")


def create_model_app(pool: ModelPool, name: str, options: ServeOptions | None = None) -> FastAPI:
    """The app serving ``pool``'s model ``name`` at ``/v1/chat/completions``, ``/v1/models``, ``/health``.

    Args:
        pool: the team's model pool; the model is built (not loaded) here.
        name: the model's name in the team config; it is also the model id clients see.
        options: API key and limits.
    """
    options = options or ServeOptions()
    model = pool.get(name)

    def health() -> dict[str, Any]:
        status = next(s for s in pool.status() if s.name == name)
        loaded = status.loaded or not status.loads_weights
        return {"model": name, "backend": status.backend, "loaded": loaded, "queue": status.queue}

    app = base_app(f"tessera serve: {name}", options, health)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "tessera"}]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        body = await read_request(request, options.max_body_bytes)
        body.check_model(name)
        messages = body.langchain_messages()
        kwargs = _sampling(model, body)
        runnable: Any = model.bind_tools(body.tools) if body.tools else model
        schema = body.output_schema()
        cid = new_id()
        if body.stream:
            return sse_stream(_stream(model, runnable, messages, schema, kwargs, body, cid, name))
        message = await _reply(model, runnable, messages, schema, kwargs)
        return completion(cid, name, message, usage=usage_of(message, body.words()))

    return app


async def _reply(
    model: BaseChatModel,
    runnable: Any,
    messages: list[BaseMessage],
    schema: dict[str, Any] | None,
    kwargs: dict[str, Any],
) -> AIMessage:
    if schema is not None and isinstance(model, TesseraChatModel):
        return await model._astructured(messages, schema, **kwargs)
    reply = await runnable.ainvoke(messages, **kwargs)
    if not isinstance(reply, AIMessage):
        raise ApiError(500, f"model returned {type(reply).__name__}, not a message", "server_error")
    return reply


async def _stream(
    model: BaseChatModel,
    runnable: Any,
    messages: list[BaseMessage],
    schema: dict[str, Any] | None,
    kwargs: dict[str, Any],
    body: ChatRequest,
    cid: str,
    name: str,
) -> AsyncIterator[dict[str, Any]]:
    yield chunk(cid, name, {"role": "assistant", "content": ""})
    if schema is not None:
        message = await _reply(model, runnable, messages, schema, kwargs)
        yield chunk(cid, name, {"content": message.content})
    else:
        whole: AIMessageChunk | None = None
        async for piece in runnable.astream(messages, **kwargs):
            whole = piece if whole is None else whole + piece
            if isinstance(piece.content, str) and piece.content:
                yield chunk(cid, name, {"content": piece.content})
        message = AIMessage(
            content="",
            tool_calls=whole.tool_calls if whole is not None else [],
            usage_metadata=whole.usage_metadata if whole is not None else None,
        )
    if message.tool_calls:
        calls = [{"index": i, **call} for i, call in enumerate(tool_calls_of(message))]
        yield chunk(cid, name, {"tool_calls": calls}, "tool_calls")
    else:
        yield chunk(cid, name, {}, "stop")
    if body.include_usage:
        yield chunk(cid, name, None, usage=usage_of(message, body.words()))


def _sampling(model: BaseChatModel, body: ChatRequest) -> dict[str, Any]:
    """The request's sampling options, for backends that take them per call (not Python functions)."""
    kwargs: dict[str, Any] = {}
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    if stop:
        kwargs["stop"] = stop
    if model._llm_type == "tessera-function":
        return kwargs
    limit = body.max_tokens or body.max_completion_tokens
    if limit is not None:
        kwargs["max_tokens"] = limit
    kwargs.update({k: getattr(body, k) for k in _SAMPLING if getattr(body, k) is not None})
    return kwargs
