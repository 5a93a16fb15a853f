"""Handoff overhead per subtask: an in-process model vs ``tessera serve`` over loopback HTTP vs a Ray actor.

Every model is a zero-latency ``function`` model, so what is measured is the handoff alone. Three arms, in
ONE process and ONE event loop, rotated every round after a warm-up:

* ``in_process``: the worker is a function model in this process (``distributed.engine: local``);
* ``http``: the worker is a ``backend: openai`` model whose ``base_url`` is ``tessera serve --model worker``
  (a subprocess on 127.0.0.1) serving the same function;
* ``ray``: ``distributed.engine: ray``; the worker lives in a Ray actor on a private local Ray.

Two measurements per arm:

* ``call``: one ``await model.ainvoke(...)`` on the worker model, back to back (``--calls`` per round);
* ``subtask``: ``Team.arun`` of a plan of ``--subtasks`` independent subtasks; each subtask's
  ``ended - started`` from the RunResult, and the run's wall time divided by the number of subtasks.

``ratio`` is an arm's median over the in-process median. A failover arm (``--failover``, default on) runs
a worker with two ``endpoints`` replicas (each call sleeps 50 ms), SIGKILLs one replica mid-run, and
reports the run's wall time and its slowest subtask against the same run with both replicas alive.
The script always exits 0; an arm that cannot run (Ray not installed, ``tessera serve`` missing) is
recorded as missing with the reason.

    python benchmarks/handoff_overhead.py [--rounds 10] [--calls 50] [--subtasks 16] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["TESSERA_QUIET"] = "1"
ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # measure this checkout's tessera, installed or not
    sys.path.insert(0, str(ROOT))

from _stats import quantile, write_results  # noqa: E402 - beside this script

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "handoff_overhead.json"
ARMS = ("in_process", "http", "ray")
TASK = "Do the parts."
FAILOVER_SLEEP_S = 0.05


# -- the models (imported by name by `tessera serve`, pickled by value into Ray actors) ------------------


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """Zero-latency planner: N independent subtasks (N from $HANDOFF_SUBTASKS), done, a fixed answer."""
    if schema is not None and "subtasks" in schema.get("properties", {}):
        count = int(os.environ.get("HANDOFF_SUBTASKS", "16"))
        subtasks = [
            {"id": f"s{i}", "specialist": "worker", "instruction": f"part {i}", "depends_on": []}
            for i in range(count)
        ]
        return json.dumps({"subtasks": subtasks})
    if schema is not None:
        return '{"done": true, "reason": ""}'
    return "final answer"


def worker(messages: list[dict[str, Any]], **_: Any) -> str:
    """Zero-latency specialist."""
    return "ok"


def slow_worker(messages: list[dict[str, Any]], **_: Any) -> str:
    """A specialist that takes 50 ms, so that a run is long enough to lose a replica in the middle."""
    time.sleep(FAILOVER_SLEEP_S)
    return "ok"


# -- servers --------------------------------------------------------------------------------------------


class Server:
    """``tessera serve --model NAME`` in a subprocess on a free loopback port."""

    def __init__(self, team_file: Path, model: str, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
        self.log = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tessera.cli", "serve", "--team", str(team_file), "--model", model,
                 "--port", "0", "--max-concurrency", "64"],
                stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env,
            )  # fmt: skip
        self.url = self._wait_for_url()

    def _wait_for_url(self, deadline_s: float = 60.0) -> str:
        assert self.proc.stdout is not None
        started = time.monotonic()
        while time.monotonic() - started < deadline_s:
            line = self.proc.stdout.readline().decode()
            match = re.search(r"on (http://\S+/v1)", line)
            if match:
                return match[1]
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"tessera serve did not start: {self.log.read_text()[-500:]}")

    def kill(self) -> None:
        """SIGKILL: connections in flight are cut."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def team_config(workdir: Path, name: str, worker: dict[str, Any], subtasks: int, **extra: Any) -> Any:
    from tessera import TeamConfig

    return TeamConfig.from_dict(
        {
            "name": name,
            "state_dir": str(workdir / f"{name}-state"),
            "models": {
                "planner": {"backend": "function", "callable": "__main__:planner"},
                "worker": worker,
            },
            "planner": {"model": "planner", "max_subtasks": max(subtasks, 8)},
            "specialists": {"worker": {"description": "does anything", "model": "worker", "max_attempts": 3}},
            "memory": {"long_term": False},
            "runtime": {"max_concurrency": 4},
            **extra,
        }
    )


def served_team_file(directory: Path, callable_name: str) -> Path:
    """The team file a server loads: only the worker model matters."""
    import yaml

    fn = {"backend": "function", "callable": f"handoff_overhead:{callable_name}"}
    data = {
        "name": "served",
        "state_dir": str(directory / "served-state"),
        "models": {"worker": fn},
        "planner": {"model": "worker"},
        "specialists": {"worker": {"description": "does anything", "model": "worker"}},
        "memory": {"long_term": False},
    }
    path = directory / f"served-{callable_name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# -- measuring ------------------------------------------------------------------------------------------


