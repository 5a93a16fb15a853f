"""The team against a single model on the task suite: ``tessera bench tasks --baseline react``.

Runs the default team (or ``--team``) and LangGraph's prebuilt ReAct agent on the planner's model with the
same tools, task by task in one run (see ``tessera/bench/tasks.py`` and ``tessera/bench/_task_suite.py``),
and writes the report. Targets from the issue: team accuracy >= 80% and >= ReAct's, 100% of plans valid
at the first try, median planning <= 30% of the median run, team median run <= 0.6x ReAct's.

    python benchmarks/tasks.py [--team configs/default.yaml] [--out benchmarks/results/tasks.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _stats import write_results

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--team", type=Path, default=REPO / "configs" / "default.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "tasks.json")
    args = parser.parse_args()
    command = [sys.executable, "-m", "tessera.cli", "bench", "tasks", "--team", str(args.team)]
    command += ["--baseline", "react", "--json"]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)  # progress on stderr
    if done.returncode != 0:
        sys.exit(f"tasks: {' '.join(command)} exited {done.returncode}")
    report = json.loads(done.stdout)
    for name, row in report["systems"].items():
        print(f"{name}: {row['correct']}/{row['tasks']} correct, median run {row['median_run_s']}s, {row}")
    print("team vs react:", report.get("team_vs_react"))
    write_results(args.out, report)


if __name__ == "__main__":
    main()
