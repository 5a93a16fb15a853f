"""What both kinds of server share: options, the API key check, request limits, OpenAI-shaped replies."""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from langchain_core.messages import AIMessage, BaseMessage, convert_to_messages
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera._output import write_line

__all__ = [
    "ApiError",
    "ChatRequest",
    "ServeOptions",
    "base_app",
    "chunk",
    "completion",
    "content_text",
    "read_request",
    "sse_stream",
    "tokens_usage",
]


@dataclass(frozen=True)
class ServeOptions:
    """Limits and security of a ``tessera serve`` server.

    Args:
        api_key: when set, every request needs ``Authorization: Bearer <api_key>`` (else 401).
        max_body_bytes: largest request body (else 413).
        max_concurrency: requests served at once, waiting ones included (else 429).
        max_hops: team mode: requests that already passed this many team servers are refused (508).
    """

    api_key: str | None = None
    max_body_bytes: int = 1 << 20
    max_concurrency: int = 8
    max_hops: int = 4


class ApiError(Exception):
    """An error answered as OpenAI's ``{"error": {...}}`` with an HTTP status.

    ``code`` is OpenAI's error code where it has one (``model_not_found``), else the status; ``param``
    names the request field at fault.
    """

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        *,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code
        self.param = param

    def response(self, **extra: Any) -> JSONResponse:
        error: dict[str, Any] = {"message": str(self), "type": self.kind, "code": self.code or self.status}
        if self.param is not None:
            error["param"] = self.param
        body = {"error": error, **extra}
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        if self.status == 429:
            headers["Retry-After"] = "1"
        return JSONResponse(body, status_code=self.status, headers=headers)


class ChatRequest(BaseModel):
    """The fields of an OpenAI chat completion request that Tessera uses (others are ignored)."""

    model_config = ConfigDict(extra="allow")

    messages: list[dict[str, Any]] = Field(min_length=1)
    model: str | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def check_model(self, served: str) -> None:
        """Refuse a request for another model than ``served``, as OpenAI does (404 ``model_not_found``)."""
        if self.model and self.model != served:
            raise ApiError(
                404,
                f"The model `{self.model}` does not exist: this server serves `{served}` (GET /v1/models)",
                code="model_not_found",
                param="model",
            )

    def words(self) -> int:
        """Whitespace-separated words in the messages: the token count of models that count words."""
        return sum(len(content_text(m.get("content")).split()) for m in self.messages)

    def langchain_messages(self) -> list[BaseMessage]:
        try:
            return convert_to_messages(self.messages)
        except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
            raise ApiError(400, f"messages: {exc}") from None

    def output_schema(self) -> dict[str, Any] | None:
        """The JSON schema asked for in ``response_format`` (json_object + schema, or json_schema)."""
        fmt = self.response_format or {}
        if fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            return schema if isinstance(schema, dict) else {"type": "object"}
        if fmt.get("type") == "json_object":
            schema = fmt.get("schema")
            return schema if isinstance(schema, dict) else {"type": "object"}
        return None


class Load:
    """Requests in flight (waiting ones included), for the limit and ``/health``."""

    def __init__(self) -> None:
        self.in_flight = 0


