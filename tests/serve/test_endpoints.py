"""Remote endpoints in a team config: specialists on other ``tessera serve`` processes, replicas, failover.

The client team runs in this process (planner: ``tests.fakes:planner``); the servers are real
``tessera serve --model`` subprocesses on loopback serving ``tests.serve.remote_fakes`` functions.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tessera import Team, TeamConfig
from tessera.agents.router import FALLBACK_ON
from tessera.errors import ConfigError

from .. import fakes
from .conftest import Servers, fn_model, write_team


def _client_team(tmp_path: Path, models: dict[str, Any], specialists: dict[str, Any], **extra: Any) -> Team:
    data: dict[str, Any] = {
        "name": "client",
        "state_dir": str(tmp_path / "client-state"),
        "models": {"planner": {"backend": "function", "callable": "tests.fakes:planner"}, **models},
        "planner": {"model": "planner"},
        "specialists": specialists,
        "memory": {"long_term": False},
        "runtime": {"max_concurrency": 8},
        **extra,
    }
    return Team(TeamConfig.from_dict(data))


def _plan(task: str, *subtasks: tuple[str, str, str]) -> str:
    fakes.PLANS[task] = {
        "subtasks": [
            {"id": i, "specialist": who, "instruction": text, "depends_on": []} for i, who, text in subtasks
        ]
    }
    return task


def _host_file(tmp_path: Path) -> Path:
    """The team whose ``tag`` model the servers serve."""
    return write_team(tmp_path / "host.yaml", {
        "models": {"tag": fn_model("tag")},
        "specialists": {"general": {"description": "d", "model": "tag"}},
    })  # fmt: skip


def _dead_url() -> str:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _remote(url: str | list[str], **extra: Any) -> dict[str, Any]:
    where = {"endpoints": url} if isinstance(url, list) else {"base_url": url}
    return {"backend": "openai", "model": "tag", "timeout_s": 20, **where, **extra}  # what _host_file serves


@pytest.mark.slow
def test_three_servers_serve_three_specialists_and_the_result_names_each_endpoint(
    tmp_path: Path, servers: Servers
) -> None:
    team_file = _host_file(tmp_path)
    names = ["alpha", "beta", "gamma"]
    served = servers.start_many(
        [(["--team", str(team_file), "--model", "tag"], {"TESSERA_TEST_SERVER": n}) for n in names]
    )
    team = _client_team(
        tmp_path,
        {n: _remote(s.url) for n, s in zip(names, served, strict=True)},
        {f"do_{n}": {"description": n, "model": n} for n in names},
    )
    task = _plan("use all three", *[(f"s{i}", f"do_{n}", f"job {n}") for i, n in enumerate(names)])
    result = team.run(task)
    assert result.status == "done", result.notes
    by_id = {s.id: s for s in result.subtasks}
    for i, (name, server) in enumerate(zip(names, served, strict=True)):
        sub = by_id[f"s{i}"]
        assert sub.status == "done"
        assert sub.output == f"{name} did: job {name}"
        assert sub.endpoint == server.url
    assert len({s.endpoint for s in result.subtasks}) == 3
    health = served[0].health()
    assert (health["model"], health["loaded"], health["queue"]) == ("tag", True, 0)


def _log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.slow
def test_sigkill_of_a_replica_mid_run_moves_its_subtasks_to_the_other(
    tmp_path: Path, servers: Servers
) -> None:
    team_file = _host_file(tmp_path)
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    one, two = servers.start_many([
        (["--team", str(team_file), "--model", "tag"],
         {"TESSERA_TEST_SERVER": name, "TESSERA_TEST_CALLS": str(log), "TESSERA_TEST_SLEEP": "2"})
        for name, log in zip(["one", "two"], logs, strict=True)
    ])  # fmt: skip
    team = _client_team(
        tmp_path,
        {"worker": _remote([one.url, two.url], cooloff_s=60)},
        {"general": {"description": "d", "model": "worker"}},
    )
    jobs = [f"job{i}" for i in range(4)]
    task = _plan("four at once", *[(f"s{i}", "general", job) for i, job in enumerate(jobs)])
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=team.run(task)))
    runner.start()
    deadline = time.monotonic() + 30
    while not any(line.startswith("start") for line in _log_lines(logs[0])):
        assert time.monotonic() < deadline, "no request reached server one"
        time.sleep(0.02)
    one.kill()  # its calls sleep for 2 s: they are cut off before they answer
    runner.join(timeout=60)
    assert not runner.is_alive(), "the run hung after a replica died"
    result = outcome["result"]
    assert result.status == "done", result.notes
    assert sorted(s.id for s in result.subtasks) == ["s0", "s1", "s2", "s3"]  # none lost, none twice
    server_of = {one.url: "one", two.url: "two"}
    by_job = dict(zip(jobs, sorted(result.subtasks, key=lambda s: s.id), strict=True))
    for job, sub in by_job.items():
        assert sub.status == "done" and sub.endpoint in server_of
        assert sub.output == f"{server_of[sub.endpoint]} did: {job}"  # the endpoint that answered
    cut_off = [line.split(" ", 1)[1] for line in _log_lines(logs[0]) if line.startswith("start")]
    answered = {name: sorted(line.split(" ", 1)[1] for line in _log_lines(log) if line.startswith("end"))
                for name, log in zip(["one", "two"], logs, strict=True)}  # fmt: skip
    assert sorted(answered["one"] + answered["two"]) == jobs  # each job finished exactly once
    moved = set(cut_off) - set(answered["one"])
    assert moved and moved <= set(answered["two"])  # the killed server's work moved to the other
    assert all(by_job[job].endpoint == two.url for job in moved)


def test_when_every_replica_is_down_routing_falls_back_to_a_local_tier(tmp_path: Path) -> None:
    team = _client_team(
        tmp_path,
        {
            "local": {"backend": "function", "callable": "tests.fakes:echo"},
            "remote": _remote([_dead_url(), _dead_url()]),
        },
        {"general": {"description": "d"}},
        routing={"tiers": ["local", "remote"], "difficulty": "tests.fakes:hard", "calibrate": False},
    )
    result = team.run(_plan("hard work", ("s1", "general", "solve it")))
    sub = result.subtasks[0]
    assert (sub.status, sub.tier, sub.output, sub.endpoint) == ("done", "local", "did: solve it", None)
    assert len(sub.escalations) == 1
    assert "remote -> local: down" in sub.escalations[0] and "unreachable" in sub.escalations[0]


def test_a_dead_replica_is_skipped_and_the_live_one_serves(tmp_path: Path) -> None:
    from tessera.models.openai import OpenAIChatModel
    from tessera.serve import create_app, start_server

    host = _client_team(
        tmp_path, {"tag": fn_model("words")}, {"general": {"description": "d", "model": "tag"}}
    )
    with start_server(create_app(host, "tag")) as live:
        dead = _dead_url()
        model = OpenAIChatModel(model_id="r", endpoints=[dead, live.url], model="tag", timeout_s=10)
        for _ in range(3):  # round-robin would pick the dead one in turn; it is down after its probe
            assert model.invoke("hello").response_metadata["endpoint"] == live.url
        assert "".join(str(c.content) for c in model.stream("hi")).strip() == "? says: hi"
        assert model.replicas.health() == {dead: False, live.url: True}


def test_unreachable_error_is_what_routing_recognises(tmp_path: Path) -> None:
    from tessera.errors import AgentRunError
    from tessera.models.openai import OpenAIChatModel

    model = OpenAIChatModel(model_id="r", endpoints=[_dead_url(), _dead_url()], model="m", timeout_s=5)
    with pytest.raises(AgentRunError) as caught:
        model.invoke("hi")
    message = str(caught.value)
    assert message.startswith("model 'r': all 2 endpoint(s) are unreachable")
    assert isinstance(caught.value, FALLBACK_ON)  # routing falls back on the type, not the words


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"base_url": "http://a/v1", "endpoints": ["http://b/v1"]},
            "set either 'base_url' or 'endpoints', not both",
        ),
        ({}, "needs 'base_url', or 'endpoints' (a list of replica URLs)"),
        ({"endpoints": ["http://a/v1", "http://a/v1"]}, "endpoints: a URL is listed twice"),
        ({"endpoints": ["a:8080"]}, "endpoint 'a:8080' is not an http:// or https:// URL"),
    ],
)
def test_endpoint_config_errors_are_one_line(fields: dict[str, Any], error: str) -> None:
    data = {
        "name": "t",
        "models": {"r": {"backend": "openai", "model": "m", **fields}},
        "planner": {"model": "r"},
        "specialists": {"general": {"description": "d", "model": "r"}},
    }
    with pytest.raises(ConfigError) as caught:
        TeamConfig.from_dict(data)
    assert caught.value.problems == [f"<dict>: models.r: {error}"]
