"""Generation throughput of ``tessera prompt --json`` against a bare ``llama_cpp.Llama``.

What it measures: tokens/s of generation only (no start-up, no model load) for one prompt to the
``stories`` model of ``configs/stories.yaml``, two ways in ONE process:

* ``tessera``: :func:`tessera.cli.prompt.run_prompt`, exactly what ``tessera prompt --json`` runs
  (langchain-core ``invoke`` -> ``LlamaCppChatModel`` -> ``Llama.create_chat_completion``);
* ``bare``: a ``llama_cpp.Llama`` built with the same n_ctx / n_threads / n_batch, calling
  ``create_chat_completion`` with the same messages, temperature, top_p, seed and max_tokens (the
  number of tokens Tessera generated), counting ``usage.completion_tokens``.

Both are warmed once, then alternated (ABBA order) for ``--repeats`` rounds so machine noise hits
both sides alike. ``--cli`` also runs the real command in a subprocess ``--repeats`` times.

How to read it: ``ratio`` = median tessera tokens/s / median bare tokens/s; the acceptance criterion
is ``ratio >= 0.9`` (``passes_0_9``). ``paired_ratio`` is the median of per-round ratios, a
noise-robust cross-check. p10/p90 show the spread. The script always exits 0 (it is a measurement),
or 2 if the model file is missing.

    python benchmarks/prompt_throughput.py [--model PATH] [--tokens N] [--repeats R] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _stats import quantile, write_results

ROOT = Path(__file__).resolve().parents[1]
TEAM_FILE = ROOT / "configs" / "stories.yaml"
DEFAULT_MODEL = Path(
    os.environ.get("TESSERA_STORIES_GGUF", ROOT.parent / "shared" / "models" / "stories260K.gguf")
)
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "prompt_throughput.json"
PROMPT = "Once upon a time"


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "p10": quantile(samples, 0.1),
        "p90": quantile(samples, 0.9),
    }


def run_cli(model: Path, tokens: int, seed: int, repeats: int) -> list[float]:
    """``tessera prompt --json`` as a real subprocess; its own tokens_per_s, start-up excluded."""
    env = {**os.environ, "TESSERA_STORIES_GGUF": str(model)}
    cmd = [
        sys.executable,
        "-m",
        "tessera.cli",
        "prompt",
        "--team",
        str(TEAM_FILE),
        "--model",
        "stories",
        "--json",
        "--max-tokens",
        str(tokens),
        "--seed",
        str(seed),
        PROMPT,
    ]
    rates: list[float] = []
    for _ in range(repeats):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
        rates.append(float(json.loads(done.stdout.strip().splitlines()[-1])["tokens_per_s"]))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="GGUF file")
    parser.add_argument("--tokens", type=int, default=128, help="max_tokens per call")
    parser.add_argument("--repeats", type=int, default=20, help="alternating rounds")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--cli", action="store_true", help="also time the real CLI (subprocess)")
    args = parser.parse_args(argv)
    model_path: Path = args.model.expanduser().resolve()
    if not model_path.is_file():
        print(f"model file not found: {model_path}", file=sys.stderr)
        return 2
    os.environ["TESSERA_STORIES_GGUF"] = str(model_path)

    import llama_cpp
    from llama_cpp import Llama

    from tessera._system import physical_cores
    from tessera.cli.prompt import run_prompt
    from tessera.config import load_team
    from tessera.models.llama_cpp import LlamaCppChatModel
    from tessera.models.pool import ModelPool

    team = load_team(TEAM_FILE)
    pool = ModelPool.from_team(team)
    chat = pool.load("stories")
    assert isinstance(chat, LlamaCppChatModel)
    n_ctx = chat.effective_n_ctx()
    threads = chat.n_threads or physical_cores()
    settings: dict[str, Any] = {
        "prompt": PROMPT,
        "max_tokens": args.tokens,
        "seed": args.seed,
        "n_ctx": n_ctx,
        "n_threads": threads,
        "n_batch": min(chat.n_batch, n_ctx),
        "temperature": chat.temperature,
        "top_p": chat.top_p,
        "tessera_prefix_cache_mb": chat.prefix_cache_mb,
        "repeats": args.repeats,
    }
    bare = Llama(
        model_path=str(model_path),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=settings["n_batch"],
        verbose=False,
    )
    messages = [{"role": "user", "content": PROMPT}]

    def tessera_side() -> tuple[int, float]:
        res = run_prompt(team, "stories", PROMPT, pool=pool, max_tokens=args.tokens, seed=args.seed)
        return res.tokens, res.tokens_per_s or 0.0

    def bare_side(max_tokens: int) -> tuple[int, float]:
        started = time.perf_counter()
        out = bare.create_chat_completion(
            messages=messages,
            max_tokens=max_tokens,
            temperature=chat.temperature,
            top_p=chat.top_p,
            seed=args.seed,
        )
        seconds = time.perf_counter() - started
        count = int(out["usage"]["completion_tokens"])
        return count, count / seconds

    generated, _ = tessera_side()  # warm-up, and the token count the bare side must match
    if generated == 0:
        print("tessera generated no text", file=sys.stderr)
        return 1
    bare_side(generated)
    samples: dict[str, list[float]] = {"tessera": [], "bare": []}
    counts: dict[str, list[int]] = {"tessera": [], "bare": []}
    for i in range(args.repeats):
        order = ("tessera", "bare") if i % 2 == 0 else ("bare", "tessera")
        for side in order:
            n, rate = tessera_side() if side == "tessera" else bare_side(generated)
            samples[side].append(rate)
            counts[side].append(n)
    stats = {side: summary(values) for side, values in samples.items()}
    ratio = stats["tessera"]["median"] / stats["bare"]["median"]
    paired = statistics.median(t / b for t, b in zip(samples["tessera"], samples["bare"], strict=True))
    result: dict[str, Any] = {
        "model": str(model_path),
        "team_file": str(TEAM_FILE),
        "settings": settings,
        "tokens_generated": generated,
        "samples_tokens_per_s": samples,
        "token_counts": counts,
        "stats": stats,
        "ratio": ratio,
        "paired_ratio": paired,
        "passes_0_9": ratio >= 0.9,
        "python": platform.python_version(),
        "llama_cpp": llama_cpp.__version__,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    pool.close()
    bare.close()
    if args.cli:
        cli = run_cli(model_path, args.tokens, args.seed, args.repeats)
        result["samples_tokens_per_s"]["cli"] = cli
        result["stats"]["cli"] = summary(cli)
        result["cli_ratio"] = result["stats"]["cli"]["median"] / stats["bare"]["median"]

    print(
        f"{model_path.name}: {generated} tokens/call, {args.repeats} rounds, {threads} threads, n_ctx {n_ctx}"
    )
    print(f"{'side':<8} {'median':>10} {'p10':>10} {'p90':>10}  tokens/s")
    for side, row in result["stats"].items():
        print(f"{side:<8} {row['median']:>10,.0f} {row['p10']:>10,.0f} {row['p90']:>10,.0f}")
    verdict = "PASS" if result["passes_0_9"] else "FAIL"
    print(f"ratio tessera/bare {ratio:.3f} (paired {paired:.3f}) -> {verdict} at 0.9")
    if "cli_ratio" in result:
        print(f"ratio cli/bare {result['cli_ratio']:.3f} (different process: indicative only)")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
