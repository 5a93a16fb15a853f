"""Routing in the graph: subtasks run on their tier and escalate one tier up when they fail."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tessera import Team

from .conftest import plan_for, sub, team_of

FN = "tests.fakes:"


def team(tiers: dict[str, str], tmp_path: Path, *, max_escalations: int = 2, **specialist: Any) -> Team:
    data: dict[str, Any] = {
        "name": "routed",
        "state_dir": str(tmp_path / "state"),
        "models": {
            "planner": {"backend": "function", "callable": FN + "planner"},
            **{
                name: {"backend": "function", "callable": FN + fn, "cost": 2**i}
                for i, (name, fn) in enumerate(tiers.items())
            },
        },
        "planner": {"model": "planner"},
        "specialists": {"general": {"description": "does anything", **specialist}},
        "routing": {"tiers": list(tiers), "max_escalations": max_escalations},
        "memory": {"long_term": False},
    }
    return team_of(data)


def test_an_easy_subtask_runs_on_the_smallest_tier_and_records_the_decision(tmp_path: Path) -> None:
    task = plan_for("route easy", sub("a", "Write a haiku."))
    result = team({"small": "echo", "large": "echo"}, tmp_path).run(task)
    a = result.subtasks[0]
    assert (a.status, a.model, a.tier, a.route, a.escalations) == (
        "done",
        "small",
        "small",
        "smallest tier",
        [],
    )
    assert a.cost > 0


def test_an_exception_escalates_one_tier_up(tmp_path: Path) -> None:
    task = plan_for("route exception", sub("a", "Write a haiku."))
    a = team({"small": "broken", "medium": "echo", "large": "echo"}, tmp_path).run(task).subtasks[0]
    assert (a.status, a.tier) == ("done", "medium")
    assert a.escalations == ["small -> medium: RuntimeError: this tier cannot do it"]
    with sqlite3.connect(tmp_path / "state" / "routing.sqlite") as db:  # both attempts are recorded
        rows = db.execute("SELECT model, ok FROM outcomes ORDER BY rowid").fetchall()
    assert rows == [("small", 0), ("medium", 1)]


def test_a_timeout_escalates(tmp_path: Path) -> None:
    task = plan_for("route timeout", sub("a", "Write a haiku."))
    routed = team({"small": "hang", "large": "echo"}, tmp_path, timeout_s=0.3, max_attempts=1)
    a = routed.run(task).subtasks[0]
    assert (a.status, a.tier) == ("done", "large")
    assert a.escalations == ["small -> large: timed out after 0.3s"]


def test_code_that_fails_its_tests_escalates(tmp_path: Path) -> None:
    task = plan_for("route code", sub("a", "Write add(a, b).\nTests:\nassert add(1, 2) == 3"))
    coder = team({"small": "wrong_add", "large": "right_add"}, tmp_path, kind="coder", max_attempts=1)
    a = coder.run(task).subtasks[0]
    assert (a.status, a.tier) == ("done", "large")
    assert len(a.escalations) == 1 and a.escalations[0].startswith("small -> large: ")
    assert "a + b" in a.artifacts["code"]


def test_escalations_stop_at_the_bound(tmp_path: Path) -> None:
    task = plan_for("route bound", sub("a", "Write a haiku."))
    tiers = {"t1": "broken", "t2": "broken", "t3": "echo"}
    a = team(tiers, tmp_path, max_escalations=1).run(task).subtasks[0]
    assert (a.status, a.tier, len(a.escalations)) == ("failed", "t2", 1)
    b = team(tiers, tmp_path / "two", max_escalations=2).run(task).subtasks[0]
    assert (b.status, b.tier, len(b.escalations)) == ("done", "t3", 2)


def test_a_pinned_specialist_never_escalates(tmp_path: Path) -> None:
    task = plan_for("route pinned", sub("a", "Write a haiku."))
    a = team({"small": "broken", "large": "echo"}, tmp_path, model="small").run(task).subtasks[0]
    assert (a.status, a.model, a.tier, a.escalations) == ("failed", "small", None, [])


def test_a_remote_tier_that_never_answers_falls_back_to_local_without_hanging(tmp_path: Path) -> None:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()
    asked: list[str] = []

    class Silent(BaseHTTPRequestHandler):  # a real HTTP server that reads each request, never answers
        def do_POST(self) -> None:
            asked.append(self.path)
            release.wait(30)

        def do_GET(self) -> None:
            release.wait(30)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = {
            "backend": "openai",
            "base_url": f"http://127.0.0.1:{server.server_address[1]}/v1",
            "model": "big",
            "timeout_s": 0.5,
            "max_retries": 0,
            "cost": 50,
        }
        data: dict[str, Any] = {
            "name": "remote",
            "state_dir": str(tmp_path / "state"),
            "models": {
                "planner": {"backend": "function", "callable": FN + "planner"},
                "local": {"backend": "function", "callable": FN + "echo"},
                "cloud": remote,
            },
            "planner": {"model": "planner"},
            "specialists": {"general": {"description": "does anything", "max_attempts": 1}},
            "routing": {"tiers": ["local", "cloud"], "difficulty": FN + "hard", "cooloff_s": 60},
            "memory": {"long_term": False},
        }
        t = team_of(data)
        started = time.monotonic()
        a = t.run(plan_for("route remote", sub("a", "Prove it."))).subtasks[0]
        assert time.monotonic() - started < 10
        assert (a.status, a.tier, a.route) == ("done", "local", "difficulty 0.99")
        assert a.escalations[0].startswith("cloud -> local: down (")
        assert asked and asked[0].endswith("/chat/completions")  # the request reached the server
        started = time.monotonic()
        b = t.run(plan_for("route remote again", sub("b", "Prove it again."))).subtasks[0]
        assert time.monotonic() - started < 2  # cool-off: the remote is not tried again
        assert (b.status, b.tier, b.escalations) == ("done", "local", [])
        assert b.route == "cloud is down (cool-off); difficulty 0.99"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def test_output_that_breaks_its_schema_escalates(tmp_path: Path) -> None:
    task = plan_for("route schema", sub("a", "Answer in JSON."))
    routed = team({"small": "small_json", "large": "large_json"}, tmp_path, output_schema=SCHEMA)
    a = routed.run(task).subtasks[0]
    assert (a.status, a.tier) == ("done", "large")
    assert a.escalations == ["small -> large: output breaks its schema: answer: 42 is not of type 'string'"]


def test_output_that_breaks_its_schema_on_every_tier_fails(tmp_path: Path) -> None:
    task = plan_for("route schema fail", sub("a", "Answer in JSON."))
    routed = team({"small": "small_json", "large": "echo"}, tmp_path, output_schema=SCHEMA)
    a = routed.run(task).subtasks[0]
    assert (a.status, a.tier) == ("failed", "large")
    assert a.error is not None and a.error.startswith("output breaks its schema: not JSON")


def test_a_verifier_saying_no_escalates(tmp_path: Path) -> None:
    data: dict[str, Any] = {
        "name": "verified",
        "state_dir": str(tmp_path / "state"),
        "models": {
            "planner": {"backend": "function", "callable": FN + "planner"},
            "small": {"backend": "function", "callable": FN + "echo", "cost": 1},
            "large": {"backend": "function", "callable": FN + "large_json", "cost": 8},
            "judge": {"backend": "function", "callable": FN + "judge"},
        },
        "planner": {"model": "planner"},
        "specialists": {
            "general": {"description": "does anything", "verifier": "checker"},
            "checker": {"description": "checks work", "model": "judge"},
        },
        "routing": {"tiers": ["small", "large"]},
        "memory": {"long_term": False},
    }
    task = plan_for("route verifier", sub("a", "Explain the plan."))
    a = team_of(data).run(task).subtasks[0]
    assert (a.status, a.tier) == ("done", "large")
    assert a.escalations == ["small -> large: verifier checker said no: too shallow"]
    # both attempts are paid for: 4 words on small (cost 1), then 7 on large (cost 8)
    assert (a.tokens, a.cost) == (11, round((4 * 1 + 7 * 8) / 1000, 6))


def test_the_classifier_prompt_rates_difficulty_on_the_smallest_tier(tmp_path: Path) -> None:
    routed = team({"small": "rater", "large": "echo"}, tmp_path)
    routed.config.routing.difficulty = "classifier"
    routed = routed.override(models=routed.models)
    hard = routed.run(plan_for("route classify hard", sub("a", "Prove that 2 is prime."))).subtasks[0]
    assert (hard.tier, hard.route) == ("large", "difficulty 1.00")
    easy = routed.run(plan_for("route classify easy", sub("b", "Say hello."))).subtasks[0]
    assert (easy.tier, easy.route, easy.output) == ("small", "smallest tier", "small did: Say hello.")


def test_a_broken_classifier_falls_back_to_the_cheap_estimate(tmp_path: Path) -> None:
    routed = team({"small": "broken", "large": "echo"}, tmp_path)
    routed.config.routing.difficulty = "classifier"
    routed = routed.override(models=routed.models)
    a = routed.run(plan_for("route classify broken", sub("a", "Say hello."))).subtasks[0]
    assert a.route == "smallest tier"
    assert a.escalations == ["small -> large: RuntimeError: this tier cannot do it"]
