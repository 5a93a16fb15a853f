"""The examples run as documented."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import REPO


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_graph_reviews_before_answering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_STATE_DIR", str(tmp_path))  # no memories from other runs of the team
    final = asyncio.run(load("custom_graph").main("Write a haiku about the sea. Hi."))
    statuses = {r.id: r.status for r in final["results"].values()}
    assert statuses == {"s1": "done", "s2": "failed"}
    assert final["notes"] == ["review failed s2: too short"]
    assert final["answer"] == "echo: Write a haiku about the sea."
