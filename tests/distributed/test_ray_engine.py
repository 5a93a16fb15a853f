"""``engine: ray`` on a real local Ray cluster started here: specialists as actors, in parallel."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tessera import Team, TeamConfig
from tessera.distributed import RayChatModel, RayModelPool
from tessera.errors import ModelLoadError

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "tessera[distributed]"')

pytestmark = pytest.mark.slow
FAKES = "tests.distributed.ray_fakes"
WORKER = {"backend": "function", "callable": f"{FAKES}:worker"}


@pytest.fixture(scope="module", autouse=True)
def ray_cluster() -> Iterator[None]:
    """One local Ray for the module, the way a user's script would start it."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def team_config(
    tmp_path: Path, models: dict[str, Any], specialists: dict[str, str], **extra: Any
) -> TeamConfig:
    return TeamConfig.from_dict(
        {
            "name": "ray-test",
            "state_dir": str(tmp_path / "state"),
            "models": {"planner": {"backend": "function", "callable": f"{FAKES}:planner"}, **models},
            "planner": {"model": "planner"},
            "specialists": {
                name: {"description": name, "model": model} for name, model in specialists.items()
            },
            "memory": {"long_term": False},
            "distributed": {"engine": "ray"},
            **extra,
        }
    )


def where(output: str) -> tuple[int, float, float]:
    match = re.fullmatch(r"pid=(\d+) start=([\d.]+) end=([\d.]+)", output)
    assert match, output
    return int(match[1]), float(match[2]), float(match[3])


def gone(pid: int, within_s: float = 15.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_team_runs_its_specialists_as_parallel_actors(tmp_path: Path) -> None:
    config = team_config(
        tmp_path,
        {"a": WORKER, "b": {**WORKER, "ray": {"num_cpus": 1}}},
        {"alpha": "a", "beta": "b"},
    )
    team = Team(config)
    assert isinstance(team.pool, RayModelPool)
    result = team.run("use alpha,beta")
    assert result.status == "done", result.notes
    assert [s.specialist for s in result.subtasks] == ["alpha", "beta"]
    (pid_a, start_a, end_a), (pid_b, start_b, end_b) = (where(s.output) for s in result.subtasks)
    assert len({pid_a, pid_b, os.getpid()}) == 3, "each specialist's model runs in its own actor process"
    assert max(start_a, start_b) < min(end_a, end_b), "the two 1 s subtasks overlapped in time"
    answer_pid = int(result.answer.removeprefix("answer from pid ").split()[0])
    assert answer_pid not in (os.getpid(), pid_a, pid_b), "the planner's model is an actor too"

    proxies = {name: team.pool.get(name) for name in ("planner", "a", "b")}
    assert all(isinstance(p, RayChatModel) for p in proxies.values())
    placement = {name: p.placement for name, p in proxies.items()}  # type: ignore[union-attr]
    assert placement["a"] is not None and placement["a"]["pid"] == pid_a
    assert placement["b"] is not None and placement["b"]["resources"] == {"CPU": 1.0}
    assert placement["a"]["resources"] == {}, "a function model reserves no CPU by default"
    assert {s.name: s.loaded for s in team.pool.status()} == {"a": True, "b": True, "planner": True}

    team.close()
    assert gone(pid_a) and gone(pid_b) and gone(answer_pid), "closing the team kills its actors"
    assert ray.is_initialized(), "a Ray the team did not start stays up"


def test_errors_streaming_and_structured_output_cross_the_actor(tmp_path: Path) -> None:
    config = team_config(
        tmp_path,
        {
            "echo": {"backend": "function", "callable": "tests.fakes:echo"},
            "streamer": {"backend": "function", "callable": "tests.fakes:streamer"},
            "hang": {"backend": "function", "callable": "tests.fakes:hang"},
        },
        {"e": "echo", "s": "streamer"},
    )
    with RayModelPool(config) as pool:
        echo = pool.get("echo")
        with pytest.raises(RuntimeError, match="^asked to fail$"):  # the model's own error, not Ray's
            echo.invoke("please FAIL")
        with pytest.raises(RuntimeError, match="^asked to fail$"):
            asyncio.run(echo.ainvoke("please FAIL"))
        assert echo.invoke("hi").content == "did: hi"

        hang = pool.get("hang")  # sleeps 3 s; a caller's timeout cancels the actor task and returns at once
        hang.ready()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            asyncio.run(asyncio.wait_for(hang.ainvoke("wait"), 0.5))
        assert time.monotonic() - started < 2.5

        streamer = pool.get("streamer")
        pieces = [c.content for c in streamer.stream("a b c")]
        assert pieces[:4] == ["did: ", "a ", "b ", "c "]

        async def astream() -> list[Any]:
            return [c.content async for c in streamer.astream("x y")]

        assert asyncio.run(astream())[:3] == ["did: ", "x ", "y "]

        from tessera.types import Plan

        plan = pool.get("planner").with_structured_output(Plan).invoke("Task: use e,s")
        assert [s.specialist for s in plan.subtasks] == ["e", "s"]


def test_a_model_ray_cannot_place_fails_in_one_line_not_a_hang(tmp_path: Path) -> None:
    config = team_config(
        tmp_path,
        {"gpu": {**WORKER, "ray": {"num_gpus": 1}}},
        {"g": "gpu"},
        distributed={"engine": "ray", "start_timeout_s": 1},
    )
    with RayModelPool(config) as pool:
        started = time.monotonic()
        with pytest.raises(ModelLoadError) as info:
            pool.get("gpu").invoke("hi")
        assert time.monotonic() - started < 10
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "model 'gpu': Ray did not start its actor within 1s (it asks for num_cpus=0, num_gpus=1;"
    )
    assert "see models.gpu.ray" in message


