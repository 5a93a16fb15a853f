"""Time to first token, cold vs warm, for a repeated ~1,000-token system prompt (prefix reuse).

What it measures: :func:`tessera.bench._ttft.measure_ttft` on a real llama.cpp model: by default the
26M-parameter random-weight bench model (:func:`tessera.testing.tiny.write_bench_gguf`, written to a temp
dir in about a second). Each repetition loads the model, makes one cold call (the first after the load,
load time excluded) and ``--warm-calls`` warm calls with the same system prompt and a different short
task, each after an unrelated prompt ran on the same model. Three setups alternate in one process:

* ``prefix_cache``: Tessera's default prefix cache;
* ``no_cache``: ``prefix_cache_mb: 0``: llama-cpp-python's own reuse of the previous prompt only;
* ``llama_ram_cache``: llama-cpp-python's ``LlamaRAMCache`` (what ``prefix_cache_mb`` used to turn on).

How to read it: ``ratio`` = median cold TTFT / median warm TTFT with the prefix cache; the target is
``ratio >= 3`` (``passes_3x``). ``warm_call_s`` is the whole warm call, which also shows the cost of
saving states after the call (``LlamaRAMCache`` saves the whole context, logits buffer included, after
every call). Runs on one thread by default (``--threads``): a shared machine's neighbours would
otherwise dominate. The script exits 0 (it is a measurement), or 2 if ``--model`` is missing.

    python benchmarks/ttft.py [--model PATH] [--repeats R] [--warm-calls N] [--threads T] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
from pathlib import Path
from typing import Any

from _stats import quantile, write_results

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "ttft.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the bench model)")
    parser.add_argument("--repeats", type=int, default=5, help="model loads per setup")
    parser.add_argument("--warm-calls", type=int, default=3, help="warm calls per load")
    parser.add_argument("--system-tokens", type=int, default=1000, help="system prompt length")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    if args.model is not None and not args.model.is_file():
        print(f"model file not found: {args.model}", file=sys.stderr)
        return 2

    import llama_cpp

    from tessera.bench._ttft import measure_ttft

    result: dict[str, Any] = measure_ttft(
        args.model,
        repeats=args.repeats,
        warm_calls=args.warm_calls,
        system_tokens=args.system_tokens,
        n_threads=args.threads,
    )
    for setup, samples in result["samples"].items():
        row = result["setups"][setup]
        for phase in ("cold", "warm"):
            row[f"ttft_{phase}_p10_s"] = quantile(samples[phase], 0.1)
            row[f"ttft_{phase}_p90_s"] = quantile(samples[phase], 0.9)
    result["passes_3x"] = result["ratio"] >= 3
    result["python"] = platform.python_version()
    result["llama_cpp"] = llama_cpp.__version__
    result["timestamp"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    settings = result["settings"]
    print(
        f"{settings['model']}: {settings['prompt_tokens']}-token prompts, {settings['repeats']} loads x "
        f"{settings['warm_calls']} warm calls, {settings['n_threads']} thread(s)"
    )
    header = ("setup", "cold TTFT", "warm TTFT", "cold/warm", "reused", "warm call", "cache MB")
    print("{:<16} {:>10} {:>10} {:>10} {:>7} {:>10} {:>9}".format(*header))
    for setup, row in result["setups"].items():
        print(
            f"{setup:<16} {row['ttft_cold_s']:>9.3f}s {row['ttft_warm_s']:>9.3f}s {row['ratio']:>9.1f}x "
            f"{row['warm_cached_tokens']:>7.0f} {row['warm_call_s']:>9.3f}s {row['cache_mb']:>9.1f}"
        )
    verdict = "PASS" if result["passes_3x"] else "FAIL"
    print(f"warm prefix TTFT {result['ratio']:.1f}x faster than cold -> {verdict} at 3x")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