async def time_calls(model: Any, calls: int) -> list[float]:
    """Seconds of each of ``calls`` back-to-back ``ainvoke`` calls."""
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        await model.ainvoke("ping")
        out.append(time.perf_counter() - started)
    return out


async def time_run(team: Any, subtasks: int) -> dict[str, Any]:
    """One team run: wall seconds, and each subtask's ``ended - started``."""
    started = time.perf_counter()
    result = await team.arun(TASK)
    wall = time.perf_counter() - started
    done = [s for s in result.subtasks if s.status == "done"]
    if result.status != "done" or len(done) != subtasks:
        raise RuntimeError(f"a run did not finish its {subtasks} subtasks: {result.notes}")
    return {"wall_s": wall, "subtask_s": [duration(s) for s in result.subtasks]}


def duration(subtask: Any) -> float:
    """A subtask's ``ended - started`` (seconds)."""
    return float((subtask.ended or 0.0) - (subtask.started or 0.0))


def build_arms(workdir: Path, subtasks: int) -> tuple[dict[str, Any], dict[str, str], list[Server]]:
    """The teams of the arms that can run here, the reasons of those that cannot, the servers started."""
    import importlib.util

    from tessera import Team

    fn = {"backend": "function", "callable": "__main__:worker"}
    teams = {"in_process": Team(team_config(workdir, "in-process", fn, subtasks))}
    missing: dict[str, str] = {}
    servers: list[Server] = []
    if importlib.util.find_spec("tessera.serve") is None:
        missing["http"] = "tessera serve is not in this checkout"
    else:
        server = Server(served_team_file(workdir, "worker"), "worker", workdir / "serve-worker.log")
        servers.append(server)
        remote = {
            "backend": "openai",
            "base_url": server.url,
            "model": "worker",
            "timeout_s": 10,
            "max_retries": 0,
        }
        teams["http"] = Team(team_config(workdir, "http", remote, subtasks))
    if importlib.util.find_spec("ray") is None:
        missing["ray"] = 'Ray is not installed (pip install "tessera[distributed]")'
    else:
        ray_section = {"engine": "ray", "num_cpus": os.cpu_count() or 2}
        teams["ray"] = Team(team_config(workdir, "ray", fn, subtasks, distributed=ray_section))
    return teams, missing, servers


async def measure(teams: dict[str, Any], rounds: int, calls: int, subtasks: int) -> dict[str, Any]:
    samples: dict[str, Any] = {arm: {"call_s": [], "wall_s": [], "subtask_s": []} for arm in teams}
    arms = list(teams)
    for arm in arms:  # warm-up: Ray starts, actors spawn, connections open
        await time_calls(teams[arm].pool.get("worker"), 5)
        await time_run(teams[arm], subtasks)
    for i in range(rounds):
        for arm in arms[i % len(arms) :] + arms[: i % len(arms)]:
            team = teams[arm]
            samples[arm]["call_s"] += await time_calls(team.pool.get("worker"), calls)
            run = await time_run(team, subtasks)
            samples[arm]["wall_s"].append(run["wall_s"])
            samples[arm]["subtask_s"] += run["subtask_s"]
    return samples


