"""Time to first token, cold vs warm, for a repeated ~1,000-token system prompt on a real llama.cpp model.

A specialist sends the same long system prompt (its role and tool descriptions) with a different short
task each time, while other prompts (the planner, other specialists) run on the same model in between.
Each repetition loads the model afresh and makes:

* one **cold** call: the first call after the load (the load itself is not counted);
* ``warm_calls`` **warm** calls, each after an unrelated prompt ran on the model.

TTFT is the backend's own ``ttft_s``: from the request to the first sampled token (prompt formatting,
tokenizing, any state restore and the prefill). Three setups run in the same process, one after the
other in each repetition so that machine noise hits them alike:

* ``prefix_cache``: Tessera's default (:class:`~tessera.models._prefix_cache.PrefixCache`);
* ``no_cache``: ``prefix_cache_mb: 0``: llama-cpp-python reuses only the previous prompt's prefix, which
  the unrelated prompt in between has replaced;
* ``llama_ram_cache``: no prefix cache, llama-cpp-python's own ``LlamaRAMCache`` instead (it saves the
  whole context state after every call).

Medians over all samples; ``ratio`` = cold / warm for the prefix cache; ``cache_mb`` is what the cache
holds at the end of a round.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

__all__ = ["SETUPS", "measure_ttft"]

SETUPS = ("prefix_cache", "no_cache", "llama_ram_cache")

_ROLE = (
    "You are the data specialist of a team of small models. You answer one subtask at a time, using "
    "only the tools below, and you reply with the result only. Tools: search_docs(query, k) returns "
    "passages with their sources; run_python(code) runs code in a sandbox and returns stdout; "
    "read_table(path, columns) loads a CSV file; plot(series, kind) draws a chart and returns its path. "
)
_OTHER = (
    "You are the planner. Split the user's task into at most four subtasks for the coder, the writer "
    "and the data specialist, and reply with the plan as JSON only. "
)
_TASKS = (
    "Sum the sales column of q3.csv.",
    "Which region grew fastest last year?",
    "Plot weekly sign-ups as a line chart.",
    "Find the median order value in orders.csv.",
    "How many customers churned in March?",
    "Compare revenue per seat across plans.",
)


def _text_of(tokens: int, tokenize: Any, base: str) -> str:
    """``base`` repeated and cut to about ``tokens`` tokens of the model's tokenizer."""
    text = base
    while len(tokenize(text)) < tokens:
        text += base
    while len(tokenize(text)) > tokens:
        text = text[: max(len(text) - max(len(text) // 50, 1), 1)]
    return text


def measure_ttft(
    model_path: str | Path | None = None,
    *,
    repeats: int = 3,
    warm_calls: int = 3,
    system_tokens: int = 1000,
    max_tokens: int = 4,
    n_threads: int | None = 1,
    setups: tuple[str, ...] = SETUPS,
) -> dict[str, Any]:
    """Measure cold and warm TTFT; ``model_path`` None writes the 26M-parameter bench model to a temp dir.

    ``n_threads`` defaults to 1: llama.cpp's threads spin-wait, so on a shared machine more threads
    than idle cores measure the neighbours rather than the prefill.

    Returns ``{"ttft_cold_s", "ttft_warm_s", "ratio", "setups": {name: {...}}, "settings": {...}}``.
    """
    from tessera.errors import UserError

    unknown = [s for s in setups if s not in SETUPS]
    if unknown or not setups:
        raise UserError(f"setups: unknown {unknown or 'none given'} (known: {', '.join(SETUPS)})")
    if repeats < 1 or warm_calls < 1:
        raise UserError("repeats and warm_calls must be at least 1")
    generated = model_path is None
    with tempfile.TemporaryDirectory(prefix="tessera-ttft-") as tmp:
        if model_path is None:
            from tessera.testing.tiny import write_bench_gguf

            model_path = write_bench_gguf(Path(tmp) / "bench.gguf")
        path = Path(model_path)
        if not path.is_file():
            raise UserError(f"model file not found: {path}")
        samples: dict[str, dict[str, list[float]]] = {
            s: {"cold": [], "warm": [], "cached_warm": [], "call_warm": [], "cache_mb": []} for s in setups
        }
        prompt_tokens = 0
        for _ in range(repeats):
            for setup in setups:
                row, prompt_tokens = _one_round(path, setup, warm_calls, system_tokens, max_tokens, n_threads)
                for key, values in row.items():
                    samples[setup][key].extend(values)
    stats = {setup: _summary(values) for setup, values in samples.items()}
    main = stats.get("prefix_cache") or next(iter(stats.values()))
    return {
        "ttft_cold_s": main["ttft_cold_s"],
        "ttft_warm_s": main["ttft_warm_s"],
        "ratio": main["ratio"],
        "setups": stats,
        "samples": samples,
        "settings": {
            "model": "generated (write_bench_gguf)" if generated else str(path),
            "repeats": repeats,
            "warm_calls": warm_calls,
            "system_tokens": system_tokens,
            "prompt_tokens": prompt_tokens,
            "max_tokens": max_tokens,
            "n_threads": n_threads,
        },
    }


def _summary(values: dict[str, list[float]]) -> dict[str, float]:
    cold, warm = statistics.median(values["cold"]), statistics.median(values["warm"])
    return {
        "ttft_cold_s": cold,
        "ttft_warm_s": warm,
        "ratio": cold / warm if warm > 0 else float("inf"),
        "warm_cached_tokens": statistics.median(values["cached_warm"]),
        "warm_call_s": statistics.median(values["call_warm"]),
        "cache_mb": statistics.median(values["cache_mb"]),
    }


def _one_round(
    path: Path, setup: str, warm_calls: int, system_tokens: int, max_tokens: int, n_threads: int | None
) -> tuple[dict[str, list[float]], int]:
    """Load the model, make the cold call, then warm calls with an unrelated prompt before each."""
    from tessera.models.llama_cpp import LlamaCppChatModel

    model = LlamaCppChatModel(
        model_id="ttft",
        path=path,
        n_ctx=max(2048, system_tokens * 2),
        n_threads=n_threads,
        max_tokens=max_tokens,
        temperature=0.0,
        prefix_cache_mb=128 if setup == "prefix_cache" else 0,
    )
    llm = model.load()
    if setup == "llama_ram_cache":
        from llama_cpp import LlamaRAMCache

        llm.set_cache(LlamaRAMCache(capacity_bytes=128 << 20))

    def tokenize(text: str) -> list[int]:
        return llm.tokenize(text.encode(), add_bos=False, special=False)

    system = _text_of(system_tokens, tokenize, _ROLE)
    other = _text_of(system_tokens // 4, tokenize, _OTHER)
    row: dict[str, list[float]] = {"cold": [], "warm": [], "cached_warm": [], "call_warm": [], "cache_mb": []}
    prompt_tokens = 0
    try:
        for i in range(warm_calls + 1):
            if i:
                model.invoke([SystemMessage(content=other), HumanMessage(content=_TASKS[-i % len(_TASKS)])])
            started = time.perf_counter()
            task = _TASKS[i % len(_TASKS)]
            reply = model.invoke([SystemMessage(content=system), HumanMessage(content=task)])
            seconds = time.perf_counter() - started
            usage: dict[str, Any] = dict(reply.usage_metadata or {})
            prompt_tokens = usage.get("input_tokens", 0)
            ttft = float(reply.response_metadata.get("ttft_s", seconds))
            if i == 0:
                row["cold"].append(ttft)
            else:
                row["warm"].append(ttft)
                row["call_warm"].append(seconds)
                row["cached_warm"].append(float(usage.get("input_token_details", {}).get("cache_read", 0)))
        held = (
            model.prefix_cache.used_bytes if model.prefix_cache else llm.cache.cache_size if llm.cache else 0
        )
        row["cache_mb"].append(held / (1 << 20))
    finally:
        model.unload()
    return row, prompt_tokens
