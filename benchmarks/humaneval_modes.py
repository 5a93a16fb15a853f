"""HumanEval: the routed team against one model, on the same problems, in one run.

Runs ``tessera bench humaneval --team TEAM --json -j 1`` once per configuration, each in a fresh process
(no prefix cache carried from one to the next; weights load before the timed calls), the 1.5B alone
between the runs it is compared with, since other work on the machine changes its speed over time:

- ``small``: the 0.5B alone (``--model small``)
- ``coder``: the 1.5B alone (``--model coder``)
- ``coder_repair``: the 1.5B repairing from the docstring's examples (``--model coder --repair N``)
- ``routed``: the 0.5B first, the 1.5B with repair when its code fails the examples (``--routed --repair N``)
- ``coder_full_reply``: the 1.5B alone generating whole replies (``--full-reply``), to measure stopping at
  the end of the first code block (skip with ``--no-full-reply``)

and writes pass@1, seconds in model calls (``generation_s``, per model too), the characters the replies
had (a measure of what was generated that the machine's load does not change), wall seconds, escalations
and repairs, the ratios against the 1.5B alone, the issue's goals, and the Qwen2.5-Coder report's
published pass@1 for reference (all 164 problems, unquantized weights; a slice is not comparable to it).

    python benchmarks/humaneval_modes.py [--limit 40 | --all] [--repair 2] [--team configs/default.yaml]
        [--no-full-reply] [--out benchmarks/results/humaneval_modes.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _stats import write_results

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = {"small": 61.6, "coder": 70.7}
"""HumanEval pass@1 (%) of Qwen2.5-Coder-0.5B/1.5B-Instruct in the Qwen2.5-Coder technical report."""


def configurations(repair: int, full_reply: bool) -> dict[str, list[str]]:
    """Each configuration's options for ``tessera bench humaneval``."""
    runs = {
        "small": ["--model", "small"],
        "routed": ["--routed", "--small", "small", "--large", "coder", "--repair", str(repair)],
        "coder": ["--model", "coder"],
        "coder_full_reply": ["--model", "coder", "--full-reply"],
        "coder_repair": ["--model", "coder", "--repair", str(repair)],
    }
    if not full_reply:
        del runs["coder_full_reply"]
    return runs


def run(team: Path, limit: int | None, options: list[str]) -> dict[str, Any]:
    """One configuration's report, with its wall time (model loading included) and the load around it."""
    command = [sys.executable, "-m", "tessera.cli", "bench", "humaneval", "--team", str(team), "--json"]
    command += ["-j", "1", *options] + (["--limit", str(limit)] if limit else [])
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(
            f"humaneval_modes: {' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    report: dict[str, Any] = json.loads(done.stdout)
    report["command"] = " ".join(command[2:])
    report["process_wall_s"] = round(time.monotonic() - started, 1)
    report["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return report


def row(name: str, report: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one configuration."""
    out = {
        "mode": report["mode"],
        "passed": report["passed"],
        "total": report["total"],
        "pass_at_1_percent": round(100 * report["pass_at_1"], 1),
        "generation_s": report["generation_s"],
        "generation_s_by_model": report["generation_s_by_model"],
        "model_calls": report["model_calls"],
        "reply_chars_by_model": report["reply_chars_by_model"],
        "wall_s": report["seconds"],
        "escalated": report["escalated"],
        "repaired": report["repaired"],
        "repairs": report["repairs"],
        "failed": [f["task_id"] for f in report["failures"]],
    }
    if name in PUBLISHED:
        out["published_pass_at_1_percent"] = PUBLISHED[name]
    return out


def compare(rows: dict[str, dict[str, Any]], reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ratios against the 1.5B alone, the issue's goals, and what stopping at the code fence changed."""
    coder, routed, repair = rows["coder"], rows["routed"], rows["coder_repair"]
    ratios = {
        "routed_pass_at_1_vs_coder": _ratio(routed["passed"], coder["passed"]),
        "routed_generation_vs_coder": _ratio(routed["generation_s"], coder["generation_s"]),
        "small_generation_vs_coder": _ratio(rows["small"]["generation_s"], coder["generation_s"]),
        "coder_repair_generation_vs_coder": _ratio(repair["generation_s"], coder["generation_s"]),
    }
    goals = {
        "routed_pass_at_1_at_least_coder": routed["passed"] >= coder["passed"],
        "routed_generation_at_most_0.6x_coder": ratios["routed_generation_vs_coder"] <= 0.6,
        "coder_repair_pass_at_1_at_least_80": repair["pass_at_1_percent"] >= 80,
    }
    out: dict[str, Any] = {"ratios": ratios, "goals": goals}
    if "coder_full_reply" in rows:
        full = rows["coder_full_reply"]
        same = {p["task_id"]: p["passed"] for p in reports["coder"]["problems"]} == {
            p["task_id"]: p["passed"] for p in reports["coder_full_reply"]["problems"]
        }
        chars = (full["reply_chars_by_model"]["coder"], coder["reply_chars_by_model"]["coder"])
        out["stop_at_fence"] = {
            "coder_generation_s_full_reply": full["generation_s"],
            "coder_generation_s_stop_at_fence": coder["generation_s"],
            "full_reply_vs_stop_at_fence": _ratio(full["generation_s"], coder["generation_s"]),
            "coder_reply_chars_full_reply": chars[0],
            "coder_reply_chars_stop_at_fence": chars[1],
            "reply_chars_full_vs_stop_at_fence": _ratio(*chars),
            "same_problems_passed": same,
        }
    return out


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--team", type=Path, default=REPO / "configs" / "default.yaml")
    parser.add_argument("--limit", type=int, default=40, help="The first N problems (default 40: 0-39).")
    parser.add_argument("--all", action="store_true", help="All 164 problems.")
    parser.add_argument(
        "--repair", type=int, default=2, help="Repair requests at most (coder_repair, routed)."
    )
    parser.add_argument("--no-full-reply", action="store_true", help="Skip the whole-reply 1.5B run.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "humaneval_modes.json")
    args = parser.parse_args()

    limit = None if args.all else args.limit
    started = time.monotonic()
    reports: dict[str, dict[str, Any]] = {}
    for name, options in configurations(args.repair, not args.no_full_reply).items():
        reports[name] = run(args.team, limit, options)
        report = reports[name]
        print(
            f"{name:<17} {report['passed']}/{report['total']} passed, gen {report['generation_s']:.0f}s "
            f"({report['generation_s_by_model']}), wall {report['seconds']:.0f}s, escalated "
            f"{report['escalated']}, repaired {report['repaired']}",
            flush=True,
        )
    rows = {name: row(name, report) for name, report in reports.items()}
    team = args.team.relative_to(REPO) if args.team.is_relative_to(REPO) else args.team
    result = {
        "team": str(team),
        "command": "python benchmarks/humaneval_modes.py"
        + (" --all" if args.all else f" --limit {args.limit}"),
        "problems": f"HumanEval/0-{(limit or 164) - 1}",
        "repair": args.repair,
        "note": "generation_s: seconds in model calls (one problem at a time, weights loaded before); "
        "published pass@1 is over all 164 problems on unquantized weights.",
        "configurations": rows,
        **compare(rows, reports),
        "wall_s": round(time.monotonic() - started, 1),
        "reports": reports,
    }
    print(json.dumps({"ratios": result["ratios"], "goals": result["goals"]}, indent=2))
    write_results(args.out, result)


if __name__ == "__main__":
    main()
