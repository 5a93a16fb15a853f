"""Streaming helpers of the ``llama_cpp`` backend: a token tap that decodes and cancels, and stop holdback."""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = ["GenerationCancelled", "TokenTap", "prefilled", "watched", "without_stop_prefix"]


class GenerationCancelled(Exception):
    """A generation was stopped on request (a timeout, or a consumer that went away)."""


class TokenTap:
    """A stopping criterion that never stops: it watches tokens go by, decodes them, and cancels on request.

    llama-cpp-python calls it after sampling each token, with the ids evaluated so far (so it runs one
    token behind); the caller fills in the tail from the final text. Cancelling raises
    :class:`GenerationCancelled` between two tokens, where llama.cpp's state is consistent. It is a
    stopping criterion, not a logits processor: llama-cpp-python runs logits processors inside a ctypes
    callback, which swallows exceptions (printing "Exception ignored on calling ctypes callback" for
    every token) and so could never stop a generation.
    """

    def __init__(
        self, *, cancel: threading.Event | None = None, on_text: Callable[[str], None] | None = None
    ) -> None:
        self.cancel = cancel
        self.on_text = on_text
        self.seen: int | None = None
        self._llm: Llama | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    def bind(self, llm: Llama) -> None:
        self._llm = llm

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        if self.cancel is not None and self.cancel.is_set():
            raise GenerationCancelled("generation cancelled")
        if self.seen is None:
            self.seen = len(input_ids)  # the prompt
        elif self.on_text is not None and self._llm is not None and len(input_ids) > self.seen:
            data = self._llm.detokenize(list(input_ids[self.seen :]))
            self.seen = len(input_ids)
            text = self._decoder.decode(data)
            if text:
                self.on_text(text)
        return False


@contextmanager
def watched(llm: Llama, tap: TokenTap | None) -> Iterator[None]:
    """Add ``tap`` to the stopping criteria of the completions ``llm`` runs inside the block.

    ``create_chat_completion`` takes no stopping criteria (its chat handler passes only the template's
    own to ``create_completion``), so the held model's ``create_completion`` is wrapped for the call.
    The caller holds the model exclusively, so no other call sees the wrapper.
    """
    if tap is None:
        yield
        return
    from llama_cpp import StoppingCriteriaList

    tap.bind(llm)
    original = llm.create_completion

    def create_completion(*args: Any, **kwargs: Any) -> Any:
        criteria = list(kwargs.get("stopping_criteria") or [])
        kwargs["stopping_criteria"] = StoppingCriteriaList([*criteria, tap])
        return original(*args, **kwargs)

    llm.create_completion = create_completion  # type: ignore[method-assign]
    try:
        yield
    finally:
        _restore(llm, original)


@contextmanager
def prefilled(llm: Llama, text: str) -> Iterator[int]:
    """Append ``text`` to the prompt of the completions ``llm`` runs inside the block; yields its tokens.

    The reply then starts with ``text`` without generating it (the completion's text is what follows).
    The chat handler renders the template and passes the prompt's tokens to ``create_completion``, so the
    held model's ``create_completion`` is wrapped for the call, as :func:`watched` does.
    """
    if not text:
        yield 0
        return
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    original = llm.create_completion

    def create_completion(*args: Any, **kwargs: Any) -> Any:
        prompt = kwargs["prompt"]
        kwargs["prompt"] = prompt + text if isinstance(prompt, str) else [*prompt, *tokens]
        return original(*args, **kwargs)

    llm.create_completion = create_completion  # type: ignore[method-assign]
    try:
        yield len(tokens)
    finally:
        _restore(llm, original)


def _restore(llm: Llama, original: Any) -> None:
    """Put back ``original`` as ``llm.create_completion`` (the class's method, or an outer wrapper)."""
    if getattr(original, "__self__", None) is llm and getattr(original, "__func__", None) is getattr(
        type(llm), "create_completion", None
    ):
        vars(llm).pop("create_completion", None)
    else:
        llm.create_completion = original  # type: ignore[method-assign]


def without_stop_prefix(text: str, stops: list[str]) -> str:
    """The longest start of ``text`` that cannot be the beginning of a stop sequence."""
    for stop in stops:
        at = text.find(stop)
        if at >= 0:
            text = text[:at]
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                hold = max(hold, size)
                break
    return text[: len(text) - hold]
