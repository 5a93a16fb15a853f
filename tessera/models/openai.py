"""The ``openai`` backend: any OpenAI-compatible endpoint (llama.cpp server, vLLM, Ollama, a cloud).

It delegates to langchain-openai's ``ChatOpenAI`` for the wire protocol and adds what Tessera needs:
a timeout on every request, and structured output through ``response_format: json_object`` plus a
schema, which is what llama.cpp's server accepts (it refuses ``json_schema``). Endpoints that honour
``json_schema`` can opt into it with ``structured_output: json_schema``.

A model may have several ``endpoints`` (replicas of one model on several devices) instead of one
``base_url``: requests go to the least busy healthy replica and fail over to the next one on a connection
error, a timeout or a 5xx (see :mod:`tessera.models._replicas`). Every request carries the
``X-Tessera-Hops`` header, one more than the hops of the request being served, so that a team served
with ``tessera serve --team`` cannot call itself in an endless loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

from tessera._hops import HOPS_HEADER, current_hops
from tessera.errors import MissingDependencyError, ModelLoadError
from tessera.models._replicas import EndpointsUnreachable, ReplicaSet
from tessera.models.base import TesseraChatModel

if TYPE_CHECKING:
    from tessera.config import OpenAIModelConfig

__all__ = ["EndpointsUnreachable", "OpenAIChatModel"]

CONNECT_TIMEOUT_S = 5.0
"""Longest wait for a TCP connection (``timeout_s`` bounds the whole request)."""


class OpenAIChatModel(TesseraChatModel):
    """A chat model behind an OpenAI-compatible HTTP API."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    local: ClassVar[bool] = False

    base_url: str | None = None
    endpoints: list[str] = []
    """Replicas of the model, instead of one ``base_url``."""
    cooloff_s: float = 15.0
    """How long a replica that failed is skipped."""
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 1
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int | None = None
    structured_output: Literal["json_object", "json_schema"] = "json_object"
    strict_json: bool = False  # llama.cpp server's schema grammar lets control characters into strings
    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)
    _async_clients: dict[str, Any] = PrivateAttr(default_factory=dict)
    _replicas: ReplicaSet | None = PrivateAttr(None)

    @classmethod
    def from_config(cls, name: str, config: OpenAIModelConfig) -> OpenAIChatModel:
        """Build from a team's ``models.<name>`` entry; reads the API key from ``api_key_env``."""
        key = None
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ModelLoadError(
                    f"models.{name}.api_key_env: environment variable {config.api_key_env!r} is not set"
                )
        fields = config.model_dump(
            exclude={"backend", "api_key_env", "cost", "max_prompt_tokens", "keep_warm"}
        )
        return cls(model_id=name, api_key=key, **{k: v for k, v in fields.items() if v is not None})

    @property
    def urls(self) -> list[str]:
        """The endpoint URLs: the replicas, or the one ``base_url``."""
        return list(self.endpoints) or ([self.base_url] if self.base_url else [])

    @property
    def replicas(self) -> ReplicaSet:
        """Health and load of each endpoint."""
        if self._replicas is None:
            if not self.urls:
                raise ModelLoadError(f"models.{self.model_id}: needs 'base_url' or 'endpoints'")
            self._replicas = ReplicaSet(self.urls, cooloff_s=self.cooloff_s, api_key=self.api_key)
        return self._replicas

    @property
    def _llm_type(self) -> str:
        return "tessera-openai"

    @property
    def client(self) -> Any:
        """The underlying ``langchain_openai.ChatOpenAI`` of the first endpoint, for synchronous calls."""
        return self._client_for(self.urls[0])

    def _client_for(self, url: str) -> Any:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = self._build_client(url)
        return client

    def _aclient(self, url: str) -> Any:
        """A ``ChatOpenAI`` for ``url`` and the running event loop.

        httpx's async connections belong to the loop that opened them, and langchain-openai shares
        one async httpx client per endpoint: reused from a second ``asyncio.run``, it fails with
        "Event loop is closed". So each event loop gets a client of its own.
        """
        loop = asyncio.get_running_loop()
        cached = self._async_clients.get(url)
        if cached is not None and cached[0]() is loop:
            return cached[1]
        import openai

        client = self._build_client(url, http_async_client=openai.DefaultAsyncHttpxClient())
        self._async_clients[url] = (weakref.ref(loop), client)
        return client

    def _build_client(self, url: str, **extra: Any) -> Any:
        try:
            chat_openai = _chat_openai_class()
        except ImportError:
            raise MissingDependencyError(
                "the openai backend needs langchain-openai: pip install langchain-openai"
            ) from None
        import openai  # its Timeout is of the HTTP library this openai release uses (httpx, or httpx2 in 3.x)

        return chat_openai(
            model=self.model,
            base_url=url,
            api_key=self.api_key or "not-needed",
            timeout=openai.Timeout(self.timeout_s, connect=min(self.timeout_s, CONNECT_TIMEOUT_S)),
            max_retries=0 if len(self.urls) > 1 else self.max_retries,  # replicas fail over instead
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            stream_usage=True,
            **extra,
        )

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """Send the tools with each request, as OpenAI tool dicts."""
        specs = [t if isinstance(t, dict) else convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=specs, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        def call(url: str) -> ChatResult:
            client = self._client_for(url)
            result: ChatResult = client._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
            return result

        url, result = self.replicas.call(call, self.model_id)
        self._tag(result, url)
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        async def call(url: str) -> ChatResult:
            client = self._aclient(url)
            result: ChatResult = await client._agenerate(
                messages, stop=stop, run_manager=run_manager, **kwargs
            )
            return result

        url, result = await self.replicas.acall(call, self.model_id)
        self._tag(result, url)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        def call(url: str) -> Iterator[ChatGenerationChunk]:
            client = self._client_for(url)
            chunks: Iterator[ChatGenerationChunk] = client._stream(messages, stop, run_manager, **kwargs)
            return chunks

        yield from self.replicas.stream(call, self.model_id)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        def call(url: str) -> AsyncIterator[ChatGenerationChunk]:
            client = self._aclient(url)
            chunks: AsyncIterator[ChatGenerationChunk] = client._astream(
                messages, stop, run_manager, **kwargs
            )
            return chunks

        async for chunk in self.replicas.astream(call, self.model_id):
            yield chunk

    def _structured_request(
        self, messages: list[BaseMessage], schema: dict[str, Any]
    ) -> tuple[list[BaseMessage], dict[str, Any]]:
        if self.structured_output == "json_schema":
            fmt = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
            return messages, {"response_format": fmt}
        instruction = SystemMessage(
            content="Reply with one JSON object that matches this JSON schema, and nothing else:\n"
            + json.dumps(schema)
        )
        # llama.cpp's server turns the schema into a grammar; other servers at least get JSON mode.
        return [*messages, instruction], {"response_format": {"type": "json_object", "schema": schema}}

    def _structured(self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any) -> AIMessage:
        msgs, extra = self._structured_request(messages, schema)
        try:
            return _first(self._generate(msgs, **extra, **kwargs))
        except Exception as exc:
            return _truncated_reply(exc)

    async def _astructured(
        self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any
    ) -> AIMessage:
        msgs, extra = self._structured_request(messages, schema)
        try:
            return _first(await self._agenerate(msgs, **extra, **kwargs))
        except Exception as exc:
            return _truncated_reply(exc)

    def _tag(self, result: ChatResult, url: str) -> None:
        for generation in result.generations:
            generation.message.response_metadata.setdefault("model", self.model_id)
            generation.message.response_metadata["endpoint"] = url


@functools.cache
def _chat_openai_class() -> type[Any]:
    """``ChatOpenAI`` sending the limit as ``max_tokens``, the name every compatible server knows.

    langchain-openai renames it to ``max_completion_tokens``, which llama-cpp-python's server
    silently ignores: generation then runs on to the end of the context.
    """
    from langchain_openai import ChatOpenAI

    class _ChatOpenAI(ChatOpenAI):
        def _get_request_payload(
            self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any
        ) -> dict[str, Any]:
            payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
            if "max_completion_tokens" in payload:
                payload["max_tokens"] = payload.pop("max_completion_tokens")
            headers = dict(payload.get("extra_headers") or {})
            headers[HOPS_HEADER] = str(current_hops.get() + 1)
            payload["extra_headers"] = headers
            return payload

    return _ChatOpenAI


def _truncated_reply(exc: Exception) -> AIMessage:
    """The cut-off JSON of a structured reply that hit ``max_tokens``; re-raise anything else.

    With a ``response_format`` the openai client raises ``LengthFinishReasonError`` instead of
    returning the text; handing the text back lets the base class retry and then raise
    :class:`~tessera.errors.StructuredOutputError`, as for any other invalid output.
    """
    from openai import LengthFinishReasonError

    if not isinstance(exc, LengthFinishReasonError):
        raise exc
    content = exc.completion.choices[0].message.content or ""
    return AIMessage(content=content, response_metadata={"finish_reason": "length"})


def _first(result: ChatResult) -> AIMessage:
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    return message
