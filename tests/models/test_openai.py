"""The ``openai`` backend against a real llama-cpp-python server on loopback, serving a tiny GGUF.

No mocks: every test below sends real HTTP requests to ``python -m llama_cpp.server``. The model has
random weights, so its text is gibberish; the tests check the plumbing (limits, streaming, usage,
structured output, config, errors), not the quality of what it says.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from tessera.config import OpenAIModelConfig
from tessera.errors import ModelLoadError, StructuredOutputError
from tessera.models import build_model
from tessera.models.openai import OpenAIChatModel

ALIAS = "tiny"
STARTUP_DEADLINE_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _models_endpoint_answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            data = json.load(response)
    except (OSError, ValueError):
        return False
    return any(m.get("id") == ALIAS for m in data.get("data", []))


@pytest.fixture(scope="module")
def server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A llama-cpp-python server on a free loopback port; yields its ``/v1`` base URL."""
    reason = "llama_cpp.server needs the server extras: pip install 'llama-cpp-python[server]'"
    pytest.importorskip("uvicorn", reason=reason)
    pytest.importorskip("llama_cpp.server.app", reason=reason)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(tiny_gguf),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--model_alias", ALIAS,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while not _models_endpoint_answers(base_url):
            if proc.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited with code {proc.returncode} before answering:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama_cpp.server did not answer GET {base_url}/models within "
                    f"{STARTUP_DEADLINE_S:.0f} s:\n" + log_path.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.25)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _model(base_url: str, **overrides: object) -> OpenAIChatModel:
    fields: dict[str, object] = {
        "model_id": "tiny-openai",
        "base_url": base_url,
        "model": ALIAS,
        "max_tokens": 24,
        "seed": 7,
        "timeout_s": 30.0,
        "max_retries": 0,
    }
    fields.update(overrides)
    return OpenAIChatModel(**fields)  # type: ignore[arg-type]


class Person(BaseModel):
    """Every field is bounded, so even a random-weight model finishes the object in few tokens."""

    # llama-cpp-python's grammar lets raw control characters into JSON strings (its ``char`` rule is
    # ``[^"\\]``), which strict JSON rejects; a pattern keeps a random model's strings parseable.
    name: str = Field(pattern=r"^[a-z]{1,8}$", max_length=8)
    mood: Literal["happy", "sad", "calm"]
    adult: bool
    tags: list[Literal["red", "green", "blue"]] = Field(max_length=2)


# -- plain generation ------------------------------------------------------------------------------


@pytest.mark.slow
def test_invoke_returns_text_and_usage(server: str) -> None:
    message = _model(server).invoke("Tell me a story.")
    assert isinstance(message.content, str) and message.content
    usage = message.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert message.response_metadata["model"] == "tiny-openai"
    assert message.response_metadata["model_name"] == ALIAS


@pytest.mark.slow
def test_invoke_respects_max_tokens(server: str) -> None:
    capped = _model(server, max_tokens=3).invoke("Tell me a long story.")
    assert capped.response_metadata["finish_reason"] == "length"
    usage = capped.usage_metadata
    assert usage is not None
    # llama-cpp-python counts a token or two beyond max_tokens while a UTF-8 sequence is incomplete
    # (a byte-level vocabulary makes that common); without the limit it runs far longer.
    assert 0 < usage["output_tokens"] <= 3 + 3

    longer = _model(server, max_tokens=64).invoke("Tell me a long story.")
    assert longer.usage_metadata is not None
    assert longer.usage_metadata["output_tokens"] > usage["output_tokens"]


@pytest.mark.slow
def test_stream_yields_several_chunks(server: str) -> None:
    model = _model(server, max_tokens=16)
    chunks = list(model.stream("Count to ten."))
    texts = [c.content for c in chunks]
    assert all(isinstance(t, str) for t in texts)
    assert sum(1 for t in texts if t) >= 3, texts
    text = "".join(texts)  # type: ignore[arg-type]
    assert text
    # Streaming and non-streaming sample the same tokens for the same seed (the stream may lack a
    # trailing incomplete UTF-8 sequence: see test_ainvoke_and_astream).
    reply = model.invoke("Count to ten.").content
    assert isinstance(reply, str) and reply.startswith(text) and len(reply) - len(text) <= 1


