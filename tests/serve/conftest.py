"""Fixtures: ``tessera serve`` as real subprocesses on loopback (``--port 0``), always killed at teardown."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import REPO

STARTUP_DEADLINE_S = 60.0
_URL = re.compile(r"on (http://\S+/v1)")


def fn_model(name: str) -> dict[str, str]:
    """A ``backend: function`` model from :mod:`tests.serve.remote_fakes`."""
    return {"backend": "function", "callable": f"tests.serve.remote_fakes:{name}"}


def write_team(path: Path, data: dict[str, Any]) -> Path:
    """Write a team file: ``data`` over a minimal team (demo planner, no long-term memory)."""
    team: dict[str, Any] = {
        "name": "served",
        "state_dir": str(path.parent / f"{path.stem}-state"),
        "memory": {"long_term": False},
        "planner": {"model": "planner"},
    }
    team.update(data)
    team["models"] = {
        "planner": {"backend": "function", "callable": "tessera.testing.demo:planner"},
        **data["models"],
    }
    path.write_text(yaml.safe_dump(team))
    return path


@dataclass
class Served:
    """One ``tessera serve`` process."""

    proc: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def health(self, key: str | None = None) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.root}/health")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)  # type: ignore[no-any-return]

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, connections in flight are cut."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


class Servers:
    """Starts ``tessera serve`` processes and stops every one of them at teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[Served] = []

    def start(self, *args: str, env: dict[str, str] | None = None, key: str | None = None) -> Served:
        """``tessera serve ARGS`` (``--port 0`` unless ARGS has a port); returns once it answers ``/health``."""
        return self.start_many([(list(args), env or {})], key=key)[0]

    def start_many(
        self, specs: list[tuple[list[str], dict[str, str]]], key: str | None = None
    ) -> list[Served]:
        """Start several servers at once (each ``(args, env)``) and wait for all of them."""
        started = []
        for args, env in specs:
            n = len(self.running) + len(started)
            out, err = self.workdir / f"serve{n}.out", self.workdir / f"serve{n}.err"
            with out.open("wb") as o, err.open("wb") as e:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "tessera.cli", "serve", "--port", "0", *args],
                    stdout=o,
                    stderr=e,
                    cwd=REPO,
                    env={**os.environ, **env},
                )
            started.append((proc, out, err))
        served = [self._wait(proc, out, err, key) for proc, out, err in started]
        return served

    def _wait(self, proc: subprocess.Popen[bytes], out: Path, err: Path, key: str | None) -> Served:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            match = _URL.search(out.read_text())
            if match:
                served = Served(proc, match.group(1).replace("0.0.0.0", "127.0.0.1"), out, err)
                self.running.append(served)
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"tessera serve did not start (exit {proc.poll()}):\n{err.read_text()[-3000:]}")
            time.sleep(0.05)
        while True:
            try:
                served.health(key)
                return served
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"tessera serve did not answer /health:\n{err.read_text()[-3000:]}")
                time.sleep(0.05)

    def stop_all(self) -> None:
        for served in self.running:
            if served.proc.poll() is None:
                served.proc.terminate()
        for served in self.running:
            try:
                served.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                served.proc.kill()
                served.proc.wait(timeout=10)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    farm = Servers(tmp_path)
    try:
        yield farm
    finally:
        farm.stop_all()
