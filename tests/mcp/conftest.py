"""MCP fixtures: the FastMCP test server (tests/mcp/calc_server.py) over stdio or streamable HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

NO_SDK = 'the MCP tests need the mcp SDK: pip install "tessera[mcp]"'

HERE = Path(__file__).resolve().parent
CALC = [sys.executable, str(HERE / "calc_server.py")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture
def http_calc() -> Iterator[str]:
    """The calc server over streamable HTTP on loopback: its endpoint URL."""
    port = free_port()
    proc = subprocess.Popen([*CALC, "http", str(port)], stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def plan(*subtasks: tuple[str, str, str]) -> str:
    """A task for ``tests.agents.custom:plan``: the plan JSON itself, one ``(id, specialist, text)`` each."""
    items = [{"id": i, "specialist": s, "instruction": text, "depends_on": []} for i, s, text in subtasks]
    return "PLAN " + json.dumps({"subtasks": items})


def call(tool: str, **args: Any) -> str:
    """An instruction that makes ``tests.mcp.fakes:caller`` call ``tool`` with ``args``."""
    return f"CALL {tool} {json.dumps(args)}"


def mcp_team(path: Path, servers: dict[str, Any], specialists: dict[str, list[str]]) -> Path:
    """A team file on function models: a specialist per entry of ``specialists``, with those ``mcp`` entries."""
    data = {
        "name": "mcp-test",
        "state_dir": str(path.parent / "state"),
        "models": {
            "planner": {"backend": "function", "callable": "tests.agents.custom:plan"},
            "caller": {"backend": "function", "callable": "tests.mcp.fakes:caller"},
        },
        "planner": {"model": "planner", "stream": False},
        "specialists": {
            name: {"description": f"{name} things", "model": "caller", "mcp": entries, "max_attempts": 1}
            for name, entries in specialists.items()
        },
        "mcp": {"servers": servers},
        "memory": {"long_term": False},
    }
    path.write_text(yaml.safe_dump(data))
    return path
