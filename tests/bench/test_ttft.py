"""The TTFT measurement on real llama.cpp (numbers are not judged here: benchmarks/ttft.py does that)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.bench._ttft import measure_ttft
from tessera.errors import UserError

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")


def test_warm_calls_reuse_the_system_prompt_and_the_baseline_does_not(tiny_gguf: Path) -> None:
    result = measure_ttft(
        tiny_gguf, repeats=1, warm_calls=2, system_tokens=200, setups=("prefix_cache", "no_cache")
    )
    cache, plain = result["setups"]["prefix_cache"], result["setups"]["no_cache"]
    assert cache["warm_cached_tokens"] >= 200 > plain["warm_cached_tokens"]
    assert result["ttft_cold_s"] == cache["ttft_cold_s"] > 0 and result["ttft_warm_s"] > 0
    assert result["ratio"] == pytest.approx(cache["ttft_cold_s"] / cache["ttft_warm_s"])
    assert [len(result["samples"]["prefix_cache"][k]) for k in ("cold", "warm")] == [1, 2]
    assert result["settings"]["prompt_tokens"] > 200


def test_bad_arguments_are_one_line_user_errors(tiny_gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="setups: unknown"):
        measure_ttft(tiny_gguf, setups=("fast",))
    with pytest.raises(UserError, match="model file not found"):
        measure_ttft(tmp_path / "absent.gguf")
    with pytest.raises(UserError, match="repeats"):
        measure_ttft(tiny_gguf, repeats=0)