async def failover(workdir: Path, subtasks: int, repeats: int) -> dict[str, Any]:
    """Two replicas of a 50 ms worker; SIGKILL one a third of the way into the run."""
    from tessera import Team
    from tessera.config import OpenAIModelConfig

    if "endpoints" not in OpenAIModelConfig.model_fields:
        return {"missing": "replicated endpoints (models.<name>.endpoints) are not in this checkout"}
    team_file = served_team_file(workdir, "slow_worker")
    runs: list[dict[str, Any]] = []
    for i in range(repeats):
        replicas = [Server(team_file, "worker", workdir / f"serve-slow-{i}-{k}.log") for k in range(2)]
        try:
            model = {
                "backend": "openai",
                "endpoints": [r.url for r in replicas],
                "model": "worker",
                "timeout_s": 5,
                "max_retries": 0,
            }
            team = Team(team_config(workdir, f"failover-{i}", model, subtasks))
            await time_run(team, subtasks)  # warm-up: connections to both replicas
            baseline = await time_run(team, subtasks)
            run = asyncio.ensure_future(team.arun(TASK))
            started = time.time()
            await asyncio.sleep(baseline["wall_s"] / 3)
            killed_at = time.time()
            replicas[0].kill()
            result = await run
            wall = time.time() - started
            team.close()
        finally:
            for replica in replicas:
                replica.stop()
        in_flight = [s for s in result.subtasks if (s.started or 0) <= killed_at <= (s.ended or killed_at)]
        runs.append(
            {
                "status": result.status,
                "subtasks_done": sum(s.status == "done" for s in result.subtasks),
                "subtasks": len(result.subtasks),
                "baseline_wall_s": baseline["wall_s"],
                "wall_s": wall,
                "added_wall_s": wall - baseline["wall_s"],
                "baseline_slowest_subtask_s": max(baseline["subtask_s"]),
                "slowest_subtask_s": max(duration(s) for s in result.subtasks),
                "in_flight_at_kill": len(in_flight),
                "failover_s": max(((s.ended or killed_at) - killed_at for s in in_flight), default=0.0),
                "attempts": sum(s.attempts for s in result.subtasks),
                "endpoints": sorted({str(getattr(s, "endpoint", None)) for s in result.subtasks}),
            }
        )
    return {
        "replica_latency_s": FAILOVER_SLEEP_S,
        "runs": runs,
        "median_failover_s": statistics.median(r["failover_s"] for r in runs),
        "median_added_wall_s": statistics.median(r["added_wall_s"] for r in runs),
        "all_runs_done": all(r["status"] == "done" and r["subtasks_done"] == r["subtasks"] for r in runs),
    }


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {"p50": statistics.median(ms), "p90": quantile(ms, 0.9), "n": len(ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rotations over the arms")
    parser.add_argument("--calls", type=int, default=50, help="back-to-back model calls per arm and round")
    parser.add_argument("--subtasks", type=int, default=16, help="independent subtasks per run")
    parser.add_argument("--failover-repeats", type=int, default=3, help="runs that lose a replica (0: none)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    os.environ["HANDOFF_SUBTASKS"] = str(args.subtasks)  # the planner reads it, in actors too

    from orchestration_overhead import checkout  # beside this script

    load = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="tessera-handoff-") as tmp:
        workdir = Path(tmp)
        teams, missing, servers = build_arms(workdir, args.subtasks)

        async def everything() -> tuple[dict[str, Any], dict[str, Any]]:
            samples = await measure(teams, args.rounds, args.calls, args.subtasks)
            if args.failover_repeats:
                fail = await failover(workdir, args.subtasks, args.failover_repeats)
            else:
                fail = {"missing": "not run (--failover-repeats 0)"}
            return samples, fail

        try:
            samples, fail = asyncio.run(everything())
        finally:
            for team in teams.values():
                team.close()
            for server in servers:
                server.stop()

    stats: dict[str, Any] = {}
    for arm, data in samples.items():
        stats[arm] = {
            "call_ms": summary_ms(data["call_s"]),
            "subtask_ms": summary_ms(data["subtask_s"]),
            "wall_ms_per_subtask": summary_ms([w / args.subtasks for w in data["wall_s"]]),
        }
    base = stats["in_process"]
    for arm in stats:
        stats[arm]["ratio_to_in_process"] = {
            k: stats[arm][k]["p50"] / base[k]["p50"] for k in base if k != "ratio_to_in_process"
        }
    result: dict[str, Any] = {
        "parameters": {
            "rounds": args.rounds,
            "calls_per_round": args.calls,
            "subtasks": args.subtasks,
            "max_concurrency": 4,
            "models": "function, zero latency (worker returns 'ok')",
        },
        "definitions": {
            "call": "one await model.ainvoke('ping') on the worker model, back to back",
            "subtask": "ended - started of each subtask in a Team.arun of independent subtasks",
            "wall_per_subtask": "Team.arun wall time / subtasks (max_concurrency 4)",
            "ratio_to_in_process": "an arm's p50 / the in-process p50",
            "failover_s": "from the SIGKILL of one replica to the end of the last subtask that was in flight",
        },
        "arms": {arm: ("measured" if arm in stats else f"missing: {missing[arm]}") for arm in ARMS},
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "ray": importlib.metadata.version("ray") if "ray" in sys.modules else None,
            "tessera": __import__("tessera").__version__,
        },
        "checkout": checkout(),
        "stats": stats,
        "failover": fail,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    report(result)
    write_results(args.out, result)
    return 0


def report(result: dict[str, Any]) -> None:
    """Print the table and the failover numbers."""
    params, stats = result["parameters"], result["stats"]
    print(
        f"handoff overhead, zero-latency function models; {params['rounds']} rounds; "
        f"{os.cpu_count()} CPUs; ms, p50 (p90), and p50 ratio to in-process"
    )
    print(f"{'arm':<11} {'call':>24} {'subtask':>24} {'wall/subtask':>24}")
    for arm in ARMS:
        if arm not in stats:
            print(f"{arm:<11} {result['arms'][arm]}")
            continue
        row, ratio = stats[arm], stats[arm]["ratio_to_in_process"]
        cells = [f"{row[k]['p50']:.3f} ({row[k]['p90']:.3f}) {ratio[k]:.1f}x" for k in ratio]
        print(f"{arm:<11} " + " ".join(f"{c:>24}" for c in cells))
    fail = result["failover"]
    if "missing" in fail:
        print(f"failover: missing: {fail['missing']}")
        return
    for run in fail["runs"]:
        print(
            f"failover: {run['subtasks_done']}/{run['subtasks']} done, "
            f"{run['in_flight_at_kill']} in flight at the kill, failover {run['failover_s'] * 1000:.0f} ms, "
            f"run {run['wall_s']:.2f}s vs "
            f"{run['baseline_wall_s']:.2f}s with both replicas, endpoints {', '.join(run['endpoints'])}"
        )


if __name__ == "__main__":
    sys.exit(main())
