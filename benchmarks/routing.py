"""Routing policies on the shipped synthetic workload: always-smallest, always-largest, static, calibrated.

Runs ``tessera bench routing`` (see ``tessera/bench/routing.py`` for the workload) and writes the report.
The target: the calibrated policy at >= 95% of always-largest quality for <= 40% of its cost.

    python benchmarks/routing.py [--tasks 300] [--seed 7] [--out benchmarks/results/routing.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _stats import write_results

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "routing.json")
    args = parser.parse_args()

    from tessera.bench.routing import run_routing_bench

    report = run_routing_bench(args.tasks, args.seed)
    print(f"{'policy':<16} {'quality':>8} {'cost':>8} {'quality/largest':>16} {'cost/largest':>13}")
    for name, row in report["policies"].items():
        print(
            f"{name:<16} {row['quality']:>8.3f} {row['cost']:>8.3f} {row['quality_vs_largest']:>16.1%}"
            f" {row['cost_vs_largest']:>13.1%}"
        )
    print(f"target met: {report['target_met']}  ({report['seconds']:.1f}s)")
    write_results(args.out, report)


if __name__ == "__main__":
    main()
