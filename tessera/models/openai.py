"""The ``openai`` backend: any OpenAI-compatible endpoint (llama.cpp server, vLLM, Ollama, a cloud API).

It delegates to langchain-openai's ``ChatOpenAI`` for the wire protocol and adds what Tessera needs: a
timeout on every request, and structured output through ``response_format: json_object`` plus a schema,
which is what llama.cpp's server accepts (it refuses ``json_schema``). Endpoints that honour
``json_schema`` can opt into it with ``structured_output: json_schema``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

from tessera.errors import MissingDependencyError, ModelLoadError
from tessera.models.base import TesseraChatModel

if TYPE_CHECKING:
    from tessera.config import OpenAIModelConfig

__all__ = ["OpenAIChatModel"]


class OpenAIChatModel(TesseraChatModel):
    """A chat model behind an OpenAI-compatible HTTP API."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 1
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int | None = None
    structured_output: Literal["json_object", "json_schema"] = "json_object"
    _client: Any = PrivateAttr(None)

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
        return cls(model_id=name, api_key=key, **fields)

    @property
    def _llm_type(self) -> str:
        return "tessera-openai"

    @property
    def client(self) -> Any:
        """The underlying ``langchain_openai.ChatOpenAI``."""
        if self._client is None:
            try:
                from langchain_openai import ChatOpenAI
            except ImportError:
                raise MissingDependencyError(
                    "the openai backend needs langchain-openai: pip install langchain-openai"
                ) from None
            self._client = ChatOpenAI(
                model=self.model,
                base_url=self.base_url,
                api_key=self.api_key or "not-needed",
                timeout=self.timeout_s,
                max_retries=self.max_retries,
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=self.max_tokens,
                seed=self.seed,
                stream_usage=True,
            )
        return self._client

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
        result: ChatResult = self.client._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        self._tag(result)
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        result: ChatResult = await self.client._agenerate(
            messages, stop=stop, run_manager=run_manager, **kwargs
        )
        self._tag(result)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self.client._stream(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self.client._astream(messages, stop=stop, run_manager=run_manager, **kwargs):
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

    def _structured(
        self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any
    ) -> AIMessage:
        msgs, extra = self._structured_request(messages, schema)
        return _first(self._generate(msgs, **extra, **kwargs))

    async def _astructured(
        self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any
    ) -> AIMessage:
        msgs, extra = self._structured_request(messages, schema)
        return _first(await self._agenerate(msgs, **extra, **kwargs))

    def _tag(self, result: ChatResult) -> None:
        for generation in result.generations:
            generation.message.response_metadata.setdefault("model", self.model_id)


def _first(result: ChatResult) -> AIMessage:
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    return message
