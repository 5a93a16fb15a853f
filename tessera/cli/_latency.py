"""``tessera bench latency``: sequential vs DAG dispatch vs streamed planning, and cold vs warm TTFT."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tessera.cli._common import echo, json_option

__all__ = ["bench_latency"]


@click.command("latency")
@click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="GGUF for the local specialists (default: a generated 26M-parameter model).",
)
@click.option("--prompt-tokens", type=click.IntRange(50, 4000), default=400, show_default=True)
@click.option("--plan-seconds", type=click.FloatRange(0, 30), default=1.5, show_default=True)
@click.option("--ttft-tokens", type=click.IntRange(100, 3000), default=1000, show_default=True)
@json_option
def bench_latency(
    model_path: Path | None, prompt_tokens: int, plan_seconds: float, ttft_tokens: int, as_json: bool
) -> None:
    """One 5-subtask task run sequentially, with DAG dispatch, and with streamed planning + preloading +
    prefix reuse; then TTFT for a repeated system prompt, cold and warm."""
    from tessera.bench.latency import MODES, run_latency_bench

    report = run_latency_bench(
        model_path, prompt_tokens=prompt_tokens, plan_seconds=plan_seconds, ttft_tokens=ttft_tokens
    )
    if as_json:
        echo(json.dumps(report, indent=2))
        return
    echo(f"{'mode':<12} {'total s':>8} {'first subtask s':>16} {'overhead s':>11}")
    for mode in MODES:
        row = report["modes"][mode]
        echo(
            f"{mode:<12} {row['total_s']:>8.2f} {row['time_to_first_subtask_s']:>16.2f}"
            f" {row['overhead_s']:>11.3f}"
        )
    speedup = report["speedup"]
    echo(
        f"speedup: dag {speedup['dag_vs_sequential']:.2f}x sequential,"
        f" streamed {speedup['streamed_vs_dag']:.2f}x dag"
    )
    echo(
        f"TTFT, {ttft_tokens}-token system prompt: cold {report['ttft_cold_s']:.3f}s,"
        f" warm {report['ttft_warm_s']:.3f}s ({speedup['ttft_cold_vs_warm']:.1f}x)"
    )
