"""Prefix reuse on real llama.cpp: saved KV states of stable prompt prefixes survive interleaved prompts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from tessera.config import LlamaCppModelConfig
from tessera.models.llama_cpp import LlamaCppChatModel
from tessera.tracing import Tracer

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

from tessera.models._prefix_cache import PrefixCache  # noqa: E402 - needs llama_cpp

CODER = "You are the coder. Write short, correct Python. Tools: run_python(code) runs code. " * 4
WRITER = "You are the writer. Answer in plain English, two sentences at most, no lists. " * 4
PLANNER = "You are the planner. Split the task into subtasks and return them as JSON only. " * 4


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~2.6M-parameter random model: big enough for real numerics, small enough to prefill quickly."""
    pytest.importorskip("gguf", reason="the gguf package writes the test models: pip install gguf")
    from tessera.testing.tiny import write_tiny_gguf

    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    return write_tiny_gguf(path, n_embd=256, n_layer=4, n_head=4, n_ff=512, seed=3)


def make(path: Path, **extra: Any) -> LlamaCppChatModel:
    """One thread: llama.cpp's threads spin-wait, and on a busy 2-core runner two of them crawl."""
    fields: dict[str, Any] = {"n_ctx": 2048, "n_threads": 1, "max_tokens": 8, "temperature": 0.0, **extra}
    model = LlamaCppChatModel(model_id="m", path=path, **fields)
    model.load()
    return model


def ask(model: LlamaCppChatModel, system: str, user: str, **kwargs: Any) -> AIMessage:
    reply = model.invoke([SystemMessage(content=system), HumanMessage(content=user)], **kwargs)
    assert isinstance(reply, AIMessage)
    return reply


def cached(reply: AIMessage) -> int:
    assert reply.usage_metadata is not None
    return int(reply.usage_metadata.get("input_token_details", {}).get("cache_read", -1))


def prompt_tokens(model: LlamaCppChatModel, system: str) -> int:
    return len(model.load().tokenize(system.encode(), add_bos=False, special=False))


def test_a_system_prompt_is_reused_after_another_prompt_ran_in_between(small_gguf: Path) -> None:
    model = make(small_gguf)
    system = prompt_tokens(model, CODER)
    first = ask(model, CODER, "reverse a list")
    ask(model, PLANNER, "build a website")
    again = ask(model, CODER, "sort a dict by value")
    assert cached(first) == 0
    assert system <= cached(again) < again.usage_metadata["input_tokens"]  # type: ignore[index]
    assert model.prefix_cache is not None and model.prefix_cache.counters.restores >= 1
    assert again.response_metadata["ttft_s"] > 0


def test_without_the_cache_the_interleaved_prompt_is_prefilled_again(small_gguf: Path) -> None:
    model = make(small_gguf, prefix_cache_mb=0)
    assert model.prefix_cache is None
    ask(model, CODER, "reverse a list")
    ask(model, PLANNER, "build a website")
    again = ask(model, CODER, "sort a dict by value")
    assert cached(again) < 32  # only the template's first tokens, shared with the planner's prompt


def sequence(model: LlamaCppChatModel, *, fresh: bool, **kwargs: Any) -> list[str]:
    """Interleaved calls of three specialists; ``fresh`` clears the context first (no reuse at all)."""
    calls = [
        (CODER, "reverse a list"),
        (WRITER, "what is a list"),
        (CODER, "sort a dict by value"),
        (PLANNER, "build a website"),
        (WRITER, "what is a dict"),
        (CODER, "sort a dict by key"),
    ]
    out = []
    for system, user in calls:
        if fresh:
            model.load().reset()
        reply = ask(model, system, user, **kwargs)
        out.append(str(reply.content))
        if fresh:
            assert cached(reply) == 0
    return out


@pytest.mark.parametrize("sampling", [{"temperature": 0.0}, {"temperature": 1.0, "seed": 11}])
def test_output_with_reuse_equals_output_without(small_gguf: Path, sampling: dict[str, Any]) -> None:
    reused = make(small_gguf)
    plain = make(small_gguf, prefix_cache_mb=0)
    with_reuse = sequence(reused, fresh=False, **sampling)
    assert reused.prefix_cache is not None and reused.prefix_cache.counters.restores >= 2
    assert with_reuse == sequence(plain, fresh=True, **sampling)
    assert len(set(with_reuse)) > 1  # the model does not just print one thing whatever it is asked


class Verdict(BaseModel):
    ok: bool
    reason: str


def test_structured_output_is_the_same_from_a_restored_prefix(small_gguf: Path) -> None:
    reused, plain = make(small_gguf), make(small_gguf, prefix_cache_mb=0)
    messages = [SystemMessage(content=PLANNER), HumanMessage(content="is this plan fine?")]
    answers = []
    for model, fresh in ((reused, False), (plain, True)):
        runs = []
        for system in (PLANNER, CODER, PLANNER):
            if fresh:
                model.load().reset()
            ask(model, system, "warm up")
            runs.append(model.with_structured_output(Verdict).invoke(messages, max_tokens=40))
        answers.append(runs)
    assert answers[0] == answers[1]
    assert reused.prefix_cache is not None and reused.prefix_cache.counters.restores >= 1


