"""One prompt to one model, timed: what ``tessera prompt`` runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, SystemMessage

from tessera.models.pool import ModelPool

if TYPE_CHECKING:
    from tessera.config import TeamConfig

__all__ = ["PromptResult", "run_prompt"]


@dataclass
class PromptResult:
    """The text and its timing. ``seconds`` covers generation only: not start-up, not the model load."""

    text: str
    tokens: int
    seconds: float
    tokens_per_s: float | None
    model: str
    load_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_prompt(
    team: TeamConfig,
    model_name: str,
    text: str,
    *,
    system: str | None = None,
    on_token: Callable[[str], None] | None = None,
    pool: ModelPool | None = None,
    **options: Any,
) -> PromptResult:
    """Load ``model_name`` (untimed), then generate a reply to ``text`` (timed).

    With ``on_token`` the reply streams through it token by token; without, it is one call.
    """
    pool = pool or ModelPool.from_team(team)
    started = time.perf_counter()
    model = pool.load(model_name)
    load_seconds = time.perf_counter() - started
    messages: list[BaseMessage] = [HumanMessage(content=text)]
    if system:
        messages.insert(0, SystemMessage(content=system))
    kwargs = {k: v for k, v in options.items() if v is not None}
    started = time.perf_counter()
    if on_token is None:
        reply = model.invoke(messages, **kwargs)
        content, usage = reply.content, getattr(reply, "usage_metadata", None)
    else:
        full: AIMessageChunk | None = None
        for chunk in model.stream(messages, **kwargs):
            if isinstance(chunk.content, str) and chunk.content:
                on_token(chunk.content)
            full = chunk if full is None else full + chunk
        content, usage = (full.content, full.usage_metadata) if full else ("", None)
    seconds = time.perf_counter() - started
    tokens = int(usage["output_tokens"]) if usage else 0
    return PromptResult(
        text=content if isinstance(content, str) else str(content),
        tokens=tokens,
        seconds=seconds,
        tokens_per_s=tokens / seconds if tokens and seconds > 0 else None,
        model=model_name,
        load_seconds=load_seconds,
    )
