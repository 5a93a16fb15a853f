"""A whole team served with ``tessera serve --team``: a plain OpenAI client asks it, streaming and not."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from .conftest import Servers, fn_model, write_team

TASK = "Write a haiku. Draw a cat."


def _team_file(tmp_path: Path) -> Path:
    return write_team(tmp_path / "team.yaml", {
        "name": "poets",
        "models": {"worker": fn_model("tag"), "voice": fn_model("words")},
        "specialists": {"general": {"description": "d", "model": "worker"}},
        "answer": {"model": "voice"},
    })  # fmt: skip


@pytest.mark.slow
def test_a_plain_openai_client_gets_the_answer_and_the_trace_streaming_and_not(
    tmp_path: Path, servers: Servers
) -> None:
    served = servers.start("--team", str(_team_file(tmp_path)), env={"TESSERA_TEST_SERVER": "srv"})
    client = openai.OpenAI(base_url=served.url, api_key="unused", timeout=30, max_retries=0)
    assert [m.id for m in client.models.list()] == ["poets"]

    reply = client.chat.completions.create(model="poets", messages=[{"role": "user", "content": TASK}])
    answer = reply.choices[0].message.content
    assert answer is not None and answer.startswith("srv says: ")
    assert "srv did: Write a haiku." in answer and "srv did: Draw a cat." in answer
    assert reply.choices[0].finish_reason == "stop"
    trace = (reply.model_extra or {})["tessera"]
    assert trace["status"] == "done" and trace["answer"] == answer
    assert sorted(s["output"] for s in trace["subtasks"]) == [
        "srv did: Draw a cat.",
        "srv did: Write a haiku.",
    ]

    stream = client.chat.completions.create(
        model="poets",
        messages=[{"role": "user", "content": TASK}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3  # the answer model's words, as they came
    assert "".join(pieces) == answer
    last = [c for c in chunks if c.choices][-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["tessera"]["answer"] == answer
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.mark.slow
def test_a_team_that_calls_itself_stops_at_the_hop_limit(tmp_path: Path, servers: Servers) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    team_file = write_team(tmp_path / "loop.yaml", {
        "name": "loop",
        "models": {"myself": {"backend": "openai", "base_url": url, "model": "loop", "timeout_s": 30,
                              "max_retries": 0}},
        "specialists": {"general": {"description": "d", "model": "myself", "max_attempts": 1}},
    })  # fmt: skip
    served = servers.start("--team", str(team_file), "--max-hops", "3", "--port", str(port))
    assert served.url == url
    status, body = _post(served.url, {"messages": [{"role": "user", "content": "go"}]})
    assert status == 422
    assert "X-Tessera-Hops is 3" in body["error"]["message"]
    assert body["tessera"]["status"] == "failed"

    status, body = _post(
        served.url, {"messages": [{"role": "user", "content": "go"}]}, {"X-Tessera-Hops": "3"}
    )
    assert status == 508
    assert body["error"]["message"].startswith("X-Tessera-Hops is 3: the request passed 3 team servers")


@pytest.mark.slow
def test_an_unknown_model_is_404_each_request_is_logged_and_usage_counts_the_prompt(
    tmp_path: Path, servers: Servers
) -> None:
    served = servers.start("--team", str(_team_file(tmp_path)))
    ask = {"messages": [{"role": "user", "content": TASK}]}
    status, body = _post(served.url, {**ask, "model": "gpt-4"})
    assert status == 404, body
    assert body["error"]["code"] == "model_not_found" and body["error"]["param"] == "model"
    assert "`gpt-4` does not exist" in body["error"]["message"] and "`poets`" in body["error"]["message"]

    status, body = _post(served.url, {**ask, "model": "poets"})
    assert status == 200 and body["tessera"]["status"] == "done"
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    log = served.stderr.read_text().splitlines()
    assert any(
        re.fullmatch(r"tessera serve: POST /v1/chat/completions 404 \d+\.\d{3}s", line) for line in log
    )
    assert any(
        re.fullmatch(r"tessera serve: POST /v1/chat/completions 200 \d+\.\d{3}s", line) for line in log
    )
    assert any(re.fullmatch(r"tessera serve: GET /health 200 \d+\.\d{3}s", line) for line in log), log
