"""Model mode (``create_app(team, model)``) in this process: the protocol, structured output, tools, limits."""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.tools import tool
from pydantic import BaseModel

from tessera import Team, TeamConfig
from tessera.models.openai import OpenAIChatModel
from tessera.serve import RunningServer, ServeOptions, create_app, start_server

from .conftest import fn_model


def _host(tmp_path: Path) -> Team:
    return Team(
        TeamConfig.from_dict(
            {
                "name": "host",
                "state_dir": str(tmp_path / "state"),
                "models": {"tag": fn_model("tag"), "words": fn_model("words"), "caller": fn_model("caller")},
                "planner": {"model": "tag"},
                "specialists": {"general": {"description": "d", "model": "tag"}},
            }
        )  # fmt: skip
    )


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Team]:
    team = _host(tmp_path)
    yield team
    team.close()


def _serve(team: Team, model: str, **options: Any) -> RunningServer:
    return start_server(create_app(team, model, ServeOptions(**options)))


def _post(url: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/chat/completions", data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _chat(text: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": text}]}).encode()


class Report(BaseModel):
    server: str
    words: int


def test_structured_output_and_streaming_through_the_openai_backend(host: Team) -> None:
    with _serve(host, "tag") as server:
        model = OpenAIChatModel(model_id="remote", base_url=server.url, model="tag", timeout_s=10)
        report = model.with_structured_output(Report).invoke("count these words")
        assert report == Report(server="?", words=3)
        message = model.invoke("hi there")
        assert (message.content, message.response_metadata["endpoint"]) == ("? did: hi there", server.url)
    with _serve(host, "words") as server:
        model = OpenAIChatModel(model_id="remote", base_url=server.url, model="words", timeout_s=10)
        chunks = [str(c.content) for c in model.stream("a b c")]
        assert len([c for c in chunks if c]) == 5
        assert "".join(chunks) == "? says: a b c "


def test_tool_calls_go_both_ways(host: Team) -> None:
    @tool
    def double(x: int) -> int:
        """Double x."""
        return 2 * x

    with _serve(host, "caller") as server:
        model = OpenAIChatModel(model_id="remote", base_url=server.url, model="caller", timeout_s=10)
        bound = model.bind_tools([double])
        reply = bound.invoke("double one")
        assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("double", {"x": 1})]
        streamed = None
        for piece in bound.stream("double one"):
            streamed = piece if streamed is None else streamed + piece
        assert streamed is not None and [c["name"] for c in streamed.tool_calls] == ["double"]


def test_a_body_over_the_limit_gets_413_and_bad_requests_400(host: Team) -> None:
    with _serve(host, "tag", max_body_bytes=1024) as server:
        status, body = _post(server.url, _chat("x" * 2000))
        assert status == 413 and "over the limit of 1024 bytes" in body["error"]["message"]
        assert _post(server.url, b"{not json")[0] == 400
        status, body = _post(server.url, json.dumps({"messages": []}).encode())
        assert status == 400 and body["error"]["message"].startswith("messages:")
        assert _post(server.url, _chat("fine"))[1]["choices"][0]["message"]["content"] == "? did: fine"


def test_requests_over_the_concurrency_limit_get_429(host: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_TEST_SLEEP", "1")
    with _serve(host, "tag", max_concurrency=1) as server:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(_post, server.url, _chat("one"))
            load = server.app.state.load
            deadline = time.monotonic() + 10
            while load.in_flight == 0 and time.monotonic() < deadline:  # the first one takes the only slot
                time.sleep(0.01)
            assert _post(server.url, _chat("two"))[0] == 429
            assert first.result()[0] == 200
        assert load.in_flight == 0


class Mood(BaseModel):
    """Bounded, so a random-weight model finishes it in a few tokens."""

    mood: Literal["happy", "sad", "calm"]
    tired: bool


def test_a_real_llama_cpp_model_served_answers_streams_and_keeps_to_a_schema(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    team = Team(
        TeamConfig.from_dict(
            {
                "name": "tiny",
                "state_dir": str(tmp_path / "state"),
                "models": {
                    "tiny": {
                        "backend": "llama_cpp",
                        "path": str(tiny_gguf),
                        "n_ctx": 512,
                        "max_tokens": 8,
                        "n_threads": 1,
                        "seed": 3,
                    }
                },
                "planner": {"model": "tiny"},
                "specialists": {"general": {"description": "d", "model": "tiny"}},
            }
        )  # fmt: skip
    )
    try:
        with _serve(team, "tiny") as server:
            health = _get(f"{server.url.removesuffix('/v1')}/health")
            assert (health["model"], health["backend"], health["loaded"]) == ("tiny", "llama_cpp", False)
            model = OpenAIChatModel(
                model_id="remote", base_url=server.url, model="tiny", max_tokens=6, timeout_s=60
            )
            reply = model.invoke("Once upon a time")
            assert isinstance(reply.content, str) and reply.usage_metadata is not None
            assert 0 < reply.usage_metadata["output_tokens"] <= 6 + 3  # llama.cpp may finish a UTF-8 sequence
            assert len([c for c in model.stream("Once upon a time") if c.content]) > 1
            assert isinstance(model.with_structured_output(Mood).invoke("How are you?"), Mood)  # the grammar
            assert _get(f"{server.url.removesuffix('/v1')}/health")["loaded"] is True
    finally:
        team.close()


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)  # type: ignore[no-any-return]


def test_a_request_for_another_model_is_404_and_usage_counts_the_prompt(host: Team) -> None:
    with _serve(host, "tag") as server:
        ask = {"messages": [{"role": "user", "content": "count these four words"}]}
        status, body = _post(server.url, json.dumps({**ask, "model": "gpt-4"}).encode())
        assert status == 404 and body["error"]["code"] == "model_not_found", body
        status, body = _post(server.url, json.dumps({**ask, "model": "tag"}).encode())
        assert status == 200, body
        assert body["usage"]["prompt_tokens"] == 4  # a function model counts words; it reports no input
        assert body["usage"]["completion_tokens"] > 0