def test_each_of_several_interleaved_prompts_keeps_its_prefix(small_gguf: Path) -> None:
    model = make(small_gguf)
    systems = (CODER, WRITER, PLANNER)
    for system in systems:
        ask(model, system, "round one")
    second = [ask(model, system, "round two") for system in systems]
    for system, reply in zip(systems, second, strict=True):
        assert cached(reply) >= prompt_tokens(model, system)
    cache = model.prefix_cache
    assert cache is not None
    prefixes = [len(key) for key, tail in cache.keys() if not tail]
    assert len(prefixes) == 3  # one stable prefix per system prompt; their tails were folded into them


def test_the_memory_bound_evicts_the_least_recently_used_prefix(small_gguf: Path) -> None:
    model = make(small_gguf)
    llm = model.load()
    ask(model, CODER, "measure")
    probe = model.prefix_cache
    assert probe is not None and probe.used_bytes > 0
    one_state = probe.used_bytes
    cache = PrefixCache(int(one_state * 2.5))  # room for two prompts' states, not three
    llm.prefix_cache = cache
    for system in (CODER, WRITER, CODER, WRITER):
        ask(model, system, "fill")
    assert cache.counters.restores >= 2
    ask(model, PLANNER, "one more")
    ask(model, PLANNER, "and again")
    assert cache.used_bytes <= cache.capacity_bytes
    assert cache.counters.evictions >= 1
    assert cached(ask(model, WRITER, "still here?")) >= prompt_tokens(model, WRITER)  # used more recently
    assert cached(ask(model, CODER, "evicted?")) < 32


def test_a_state_larger_than_the_bound_is_not_kept(small_gguf: Path) -> None:
    model = make(small_gguf)
    llm = model.load()
    cache = PrefixCache(1024)
    llm.prefix_cache = cache
    first = ask(model, CODER, "a")
    ask(model, WRITER, "b")
    again = ask(model, CODER, "a")
    assert cache.used_bytes == 0 and cache.counters.skipped_too_big >= 1
    assert cached(again) < 32 and again.content == first.content


def test_sliding_window_models_get_no_prefix_cache(small_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp

    monkeypatch.setattr(llama_cpp, "llama_model_n_swa", lambda model: 4096)
    model = make(small_gguf)
    assert model.prefix_cache is None
    assert ask(model, CODER, "still answers").content


def test_a_context_that_cannot_be_cut_back_turns_the_cache_off_and_prefills_in_full(
    small_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp

    model, plain = make(small_gguf), make(small_gguf, prefix_cache_mb=0)
    expected = [str(ask(plain, s, "x").content) for s in (CODER, WRITER)]
    ask(model, CODER, "warm up")
    monkeypatch.setattr(llama_cpp, "llama_memory_seq_rm", lambda *args: False)
    assert [str(ask(model, s, "x").content) for s in (CODER, WRITER)] == expected
    cache = model.prefix_cache
    assert cache is not None and not cache.enabled and cache.used_bytes == 0


def test_prefix_cache_mb_is_on_by_default_and_cannot_be_negative() -> None:
    config = LlamaCppModelConfig(backend="llama_cpp", path=Path("m.gguf"))
    assert config.prefix_cache_mb > 0
    with pytest.raises(ValidationError, match="prefix_cache_mb"):
        LlamaCppModelConfig(backend="llama_cpp", path=Path("m.gguf"), prefix_cache_mb=-1)


def test_load_prefill_and_decode_spans_carry_the_reused_tokens(small_gguf: Path) -> None:
    tracer = Tracer()
    model = LlamaCppChatModel(
        model_id="m", path=small_gguf, n_ctx=2048, n_threads=1, max_tokens=6, temperature=0.0
    )
    messages = [SystemMessage(content=CODER), HumanMessage(content="again")]

    async def astream() -> None:
        async for _ in model.astream(messages):
            pass

    with tracer.scope("subtask", "s1"):
        first = ask(model, CODER, "first")
        ask(model, WRITER, "between")
        streamed = list(model.stream(messages))
        asyncio.run(astream())
    spans = [s for s in tracer.spans if s.kind != "subtask"]
    assert [s.kind for s in spans] == ["load"] + ["prefill", "decode"] * 4
    assert all(s.parent == "subtask:s1@0" and s.attrs["model"] == "m" for s in spans)
    prefills = [s for s in spans if s.kind == "prefill"]
    decodes = [s for s in spans if s.kind == "decode"]
    assert prefills[0].attrs["cached_tokens"] == 0
    assert prefills[0].attrs["prompt_tokens"] == first.usage_metadata["input_tokens"]  # type: ignore[index]
    assert prefills[2].attrs["cached_tokens"] >= prompt_tokens(model, CODER)  # the stream, after WRITER
    assert prefills[3].attrs["cached_tokens"] >= prompt_tokens(model, CODER)
    usage = [c.usage_metadata for c in streamed if c.usage_metadata]
    assert len(usage) == 1 and decodes[2].attrs["tokens"] == usage[0]["output_tokens"]
    for prefill, decode in zip(prefills, decodes, strict=True):
        assert prefill.start <= prefill.end == decode.start <= decode.end


def test_outside_a_traced_run_nothing_is_recorded_and_calls_still_work(small_gguf: Path) -> None:
    model = make(small_gguf)
    assert str(ask(model, CODER, "untraced").content) == str(ask(model, CODER, "untraced").content)