class _Guard:
    """ASGI middleware: the API key on every request, the concurrency limit on every POST, and a log line
    per request on stderr: ``tessera serve: POST /v1/chat/completions 200 0.412s``.

    A plain ASGI class, not ``BaseHTTPMiddleware``: a streamed reply counts as in flight (and is timed)
    until its last byte, not just until its headers.
    """

    def __init__(self, app: ASGIApp, options: ServeOptions, load: Load) -> None:
        self.app = app
        self.options = options
        self.load = load
        self.expected = f"Bearer {options.api_key}".encode() if options.api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, logged = time.perf_counter(), 500, False  # 500: the app failed before it answered

        def log() -> None:
            nonlocal logged
            if not logged:
                logged = True
                took = time.perf_counter() - started
                write_line(f"tessera serve: {scope['method']} {scope['path']} {status} {took:.3f}s", err=True)

        async def send_and_log(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                log()  # before the last byte goes out: a client that has its reply finds the line written
            await send(message)

        try:
            await self._guarded(scope, receive, send_and_log)
        finally:
            log()

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is not None:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                error = ApiError(401, "missing or wrong API key (Authorization: Bearer ...)", "auth")
                await error.response()(scope, receive, send)
                return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        limit = self.options.max_concurrency
        if self.load.in_flight >= limit:
            error = ApiError(429, f"busy: {limit} requests in flight (the limit)", "rate_limit")
            await error.response()(scope, receive, send)
            return
        self.load.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.load.in_flight -= 1


def base_app(title: str, options: ServeOptions, health: Callable[[], dict[str, Any]]) -> FastAPI:
    """A FastAPI app that checks the API key and the request limits, with ``/health``."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    load = Load()
    app.state.load = load
    app.add_middleware(_Guard, options=options, load=load)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.get("/health")
    async def health_route() -> dict[str, Any]:
        return {**health(), "in_flight": load.in_flight}

    return app


async def read_request(request: Request, limit: int) -> ChatRequest:
    """The request body as a :class:`ChatRequest`, refusing one over ``limit`` bytes (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    body = bytearray()
    async for piece in request.stream():
        body.extend(piece)
        if len(body) > limit:
            raise ApiError(413, f"request body is over the limit of {limit} bytes")
    try:
        return ChatRequest.model_validate(json.loads(body))
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not JSON: {exc.msg}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise ApiError(400, f"{where}: {first['msg']}") from None


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def usage_of(message: AIMessage | None, prompt_words: int = 0) -> dict[str, int]:
    """OpenAI's ``usage`` from a reply's token counts.

    A model that does not count its input (a Python function reports 0) is given ``prompt_words``, the
    request's words, as function models count their output in words: never 0 prompt tokens for a prompt.
    """
    meta = message.usage_metadata if message is not None else None
    prompt = int(meta["input_tokens"]) if meta else 0
    completion = int(meta["output_tokens"]) if meta else 0
    return tokens_usage(prompt or prompt_words, completion)


def tokens_usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def tool_calls_of(message: AIMessage) -> list[dict[str, Any]]:
    return [
        {
            "id": call.get("id") or f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
        }
        for call in message.tool_calls
    ]


def completion(
    cid: str,
    model: str,
    message: AIMessage,
    *,
    content: str | None = None,
    usage: dict[str, int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``chat.completion`` object for one reply (``usage``: default, the message's own counts)."""
    text = content if content is not None else _text(message)
    reply: dict[str, Any] = {"role": "assistant", "content": text}
    finish = "stop"
    if message.tool_calls:
        reply["tool_calls"] = tool_calls_of(message)
        finish = "tool_calls"
    elif message.response_metadata.get("finish_reason") == "length":
        finish = "length"
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
        "usage": usage if usage is not None else usage_of(message),
        **extra,
    }


def chunk(
    cid: str, model: str, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object; ``extra`` adds top-level fields (usage, tessera)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        **extra,
    }


def sse_stream(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    """Server-sent events: one ``data:`` line per object, ``[DONE]`` last; an exception becomes an
    ``{"error": ...}`` event, which OpenAI clients raise."""

    async def body() -> AsyncIterator[bytes]:
        try:
            async for event in events:
                yield f"data: {json.dumps(event)}\n\n".encode()
        except ApiError as exc:
            yield _error_event(str(exc), exc.kind, exc.status)
            return
        except Exception as exc:  # noqa: BLE001 - the status line is sent: the error goes in the stream
            yield _error_event(f"{type(exc).__name__}: {exc}", "server_error", 500)
            return
        yield b"data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _error_event(message: str, kind: str, code: int) -> bytes:
    return f"data: {json.dumps({'error': {'message': message, 'type': kind, 'code': code}})}\n\n".encode()


def content_text(content: Any) -> str:
    """The text of an OpenAI message's ``content`` (a string, or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _text(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
