"""HumanEval pass@1 of a team's coder on real models, beside the published score of the same model.

Runs ``tessera bench humaneval --team TEAM --json`` (temperature and ``max_tokens`` as the team file sets
them; the default team: Qwen2.5-Coder-1.5B-Instruct Q4_K_M at temperature 0, ``max_tokens`` 768) and
writes the report with the failures grouped by kind (assertion, syntax, runtime, timeout, solver).
The published reference is the Qwen2.5-Coder technical report's HumanEval pass@1 for the instruct model
(1.5B: 70.7, 0.5B: 61.6), measured on unquantized weights.

    python benchmarks/humaneval.py [--team configs/default.yaml] [--limit N] [-j 1]
        [--published 70.7] [--out benchmarks/results/humaneval.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from _stats import write_results

REPO = Path(__file__).resolve().parent.parent


def failure_kind(reason: str | None) -> str:
    """A coarse bucket for one failure reason."""
    text = reason or ""
    if text.startswith("solver"):
        return "solver"
    for kind, needles in (
        ("syntax", ("SyntaxError", "IndentationError")),
        ("timeout", ("timed out", "timeout", "wall limit")),
        ("assertion", ("AssertionError", "assert")),
    ):
        if any(needle in text for needle in needles):
            return kind
    return "runtime"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--team", type=Path, default=REPO / "configs" / "default.yaml")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("-j", "--jobs", type=int, default=1)
    parser.add_argument("--published", type=float, default=70.7)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "humaneval.json")
    args = parser.parse_args()

    command = [sys.executable, "-m", "tessera.cli", "bench", "humaneval", "--team", str(args.team)]
    command += ["--json", "-j", str(args.jobs)] + (["--limit", str(args.limit)] if args.limit else [])
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"humaneval: {' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    report = json.loads(done.stdout)
    kinds = Counter(failure_kind(f["reason"]) for f in report["failures"])
    score = 100 * report["pass_at_1"]
    result = {
        "team": str(args.team.relative_to(REPO) if args.team.is_relative_to(REPO) else args.team),
        "command": " ".join(command[2:]),
        "pass_at_1_percent": round(score, 1),
        "published_pass_at_1_percent": args.published,
        "gap_points": round(args.published - score, 1),
        "failure_kinds": dict(kinds),
        "wall_s": round(time.monotonic() - started, 1),
        "report": report,
    }
    print(
        f"humaneval {report['mode']}: {report['passed']}/{report['total']} = {score:.1f}% "
        f"(published {args.published}; gap {result['gap_points']:+.1f} points) in {result['wall_s']:.0f}s; "
        f"failures: {dict(kinds)}"
    )
    write_results(args.out, result)


if __name__ == "__main__":
    main()
