"""The ``llama_cpp`` backend: a GGUF model run in-process by llama-cpp-python.

Written on langchain-core's ``BaseChatModel`` (no langchain-community). It chats with the model's own
template, streams, and decodes structured output under a grammar that cannot produce invalid JSON: control
characters are kept out of strings, strings and arrays are bounded, and ``max_tokens`` is sized for the
longest output the schema allows.

A llama.cpp context is not thread-safe, so every generation holds the model's lock: calls on one model
queue up, calls on different models run together. llama-cpp-python keeps the previous prompt's KV cache
and re-evaluates only what changed; on top of that a :class:`~tessera.models._prefix_cache.PrefixCache`
of up to ``prefix_cache_mb`` keeps the KV states of repeated prompt prefixes (a specialist's system prompt
and tools), so they are not prefilled again even when other prompts ran on the model in between. With
``prefix_cache_dir``, the states of long prompts are saved on disk too, for the next process
(:mod:`tessera.models._prefix_disk`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, PrivateAttr

from tessera._progress import slow_notice
from tessera._system import physical_cores
from tessera.errors import (
    ContextLengthError,
    MissingDependencyError,
    ModelLoadError,
    StructuredOutputError,
)
from tessera.models import _download
from tessera.models._gguf import GGUFInfo, read_gguf
from tessera.models._llama_stream import (
    GenerationCancelled,
    TokenTap,
    prefilled,
    watched,
    without_stop_prefix,
)
from tessera.models._llama_tools import (
    has_tool_turns,
    read_tool_calls,
    repeat_answered,
    repeat_guard,
    tool_call_chunks,
    tool_request,
)
from tessera.models._schema import fit_schema, schema_to_grammar
from tessera.models._tool_grammar import Tools, may_be_call
from tessera.models.base import TesseraChatModel, json_schema_of, to_openai_messages
from tessera.tracing import carry, record_span

if TYPE_CHECKING:
    from llama_cpp import Llama

    from tessera.config import LlamaCppModelConfig
    from tessera.models._prefix_cache import PrefixCache

__all__ = ["GenerationCancelled", "LlamaCppChatModel"]

_MB = 1 << 20
_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "seed", "repeat_penalty")


class LlamaCppChatModel(TesseraChatModel):
    """A local GGUF chat model. Loads lazily on first use (or :meth:`load`); :meth:`unload` frees it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    constrained_decoding: ClassVar[bool] = True
    grammar_decoding: ClassVar[bool] = True
    loads_weights: ClassVar[bool] = True

    path: Path | None = None
    repo: str | None = None
    file: str | None = None
    revision: str | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    n_batch: int = 512
    n_gpu_layers: int = 0
    chat_format: str | None = None
    prefix_cache_mb: int = 128
    prefix_cache_dir: Path | None = None
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int | None = None
    keep_warm: bool = False

    _llm: Llama | None = PrivateAttr(None)
    _info: GGUFInfo | None = PrivateAttr(None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _grammars: dict[str, Any] = PrivateAttr(default_factory=dict)
    _before_load: Callable[[LlamaCppChatModel], None] | None = PrivateAttr(None)
    _on_use: Callable[[LlamaCppChatModel], None] | None = PrivateAttr(None)
    _queued: int = PrivateAttr(0)
    _count_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    load_seconds: float | None = None

    @classmethod
    def from_config(cls, name: str, config: LlamaCppModelConfig) -> LlamaCppChatModel:
        """Build from a team's ``models.<name>`` entry (nothing is loaded yet)."""
        fields = config.model_dump(exclude={"backend", "cost", "max_prompt_tokens"})
        return cls(model_id=name, **fields)

    @property
    def _llm_type(self) -> str:
        return "tessera-llama-cpp"

    # -- loading ------------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory now."""
        return self._llm is not None

    @property
    def busy(self) -> bool:
        """Whether a generation is running or waiting on this model."""
        return self._queued > 0

    @property
    def queue_length(self) -> int:
        """Generations running or waiting on this model."""
        return self._queued

    def model_file(self) -> Path:
        """The GGUF file, downloading it first if it comes from the hub."""
        if self.path is not None:
            return _download.local_path(self.path)
        assert self.repo and self.file  # guaranteed by the config validator
        return _download.download(self.repo, self.file, self.revision)

    def info(self) -> GGUFInfo:
        """The GGUF header (reads the file, downloading it if needed)."""
        if self._info is None:
            self._info = read_gguf(self.model_file())
        return self._info

    def effective_n_ctx(self) -> int:
        """The configured context, capped at what the model was trained for."""
        trained = self.info().context_length
        return min(self.n_ctx, trained) if trained else self.n_ctx

    def estimate_ram_bytes(self) -> int:
        """Weights + KV cache + compute buffers + prefix cache, from the GGUF header."""
        return self.info().estimate_ram_bytes(self.effective_n_ctx(), self.prefix_cache_mb * _MB)

    def attach_pool(
        self,
        *,
        before_load: Callable[[LlamaCppChatModel], None],
        on_use: Callable[[LlamaCppChatModel], None],
    ) -> None:
        """Let a pool manage this model's memory: ``before_load`` runs just before the weights load (to
        make room), ``on_use`` at the start of each generation (to mark the model recently used)."""
        self._before_load, self._on_use = before_load, on_use

    def load(self) -> Llama:
        """Load the model now if it is not loaded; return the llama-cpp-python handle."""
        with self._load_lock:
            if self._llm is not None:
                return self._llm
            info = self.info()
            if self._before_load is not None:
                self._before_load(self)
            self._llm = self._create(info)
            return self._llm

    def unload(self) -> None:
        """Free the weights and KV cache. The next call loads them again."""
        with self._lock, self._load_lock:
            llm, self._llm = self._llm, None
            if llm is not None:
                llm.close()

    def try_unload(self) -> bool:
        """Unload unless a generation holds the model right now; return whether it was unloaded."""
        if self._queued or not self._lock.acquire(blocking=False):
            return False
        try:
            if not self._load_lock.acquire(blocking=False):
                return False
            try:
                llm, self._llm = self._llm, None
            finally:
                self._load_lock.release()
            if llm is not None:
                llm.close()
            return True
        finally:
            self._lock.release()

    def _create(self, info: GGUFInfo) -> Llama:
        try:
            from tessera.models._prefix_cache import PrefixCache, PrefixReusingLlama
        except ImportError:
            raise MissingDependencyError(
                "the llama_cpp backend needs llama-cpp-python: pip install llama-cpp-python"
            ) from None
        threads = self.n_threads or physical_cores()
        n_ctx = self.effective_n_ctx()
        size_mb = info.file_size / _MB
        started, wall_start = time.perf_counter(), time.time()
        with slow_notice(f"loading model {self.model_id!r} ({size_mb:,.0f} MB)"):
            try:
                llm = PrefixReusingLlama(
                    model_path=str(info.path),
                    n_ctx=n_ctx,
                    n_batch=min(self.n_batch, n_ctx),
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=self.n_gpu_layers,
                    chat_format=self.chat_format,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelLoadError(f"{info.path}: llama.cpp could not load it ({exc})") from None
            _warm_up(llm)
        self.load_seconds = time.perf_counter() - started
        record_span("load", wall_start, time.time(), model=self.model_id)
        if self.prefix_cache_mb and PrefixCache.supports(llm):
            disk = None
            if self.prefix_cache_dir is not None:
                from tessera.models._prefix_disk import DiskStates, disk_key

                folder = Path(self.prefix_cache_dir).expanduser() / disk_key(info.path, n_ctx)
                disk = DiskStates(folder, self.prefix_cache_mb * _MB)
            llm.prefix_cache = PrefixCache(self.prefix_cache_mb * _MB, disk=disk)
        return llm

    @property
    def prefix_cache(self) -> PrefixCache | None:
        """The loaded model's cache of prefix KV states (None when unloaded or turned off)."""
        return getattr(self._llm, "prefix_cache", None)

    @contextmanager
    def _session(self) -> Iterator[Llama]:
        """Hold the model for one generation: serialized, loaded, and marked as recently used."""
        with self._count_lock:
            self._queued += 1
        try:
            with self._lock:
                llm = self.load()
                if self._on_use is not None:
                    self._on_use(self)
                yield llm
        finally:
            with self._count_lock:
                self._queued -= 1

    # -- generation ---------------------------------------------------------------------------------

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Let the model call ``tools``: each reply is text or calls that fit the tools' schemas.

        ``tool_choice`` is ``auto`` (default), ``none``, ``any``/``required`` or a tool's name. The
        protocol, prompt and grammar are :mod:`tessera.models._llama_tools`'.
        """
        bound = Tools.pop({"tools": tools, "tool_choice": tool_choice})  # checks tool_choice now
        return self.bind(tools=bound.tools if bound else [], tool_choice=tool_choice, **kwargs)

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            params["seed"] = self.seed
        params.update({k: v for k, v in kwargs.items() if k in _SAMPLING_KEYS and v is not None})
        if stop:
            params["stop"] = stop
        return params

    def _complete(
        self,
        llm: Llama,
        messages: list[BaseMessage],
        params: dict[str, Any],
        *,
        tap: TokenTap | None = None,
        grammar: Any = None,
        tools: Tools | None = None,
    ) -> AIMessage:
        """One chat completion on a held model; ``tap`` sees tokens as they come and can cancel."""
        chat = to_openai_messages(messages)
        if tools is not None or has_tool_turns(chat):
            return self._complete_tools(llm, chat, params, tap, tools, grammar)
        return self._chat(llm, chat, params, tap, {} if grammar is None else {"grammar": grammar})

    def _complete_tools(
        self,
        llm: Llama,
        chat: list[dict[str, Any]],
        params: dict[str, Any],
        tap: TokenTap | None,
        tools: Tools | None,
        grammar: Any = None,
    ) -> AIMessage:
        """A completion with tools bound, or with tool turns in the history (see ``_llama_tools``)."""
        request = tool_request(llm, chat, tools, params, tap)
        grammar = self._grammar(request.grammar) if request.grammar else grammar
        extra = request.extra if grammar is None else {**request.extra, "grammar": grammar}
        message = self._chat(llm, request.messages, request.params, request.limit or tap, extra)
        if tools is None:
            return message
        reply = read_tool_calls(message, self.model_id, tools, request.limit)
        if (answer_only := repeat_guard(reply, chat, tools)) is not None:
            return repeat_answered(reply, self._complete_tools(llm, chat, params, tap, answer_only))
        return reply

    def _chat(
        self,
        llm: Llama,
        chat: list[dict[str, Any]],
        params: dict[str, Any],
        tap: TokenTap | None,
        extra: dict[str, Any],
    ) -> AIMessage:
        started = time.perf_counter()
        wall_start = time.time()
        try:
            with watched(llm, tap):
                out = llm.create_chat_completion(messages=chat, **params, **extra)  # type: ignore[arg-type]
        except ValueError as exc:
            if "context window" in str(exc):
                raise ContextLengthError(f"model {self.model_id!r}: {exc}") from None
            raise
        message = self._message(out, time.perf_counter() - started, llm, wall_start)
        self._trace(message, llm, wall_start)
        return message

    def _trace(self, message: AIMessage, llm: Llama, start: float) -> None:
        """Record the call's prefill (request to first token) and decode spans in the run's trace."""
        end = time.time()
        usage: dict[str, Any] = dict(message.usage_metadata or {})
        prompt = getattr(llm, "last_prompt", None)
        first = prompt.first_token_at if prompt is not None and prompt.first_token_at else end
        cached = usage.get("input_token_details", {}).get("cache_read", 0)
        prompt_tokens = usage.get("input_tokens", 0)
        record_span(
            "prefill", start, first, model=self.model_id, prompt_tokens=prompt_tokens, cached_tokens=cached
        )
        record_span("decode", first, end, model=self.model_id, tokens=usage.get("output_tokens", 0))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        cancel = kwargs.pop("cancel", None)
        tools = Tools.pop(kwargs)
        params = self._params(stop, kwargs)
        tap = TokenTap(cancel=cancel) if cancel is not None else None
        with self._session() as llm:
            message = self._complete(llm, messages, params, tap=tap, tools=tools)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        cancel = threading.Event()
        work = asyncio.ensure_future(
            asyncio.to_thread(self._generate, messages, stop, None, cancel=cancel, **kwargs)
        )
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            cancel.set()  # llama.cpp stops at the next token; the model is free again right after
            raise

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # llama-cpp-python's own stream decodes each token on its own and drops characters split
        # across tokens; instead the plain completion runs in a worker and a token tap streams text
        # through an incremental UTF-8 decoder.
        cancel = kwargs.pop("cancel", None) or threading.Event()
        tools = Tools.pop(kwargs)
        params = self._params(stop, kwargs)
        stops = list(params.get("stop") or [])
        pieces: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        tap = TokenTap(cancel=cancel, on_text=pieces.put)
        box: dict[str, Any] = {}
        with self._session() as llm:

            def work() -> None:
                try:
                    box["message"] = self._complete(llm, messages, params, tap=tap, tools=tools)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                    box["error"] = exc
                finally:
                    pieces.put(None)

            worker = threading.Thread(target=carry(work), name=f"tessera-{self.model_id}", daemon=True)
            worker.start()
            emitted, pending = "", ""
            try:
                while (piece := pieces.get()) is not None:
                    pending += piece
                    ready = without_stop_prefix(pending, stops)
                    if tools is not None and not emitted and may_be_call(pending):
                        ready = ""  # a reply that may turn out to be tool calls is not streamed as text
                    if ready:
                        emitted, pending = emitted + ready, pending[len(ready) :]
                        yield self._chunk(ready, run_manager)
            finally:
                if "message" not in box and "error" not in box:
                    cancel.set()  # the consumer stopped early: stop generating
                worker.join()
        if "error" in box:
            raise box["error"]
        message: AIMessage = box["message"]
        text = str(message.content)
        if text.startswith(emitted) and len(text) > len(emitted):
            yield self._chunk(text[len(emitted) :], run_manager)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                tool_call_chunks=tool_call_chunks(message),
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
            )
        )

    def _chunk(self, text: str, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
        chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
        if run_manager:
            run_manager.on_llm_new_token(text, chunk=chunk)
        return chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[ChatGenerationChunk | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def produce() -> None:
            try:
                for chunk in self._stream(messages, stop, None, cancel=cancel, **kwargs):
                    loop.call_soon_threadsafe(chunks.put_nowait, chunk)
                loop.call_soon_threadsafe(chunks.put_nowait, None)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                loop.call_soon_threadsafe(chunks.put_nowait, exc)

        worker = loop.run_in_executor(None, carry(produce))
        try:
            while (item := await chunks.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if run_manager and item.text:
                    await run_manager.on_llm_new_token(item.text, chunk=item)
                yield item
        finally:
            cancel.set()
            await asyncio.shield(worker)

    async def astream_structured(self, value: LanguageModelInput, schema: Any) -> AsyncIterator[str]:
        """The JSON for ``schema`` in pieces as the grammar-constrained generation produces them."""
        messages = self._convert_input(value).to_messages()
        async for piece in self._astream_work(self._structured, messages, json_schema_of(schema)):
            yield piece

    async def astream_grammar(
        self, value: LanguageModelInput, grammar: str, *, prefill: str = ""
    ) -> AsyncIterator[str]:
        """Text decoded under the GBNF ``grammar``, in pieces as it is generated.

        ``prefill`` is the start of the reply, put in the prompt rather than generated (a prefill costs
        one batched evaluation; generating it, one decode step per token); the grammar and the yielded
        text cover only what follows it.
        """
        messages = self._convert_input(value).to_messages()
        work = functools.partial(self._under_grammar, prefill=prefill)
        async for piece in self._astream_work(work, messages, grammar):
            yield piece

    def output_room(self, messages: list[BaseMessage]) -> int | None:
        """Tokens left in the context after ``messages`` (loads the model)."""
        with self._session() as llm:
            return llm.n_ctx() - self._prompt_tokens(llm, messages)

    def _under_grammar(self, messages: list[BaseMessage], grammar: str, **kwargs: Any) -> AIMessage:
        cancel = kwargs.pop("cancel", None)
        on_text = kwargs.pop("on_text", None)
        prefill: str = kwargs.pop("prefill", "")
        params = self._params(None, kwargs)
        tap = TokenTap(cancel=cancel, on_text=on_text) if cancel is not None or on_text else None
        with self._session() as llm, prefilled(llm, prefill) as extra_tokens:
            # The grammar bounds the output (a finite language); max_tokens must not cut it short.
            room = llm.n_ctx() - self._prompt_tokens(llm, messages) - extra_tokens
            params["max_tokens"] = max(1, room)
            return self._complete(llm, messages, params, tap=tap, grammar=self._grammar(grammar))

    async def _astream_work(
        self, work_fn: Callable[..., AIMessage], messages: list[BaseMessage], spec: Any
    ) -> AsyncIterator[str]:
        """Run ``work_fn(messages, spec)`` in a thread; yield its text as its tap sees it, then the rest."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        cancel = threading.Event()

        def on_text(text: str) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, text)

        work = asyncio.ensure_future(
            asyncio.to_thread(work_fn, messages, spec, cancel=cancel, on_text=on_text)
        )
        work.add_done_callback(lambda _: pieces.put_nowait(None))  # after the pieces queued before it
        emitted = ""
        try:
            while (piece := await pieces.get()) is not None:
                emitted += piece
                yield piece
            message = await work
        finally:
            if not work.done():
                cancel.set()
        text = str(message.content)
        if text.startswith(emitted) and len(text) > len(emitted):
            yield text[len(emitted) :]

    def _structured(self, messages: list[BaseMessage], schema: dict[str, Any], **kwargs: Any) -> AIMessage:
        cancel = kwargs.pop("cancel", None)
        on_text = kwargs.pop("on_text", None)
        params = self._params(None, kwargs)
        tap = TokenTap(cancel=cancel, on_text=on_text) if cancel is not None or on_text else None
        with self._session() as llm:
            room = llm.n_ctx() - self._prompt_tokens(llm, messages)
            try:
                bounded, worst = fit_schema(schema, room - 8)
            except ValueError as exc:
                raise StructuredOutputError(f"model {self.model_id!r}: {exc}") from None
            if worst is not None:
                params["max_tokens"] = worst + 8  # llama.cpp also caps it at the context left
            grammar = self._grammar(bounded)
            return self._complete(llm, messages, params, tap=tap, grammar=grammar)

    def _prompt_tokens(self, llm: Llama, messages: list[BaseMessage]) -> int:
        """An upper estimate of the prompt's tokens: the contents plus template overhead."""
        text = "\n".join(str(m.content) for m in messages)
        return len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)) + 16 * len(messages)

    def _grammar(self, schema: dict[str, Any] | str) -> Any:
        """The compiled grammar for a JSON schema, or for GBNF text (cached)."""
        key = schema if isinstance(schema, str) else json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp import LlamaGrammar

            text = schema if isinstance(schema, str) else schema_to_grammar(schema)
            grammar = LlamaGrammar.from_string(text, verbose=False)
            self._grammars[key] = grammar
        return grammar

    def _message(self, out: Any, seconds: float, llm: Llama, wall_start: float) -> AIMessage:
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        prompt = getattr(llm, "last_prompt", None)
        cached = prompt.cached_tokens if prompt is not None else 0
        metadata = self._metadata(choice.get("finish_reason"), seconds)
        if prompt is not None and prompt.first_token_at is not None:
            metadata["ttft_s"] = max(prompt.first_token_at - wall_start, 0.0)
        return AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata={
                "input_tokens": int(usage.get("prompt_tokens", 0)),
                "output_tokens": int(usage.get("completion_tokens", 0)),
                "total_tokens": int(usage.get("total_tokens", 0)),
                "input_token_details": {"cache_read": cached},
            },
            response_metadata=metadata,
        )

    def _metadata(self, finish: str | None, seconds: float) -> dict[str, Any]:
        return {"model": self.model_id, "finish_reason": finish, "seconds": seconds}


def _warm_up(llm: Llama) -> None:
    """Evaluate one token so the mmap'd weights are paged in: the load pays for it, not the first call."""
    bos = llm.token_bos()
    llm.eval([bos if bos >= 0 else 0])
    llm.reset()