@pytest.mark.slow
async def test_ainvoke_and_astream(server: str) -> None:
    model = _model(server, max_tokens=12)
    message = await model.ainvoke("Hello!")
    assert isinstance(message.content, str) and message.content
    assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] > 0
    assert message.response_metadata["model"] == "tiny-openai"

    pieces = [chunk.content async for chunk in model.astream("Hello!")]
    assert sum(1 for p in pieces if p) >= 2
    streamed = "".join(pieces)  # type: ignore[arg-type]
    # Same seed, same tokens; but llama-cpp-python's stream drops a trailing incomplete UTF-8
    # sequence that the non-streamed reply decodes (as a replacement character): compare prefixes.
    assert isinstance(message.content, str)
    assert streamed and message.content.startswith(streamed)


@pytest.mark.slow
async def test_concurrent_requests(server: str) -> None:
    import asyncio

    model = _model(server, max_tokens=8)
    replies = await asyncio.gather(*(model.ainvoke(f"Request {i}") for i in range(3)))
    assert all(isinstance(r.content, str) and r.content for r in replies)


# -- structured output -----------------------------------------------------------------------------


@pytest.mark.slow
def test_with_structured_output_returns_a_validated_instance(server: str) -> None:
    model = _model(server, max_tokens=160, temperature=0.7, structured_retries=0)
    result = model.with_structured_output(Person, include_raw=True).invoke("Describe someone.")
    person = result["parsed"]
    assert isinstance(person, Person)
    assert Person.model_validate_json(result["raw"].content) == person


@pytest.mark.slow
async def test_with_structured_output_async_and_dict_schema(server: str) -> None:
    model = _model(server, max_tokens=160, structured_retries=0)
    schema = Person.model_json_schema()
    data = await model.with_structured_output(schema).ainvoke("Describe someone.")
    assert isinstance(data, dict)
    Person.model_validate(data)


@pytest.mark.slow
def test_structured_output_cut_short_by_max_tokens_is_a_structured_output_error(
    server: str,
) -> None:
    model = _model(server, max_tokens=3, structured_retries=1)
    with pytest.raises(StructuredOutputError, match="2 time"):
        model.with_structured_output(Person).invoke("Describe someone.")


# -- configuration ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_build_model_from_config(server: str) -> None:
    config = OpenAIModelConfig.model_validate(
        {
            "backend": "openai",
            "base_url": server,
            "model": ALIAS,
            "max_tokens": 5,
            "seed": 1,
            "timeout_s": 20,
            "max_retries": 0,
            "cost": 0.5,
            "keep_warm": True,
        }
    )
    model = build_model("remote", config)
    assert isinstance(model, OpenAIChatModel)
    assert (model.model_id, model.base_url, model.model) == ("remote", server, ALIAS)
    assert (model.max_tokens, model.seed, model.timeout_s, model.max_retries) == (5, 1, 20.0, 0)
    assert model.api_key is None
    message = model.invoke("Hi")
    assert message.content
    assert message.response_metadata["model"] == "remote"
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] <= 5 + 3  # see test_invoke_respects_max_tokens


def test_api_key_env_unset_raises_model_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    var = "TESSERA_TEST_SURELY_UNSET_API_KEY"
    monkeypatch.delenv(var, raising=False)
    config = OpenAIModelConfig.model_validate(
        {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": var}
    )
    with pytest.raises(ModelLoadError, match=var) as info:
        build_model("cloud", config)
    assert "models.cloud" in str(info.value)


def test_api_key_env_set_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    var = "TESSERA_TEST_API_KEY"
    monkeypatch.setenv(var, "sk-test-123")
    config = OpenAIModelConfig.model_validate(
        {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": var}
    )
    model = build_model("cloud", config)
    assert isinstance(model, OpenAIChatModel)
    assert model.api_key == "sk-test-123"
    assert model.client.openai_api_key.get_secret_value() == "sk-test-123"


# -- failures --------------------------------------------------------------------------------------


def test_unreachable_endpoint_fails_fast() -> None:
    port = _free_port()  # bound then closed: nothing listens there
    model = _model(f"http://127.0.0.1:{port}/v1", timeout_s=2, max_retries=0)
    start = time.monotonic()
    with pytest.raises(Exception) as info:
        model.invoke("Hello?")
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert "connect" in f"{type(info.value).__name__} {info.value}".lower()


def test_silent_endpoint_times_out() -> None:
    """A server that accepts the connection but never answers: ``timeout_s`` must end the wait."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_ignore() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept_and_ignore, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        model = _model(f"http://127.0.0.1:{port}/v1", timeout_s=1.5, max_retries=0)
        start = time.monotonic()
        with pytest.raises(Exception) as info:
            model.invoke("Hello?")
        elapsed = time.monotonic() - start
        assert 1.0 <= elapsed < 10, f"took {elapsed:.1f} s"
        assert "timeout" in f"{type(info.value).__name__} {info.value}".lower()
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()
