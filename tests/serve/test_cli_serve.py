"""``tessera serve`` on the command line: refusing unsafe binds, API keys, clean shutdown."""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from tessera.models.openai import OpenAIChatModel

from ..conftest import run_cli
from .conftest import Servers, fn_model, write_team


def _team_file(tmp_path: Path) -> Path:
    return write_team(tmp_path / "team.yaml", {
        "models": {"tag": fn_model("tag")},
        "specialists": {"general": {"description": "d", "model": "tag"}},
    })  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--host", "0.0.0.0"], {}, "--host 0.0.0.0: listening beyond loopback needs an API key"),
        (["--host", "192.168.1.7", "--model", "tag"], {}, "--host 192.168.1.7: listening beyond loopback"),
        (
            ["--api-key-env", "TESSERA_TEST_NO_KEY"],
            {},
            "--api-key-env: environment variable 'TESSERA_TEST_NO_KEY'",
        ),
        (["--model", "nope"], {}, "unknown model 'nope' (known: planner, tag)"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    done = run_cli("serve", "--team", str(_team_file(tmp_path)), *args, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_with_a_key_requests_without_it_get_401(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_TEST_KEY", "s3cret")
    served = servers.start(
        "--team", str(_team_file(tmp_path)), "--model", "tag", "--host", "0.0.0.0", "--api-key-env", "TESSERA_TEST_KEY",
        key="s3cret",
    )  # fmt: skip
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        request = urllib.request.Request(f"{served.root}/health", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 401
    assert served.health("s3cret")["model"] == "tag"

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=served.url, api_key="wrong", max_retries=0).chat.completions.create(
            model="tag", messages=[{"role": "user", "content": "hi"}]
        )
    reply = openai.OpenAI(base_url=served.url, api_key="s3cret", max_retries=0).chat.completions.create(
        model="tag", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "? did: hi"
    model = OpenAIChatModel(model_id="r", endpoints=[served.url], model="tag", api_key="s3cret", timeout_s=10)
    assert model.invoke("hey").content == "? did: hey"


@pytest.mark.slow
def test_sigterm_stops_the_server_cleanly(tmp_path: Path, servers: Servers) -> None:
    served = servers.start("--team", str(_team_file(tmp_path)))
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=15) == 0
    assert served.stderr.read_text().strip().endswith("tessera serve: stopped")
    assert served.stdout.read_text().startswith("tessera serve: team 'served' on http://127.0.0.1:")
