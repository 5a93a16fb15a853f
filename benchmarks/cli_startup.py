"""How long `tessera --help` and `tessera --version` take, against bare Python start-up in the same run.

The target is well under 0.5 s of wall time. The command is timed as a user runs it (the installed
console script, found on PATH) and as `python -m tessera.cli`; `python -c pass` is the baseline. It also
checks with `-X importtime` that no heavy library (torch, chromadb, llama_cpp) is imported.

    python benchmarks/cli_startup.py [--repeats 15] [--out benchmarks/results/cli_startup.json]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _stats import write_results

HEAVY = ("torch", "chromadb", "llama_cpp", "sentence_transformers", "langchain_core", "langgraph")


def wall(cmd: list[str], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return samples


def heavy_imports(flag: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tessera.cli", flag], capture_output=True, text=True
    )
    names = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    return sorted(n for n in names if n.split(".")[0] in HEAVY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cli_startup.json")
    args = parser.parse_args()

    script = shutil.which("tessera")
    cases: dict[str, list[str]] = {"python -c pass (baseline)": [sys.executable, "-c", "pass"]}
    for flag in ("--help", "--version"):
        cases[f"python -m tessera.cli {flag}"] = [sys.executable, "-m", "tessera.cli", flag]
        if script:
            cases[f"tessera {flag}"] = [script, flag]
    for cmd in cases.values():  # warm the file cache
        subprocess.run(cmd, capture_output=True)

    results = {}
    for name, cmd in cases.items():
        samples = wall(cmd, args.repeats)
        results[name] = {"median_s": statistics.median(samples), "max_s": max(samples), "samples": samples}
    baseline = results["python -c pass (baseline)"]["median_s"]
    print(f"{'command':<36} {'median':>8} {'max':>8} {'x baseline':>10}")
    for name, r in results.items():
        r["ratio_to_baseline"] = r["median_s"] / baseline
        print(f"{name:<36} {r['median_s']:>7.3f}s {r['max_s']:>7.3f}s {r['ratio_to_baseline']:>10.2f}")
    heavy = {flag: heavy_imports(flag) for flag in ("--help", "--version")}
    worst = max(r["median_s"] for n, r in results.items() if "tessera" in n)
    print(
        f"heavy imports: {heavy}; slowest median {worst:.3f}s -> {'PASS' if worst < 0.5 else 'FAIL'} at 0.5s"
    )
    payload = {"results": results, "heavy_imports": heavy, "passes_0_5s": worst < 0.5, "script": script}
    write_results(args.out, payload)


if __name__ == "__main__":
    main()
