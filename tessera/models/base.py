"""What every Tessera backend shares: a langchain-core chat model with validated structured output.

A backend implements langchain-core's ``_generate`` (and usually ``_stream``) plus one more method,
:meth:`TesseraChatModel._structured`: produce JSON text for a JSON schema. Parsing, validation and the
retry on invalid output live here, once, for every backend.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any, ClassVar, TypeVar

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, convert_to_openai_messages
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ValidationError

from tessera.errors import StructuredOutputError

__all__ = ["TesseraChatModel", "collect_endpoints", "note_endpoint", "to_openai_messages"]

T = TypeVar("T", bound=BaseModel)
Schema = type[BaseModel] | dict[str, Any]
_ENDPOINTS: ContextVar[list[str] | None] = ContextVar("tessera_endpoints", default=None)


def collect_endpoints() -> list[str]:
    """Start collecting, in the current context, the endpoints that serve the model calls made from here.

    Returns the list they are appended to, in order. It is shared (not copied) into the threads and
    tasks the calls run in, so a remote backend deep inside a specialist can report where each request
    went. Call it at the start of a task (an asyncio task or a LangGraph node has its own context).
    """
    served: list[str] = []
    _ENDPOINTS.set(served)
    return served


def note_endpoint(url: str) -> None:
    """Report that ``url`` answered a model call (a no-op unless :func:`collect_endpoints` ran)."""
    served = _ENDPOINTS.get()
    if served is not None:
        served.append(url)


def to_openai_messages(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """langchain-core messages as OpenAI-style ``{role, content}`` dicts."""
    return convert_to_openai_messages(messages)


def json_schema_of(schema: Schema) -> dict[str, Any]:
    """The JSON schema of a pydantic model class, or the dict itself."""
    if isinstance(schema, dict):
        return schema
    return copy.deepcopy(_model_schema(schema))  # a copy: callers may adapt it


@functools.cache
def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


class TesseraChatModel(BaseChatModel):
    """Base of the built-in backends.

    Subclasses implement :meth:`_structured`; :meth:`with_structured_output` then returns a runnable
    that yields a validated pydantic instance (or dict), retrying ``structured_retries`` times on
    output that does not parse or validate.
    """

    model_id: str = "model"
    """The model's name in the team config; shown in traces and errors."""
    structured_retries: int = 1
    strict_json: bool = True
    """Reject raw control characters inside JSON strings. Remote grammars may let them through."""
    constrained_decoding: ClassVar[bool] = False
    """Structured output is decoded under a grammar built from the schema (not just validated after), so
    a schema can hold the output to more than pydantic checks: the planner's plan schema relies on it."""

    local: ClassVar[bool] = True
    """The model runs on this machine (in this process or a worker of it), not behind a network endpoint:
    routing never cools it off as unreachable, and a distributed engine may run it in an actor."""

    loads_weights: ClassVar[bool] = False
    """The model holds weights in this process's memory: the pool loads, evicts and counts it
    (``load``, ``unload``, ``try_unload``, ``estimate_ram_bytes``, ``attach_pool``)."""

    grammar_decoding: ClassVar[bool] = False
    """:meth:`astream_grammar` decodes free text under a GBNF grammar: the planner's compact plan format
    relies on it."""

    async def astream_grammar(
        self, value: LanguageModelInput, grammar: str, *, prefill: str = ""
    ) -> AsyncIterator[str]:
        """Text decoded under the GBNF ``grammar``, in pieces (backends with ``grammar_decoding``).

        ``prefill`` is the start of the reply, given rather than generated; the grammar and the yielded
        text cover what follows it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not decode under a GBNF grammar")
        yield ""  # pragma: no cover - makes this an async generator

    def output_room(self, messages: list[BaseMessage]) -> int | None:
        """Tokens the model can still generate after ``messages``; None when the backend cannot tell."""
        return None

    def _structured(self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any) -> AIMessage:
        """Generate JSON text for ``schema``; the returned message's content is that text."""
        raise NotImplementedError(f"{type(self).__name__} does not support structured output")

    async def _astructured(
        self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any
    ) -> AIMessage:
        return await asyncio.to_thread(self._structured, messages, schema, **kwargs)

    async def astream_structured(self, value: LanguageModelInput, schema: Schema) -> AsyncIterator[str]:
        """The JSON text for ``schema`` in pieces as it is generated, unvalidated (the caller parses it).

        Backends that can stream under a grammar override this; the default yields the whole text once.
        """
        messages = self._convert_input(value).to_messages()
        raw = await self._astructured(messages, json_schema_of(schema))
        yield raw.content if isinstance(raw.content, str) else json.dumps(raw.content)

    # -- public -------------------------------------------------------------------------------------

    def with_structured_output(
        self, schema: Schema, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """A runnable returning a validated instance of ``schema`` (or ``{"raw", "parsed"}``)."""

        def run(value: LanguageModelInput, **call: Any) -> Any:
            parsed, raw = self.generate_structured(value, schema, **kwargs, **call)
            return {"raw": raw, "parsed": parsed, "parsing_error": None} if include_raw else parsed

        async def arun(value: LanguageModelInput, **call: Any) -> Any:
            parsed, raw = await self.agenerate_structured(value, schema, **kwargs, **call)
            return {"raw": raw, "parsed": parsed, "parsing_error": None} if include_raw else parsed

        return RunnableLambda(run, afunc=arun, name=f"{self.model_id}.structured")

    def generate_structured(
        self, value: LanguageModelInput, schema: Schema, **kwargs: Any
    ) -> tuple[Any, AIMessage]:
        """Return ``(validated value, raw message)``; raise :class:`StructuredOutputError`."""
        messages = self._convert_input(value).to_messages()
        json_schema = json_schema_of(schema)
        errors: list[str] = []
        for _ in range(self.structured_retries + 1):
            raw = self._structured(messages, json_schema, **kwargs)
            try:
                return _validate(raw, schema, strict=self.strict_json), raw
            except ValueError as exc:
                errors.append(str(exc))
                messages = _with_feedback(messages, raw, str(exc))
        raise self._give_up(errors)

    async def agenerate_structured(
        self, value: LanguageModelInput, schema: Schema, **kwargs: Any
    ) -> tuple[Any, AIMessage]:
        """Async :meth:`generate_structured`."""
        messages = self._convert_input(value).to_messages()
        json_schema = json_schema_of(schema)
        errors: list[str] = []
        for _ in range(self.structured_retries + 1):
            raw = await self._astructured(messages, json_schema, **kwargs)
            try:
                return _validate(raw, schema, strict=self.strict_json), raw
            except ValueError as exc:
                errors.append(str(exc))
                messages = _with_feedback(messages, raw, str(exc))
        raise self._give_up(errors)

    def _give_up(self, errors: list[str]) -> StructuredOutputError:
        tries = len(errors)
        return StructuredOutputError(
            f"model {self.model_id!r}: output failed the schema {tries} time(s): {errors[-1]}"
        )


def _validate(raw: AIMessage, schema: Schema, *, strict: bool = True) -> Any:
    text = raw.content if isinstance(raw.content, str) else json.dumps(raw.content)
    try:
        data = json.loads(text, strict=strict)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos}): {text[:200]!r}") from None
    if isinstance(schema, dict):
        import jsonschema

        try:
            jsonschema.validate(data, schema)
        except jsonschema.ValidationError as exc:
            raise ValueError(f"does not match the schema: {exc.message}") from None
        return data
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ValueError(f"{where}: {first['msg']} ({exc.error_count()} error(s))") from None


def validate_output(raw: AIMessage, schema: Schema, *, strict: bool = True) -> Any:
    """Parse and validate a model's JSON text against ``schema``; ``ValueError`` says what is wrong."""
    return _validate(raw, schema, strict=strict)


def _with_feedback(messages: list[BaseMessage], raw: AIMessage, error: str) -> list[BaseMessage]:
    return [
        *messages,
        AIMessage(content=_clip(raw.content)),
        HumanMessage(content=f"That output is invalid: {error}. Reply again with corrected JSON only."),
    ]


def _clip(content: Any, limit: int = 800) -> str:
    text = content if isinstance(content, str) else json.dumps(content)
    return text if len(text) <= limit else text[:limit] + " …(cut)"
