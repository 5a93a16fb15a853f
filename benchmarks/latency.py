"""One 5-subtask task run sequentially, with DAG dispatch, and with streamed planning + preloading +
prefix reuse, in one run; then cold vs warm TTFT for a repeated 1,000-token system prompt.

Runs ``tessera bench latency`` (see ``tessera/bench/latency.py`` for the team and the plan) on a generated
26M-parameter llama GGUF, and writes the report. Run it on a quiet machine: two llama.cpp models share the
cores, so neighbours show up in the numbers.

    python benchmarks/latency.py [--prompt-tokens 400] [--out benchmarks/results/latency.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _stats import write_results

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-tokens", type=int, default=400)
    parser.add_argument("--plan-seconds", type=float, default=1.5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "latency.json")
    args = parser.parse_args()

    from tessera.bench.latency import MODES, run_latency_bench

    report = run_latency_bench(prompt_tokens=args.prompt_tokens, plan_seconds=args.plan_seconds)
    print(f"{'mode':<12} {'total s':>8} {'first subtask s':>16}")
    for mode in MODES:
        row = report["modes"][mode]
        print(f"{mode:<12} {row['total_s']:>8.2f} {row['time_to_first_subtask_s']:>16.2f}")
    print("speedup:", json.dumps(report["speedup"]))
    print(f"TTFT cold {report['ttft_cold_s']:.3f}s, warm {report['ttft_warm_s']:.3f}s")
    write_results(args.out, report)


if __name__ == "__main__":
    main()
