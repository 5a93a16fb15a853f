"""The team as an MCP server: SDK clients reach ``tessera serve --mcp`` over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, run_cli

from .conftest import NO_SDK

pytest.importorskip("mcp", reason=NO_SDK)

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

pytestmark = pytest.mark.slow

OFFLINE = str(REPO / "configs" / "offline.yaml")
TASK = "Write a haiku about tea. Then translate it into French."


async def _use(session: ClientSession) -> dict[str, Any]:
    await session.initialize()
    listed = await session.list_tools()
    result = await session.call_tool("run_task", {"task": TASK})
    empty = await session.call_tool("run_task", {"task": "   "})
    return {"tools": listed.tools, "result": result, "empty": empty}


def _check(seen: dict[str, Any]) -> None:
    assert [t.name for t in seen["tools"]] == ["run_task"]
    assert "offline" in (seen["tools"][0].description or "")
    result = seen["result"]
    assert not result.isError
    answer = result.content[0].text
    assert answer.startswith("echo: Write a haiku about tea.") and "Translate it into French." in answer
    run = result.structuredContent
    assert run["answer"] == answer and run["status"] == "done"
    assert [s["id"] for s in run["plan"]["subtasks"]] == ["s1", "s2"]
    assert [(s["id"], s["status"]) for s in run["subtasks"]] == [("s1", "done"), ("s2", "done")]
    assert run["subtasks"][0]["output"] == "echo: Write a haiku about tea."
    empty = seen["empty"]
    assert empty.isError and empty.content[0].text == "task: empty; say what the team should do"


def test_an_sdk_client_over_stdio_lists_run_task_calls_it_and_gets_the_answer(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tessera.cli", "serve", "--mcp", "--team", OFFLINE],
        env={"PATH": os.environ["PATH"], "TESSERA_STATE_DIR": str(tmp_path / "state")},
        cwd=REPO,
    )

    async def session() -> dict[str, Any]:
        with (tmp_path / "stderr").open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as s:
                return await _use(s)

    _check(asyncio.run(asyncio.wait_for(session(), 60)))
    assert "tessera serve: team 'offline' over MCP on stdio" in (tmp_path / "stderr").read_text()


@contextmanager
def _http_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tessera.cli",
                "serve",
                "--mcp",
                "http",
                "--port",
                "0",
                "--team",
                OFFLINE,
                *args,
            ],
            stdout=stdout,
            stderr=stderr,
            cwd=REPO,
            env={**os.environ, "TESSERA_STATE_DIR": str(tmp_path / "state"), **(env or {})},
        )
    try:
        deadline = time.monotonic() + 60
        while not (match := re.search(r"on (http://\S+/mcp)", out.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        yield match.group(1).replace("0.0.0.0", "127.0.0.1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        log = err.read_text()  # a request log line each, and no SDK traceback when a client leaves
        assert "tessera serve: POST /mcp 200" in log and "Traceback" not in log and "ERROR" not in log, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _over_http(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with (
        httpx.AsyncClient(headers=headers, timeout=30) as client,
        streamable_http_client(url, http_client=client) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        return await _use(session)


def test_an_sdk_client_over_streamable_http_on_loopback_gets_the_answer(tmp_path: Path) -> None:
    with _http_server(tmp_path) as url:
        assert url.startswith("http://127.0.0.1:")
        _check(asyncio.run(asyncio.wait_for(_over_http(url), 60)))


def test_off_loopback_the_server_needs_a_key_and_every_request_must_carry_it(tmp_path: Path) -> None:
    refused = run_cli("serve", "--mcp", "http", "--host", "0.0.0.0", "--team", OFFLINE)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "--host 0.0.0.0: listening beyond loopback needs an API key (--api-key-env VAR); refused"
    )
    with _http_server(
        tmp_path, "--host", "0.0.0.0", "--api-key-env", "MCP_KEY", env={"MCP_KEY": "k3y"}
    ) as url:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        accept = {"Accept": "application/json, text/event-stream"}
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            assert httpx.post(url, json=body, headers={**accept, **headers}, timeout=10).status_code == 401
        _check(asyncio.run(asyncio.wait_for(_over_http(url, {"Authorization": "Bearer k3y"}), 60)))
