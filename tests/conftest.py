"""Shared fixtures: tiny real GGUF models made on the spot, the shared stories model, team files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
STORIES = SHARED / "models" / "stories260K.gguf"

os.environ.setdefault("TESSERA_QUIET", "1")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight llama GGUF with a byte-level tokenizer and a ChatML template."""
    pytest.importorskip("gguf", reason="the gguf package writes the test models: pip install gguf")
    from tessera.testing.tiny import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", seed=1)


@pytest.fixture(scope="session")
def stories_gguf() -> Path:
    """The real 260K-parameter TinyStories model from ../shared (skipped when absent)."""
    if not STORIES.is_file():
        pytest.skip(f"{STORIES} is absent (../shared is not beside the checkout)")
    return STORIES


def write_team(path: Path, models: dict[str, Any], **sections: Any) -> Path:
    """Write a minimal valid team file around ``models`` (the first model plans and specializes)."""
    import yaml

    first = next(iter(models))
    data: dict[str, Any] = {
        "name": "test",
        "state_dir": str(path.parent / "state"),
        "models": models,
        "planner": {"model": first},
        "specialists": {"general": {"description": "does things", "model": first}},
        "memory": {"long_term": False},  # tests/memory covers long-term memory
    }
    data.update(sections)
    path.write_text(yaml.safe_dump(data))
    return path


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``tessera ARGS`` in a fresh interpreter, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tessera.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=REPO,
    )