def test_a_broken_callable_fails_before_any_actor_starts(tmp_path: Path) -> None:
    config = team_config(
        tmp_path, {"bad": {"backend": "function", "callable": "tests.fakes:nope"}}, {"b": "bad"}
    )
    with RayModelPool(config) as pool, pytest.raises(ModelLoadError, match="has no attribute 'nope'"):
        pool.get("bad")


def test_a_llama_cpp_model_runs_in_its_actor(tmp_path: Path, tiny_gguf: Path) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from pydantic import BaseModel

    class Flag(BaseModel):
        ok: bool

    tiny = {"backend": "llama_cpp", "path": str(tiny_gguf), "n_ctx": 2048, "max_tokens": 32}  # room for tools
    config = team_config(tmp_path, {"tiny": tiny}, {"t": "tiny"})
    with RayModelPool(config) as pool:
        pool.load("tiny")
        assert {s.name: s.loaded for s in pool.status()}["tiny"] is True
        model = pool.get("tiny")
        assert isinstance(model, RayChatModel) and model.placement is not None
        assert model.placement["resources"] == {"CPU": 1.0}, "llama.cpp reserves n_threads (default 1) CPUs"
        reply = model.invoke("hello", seed=1)
        assert reply.usage_metadata is not None and 1 <= reply.usage_metadata["output_tokens"] <= 32
        tool = {"type": "function", "function": {"name": "f", "description": "f", "parameters": {}}}
        called = model.bind_tools([tool], tool_choice="f").invoke("call f", seed=1)  # decoded in the actor
        assert called.tool_calls and {c["name"] for c in called.tool_calls} == {"f"}
        flag = model.with_structured_output(Flag).invoke("ok?")  # grammar-constrained inside the actor
        assert isinstance(flag, Flag)


SCRIPT = """
import json, os, sys
from tessera import Team, TeamConfig
config = TeamConfig.from_dict(json.loads(sys.argv[1]))
team = Team(config)
import ray  # after the team, as in a user's program that never touches Ray itself
result = team.run("use alpha")
proxy = team.pool.get("a")
report = {
    "status": result.status,
    "output": result.subtasks[0].output,
    "node_id": proxy.placement["node_id"],
    "cpus": ray.cluster_resources().get("CPU"),
    "object_store": ray.cluster_resources().get("object_store_memory"),
    "auth": os.environ.get("RAY_AUTH_MODE"),
}
team.close()
report["ray_up_after_close"] = ray.is_initialized()
print(json.dumps(report))
"""


def run_script(tmp_path: Path, distributed: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run a one-specialist team in a fresh interpreter (its own Ray driver); return its report."""
    import json
    import subprocess
    import sys

    from ..conftest import REPO

    config = {
        "name": "ray-script",
        "state_dir": str(tmp_path / "state"),
        "models": {"planner": {"backend": "function", "callable": f"{FAKES}:planner"}, "a": WORKER},
        "planner": {"model": "planner"},
        "specialists": {"alpha": {"description": "alpha", "model": "a"}},
        "memory": {"long_term": False},
        "distributed": distributed,
    }
    full_env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"} | env
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=full_env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["stderr"] = done.stderr
    assert report["status"] == "done"
    return report


def test_a_private_ray_is_small_uses_token_auth_and_stops_with_the_team(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    report = run_script(
        tmp_path, {"engine": "ray", "num_cpus": 1, "object_store_mb": 100}, {"HOME": str(home)}
    )
    assert report["cpus"] == 1.0
    assert report["object_store"] == 100 * 2**20
    assert report["auth"] == "token"
    assert "Token authentication is enabled" not in report["stderr"], "Tessera chose it, Ray did not warn"
    assert (home / ".ray" / "auth_token").is_file(), "Ray made the cluster's token on first start"
    assert report["ray_up_after_close"] is False, "the team shuts down the Ray it started"


def test_a_team_joins_a_running_cluster_by_address(tmp_path: Path) -> None:
    """The module's Ray stands in for a cluster started with `ray start --head` (token auth, Ray's default)."""
    address = ray.get_runtime_context().gcs_address
    report = run_script(tmp_path, {"engine": "ray", "address": address}, {"RAY_AUTH_MODE": "token"})
    assert report["node_id"] == ray.get_runtime_context().get_node_id()
    assert report["cpus"] == 2.0, "it sees the cluster's resources, not a private Ray's"
    assert where(report["output"])[0] != os.getpid()
    assert report["ray_up_after_close"] is True, "leaving a cluster is the driver's exit, not a shutdown"
