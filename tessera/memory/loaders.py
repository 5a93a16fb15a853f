"""Finding and reading the files a knowledge base is built from.

:func:`discover` turns files and folders into the files to ingest; :func:`load` reads one into a
:class:`Document`, which :func:`tessera.memory.chunking.chunk` cuts into chunks.

Line numbers: ``Document.text`` is the file decoded as UTF-8 (a BOM dropped, CRLF turned into LF), so line
N of ``text.split("\\n")`` is line N of the file. HTML keeps that rule: its text is the page's visible text
laid out line by line with the source, so line N holds the text of source line N (tags, comments, scripts
and styles removed, whitespace collapsed, ``<h1>``..``<h6>`` marked ``#``..``######`` when the heading
starts its line). Citations of an HTML chunk therefore point at the ``.html`` file's own lines; the price is
that a minified one-line page has no headings and is cut by sentences.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

from tessera.errors import MissingDependencyError, UserError

__all__ = [
    "DEFAULT_IGNORE",
    "FORMATS",
    "IGNORE_FILE",
    "SUPPORTED",
    "BadFile",
    "DiscoverStats",
    "Document",
    "Kind",
    "discover",
    "file_format",
    "load",
]

Kind = Literal["prose", "code", "pdf"]

DEFAULT_IGNORE: tuple[str, ...] = (
    ".*",
    ".git",
    "__pycache__",
    "node_modules",
    ".venv",
    "venv",
    "*.pyc",
    "build",
    "dist",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
)
"""Globs skipped while walking folders (``.*`` covers every hidden file and folder)."""

IGNORE_FILE = ".tesseraignore"

_PROSE = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
}
_CODE = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".go": "go", ".rs": "rust",
    ".java": "java", ".kt": "kotlin", ".scala": "scala", ".swift": "swift", ".c": "c", ".h": "c",
    ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".cs": "csharp",
    ".rb": "ruby", ".php": "php", ".lua": "lua", ".sh": "shell", ".bash": "shell", ".sql": "sql",
    ".css": "css", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json",
}  # fmt: skip
FORMATS: dict[str, tuple[Kind, str]] = {
    **{suffix: ("prose", fmt) for suffix, fmt in _PROSE.items()},
    **{suffix: ("code", fmt) for suffix, fmt in _CODE.items()},
    ".pdf": ("pdf", "pdf"),
}
"""File suffix (lower case) to the document's kind and format."""

SUPPORTED: dict[Kind, frozenset[str]] = {
    kind: frozenset(s for s, (k, _) in FORMATS.items() if k == kind) for kind in ("prose", "code", "pdf")
}
"""The suffixes picked up while walking a folder, by kind."""

_BINARY_PROBE = 8192
_INSTALL_PDF = 'reading PDFs needs pypdf: pip install "tessera[ocr]"'


class BadFile(UserError):
    """A file that cannot be ingested. ``str(exc)`` is the one-line reason; ``path`` names the file.

    Reasons: ``binary file``, ``not UTF-8 text``, ``encrypted pdf``, ``unreadable pdf: <detail>`` and
    ``pdf has no text layer (scanned?)``. An empty file is not bad: it loads and gives no chunks.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Document:
    """One loaded file: ``text`` for prose and code, ``pages`` (one string per page) for PDFs."""

    path: Path
    kind: Kind
    format: str
    text: str | None
    pages: list[str] | None
    sha256: str


@dataclass
class DiscoverStats:
    """What :func:`discover` skipped while walking folders (files given directly are never skipped)."""

    ignored: int = 0
    unsupported: int = 0
    unreadable: int = 0


def file_format(path: Path) -> tuple[Kind, str] | None:
    """The kind and format a file's suffix stands for, or ``None`` when it is not supported."""
    return FORMATS.get(path.suffix.lower())


def discover(
    paths: Sequence[Path], ignore: Sequence[str] = DEFAULT_IGNORE, *, stats: DiscoverStats | None = None
) -> Iterator[Path]:
    """The files to ingest under ``paths``, each once, in a deterministic order.

    A file given directly is yielded whatever its suffix (:func:`load` decides). A folder is walked depth
    first with each folder's entries sorted by name; an entry is skipped when a glob of ``ignore`` or of the
    ``.tesseraignore`` at the top of the walked folder (not in its subfolders) matches it, or when its suffix
    is not in :data:`SUPPORTED`. Symlinked folders are not followed (no loops); symlinked files are. Folders
    that cannot be listed are skipped.

    Patterns (``ignore`` and ``.tesseraignore`` lines; blank lines and ``#`` comments are skipped): a glob
    without ``/`` is matched against every path component (``*.log``, ``drafts``); one with ``/`` against the
    path relative to the walked folder (``docs/old``, ``/notes.md``), where ``*`` may also match ``/``. A
    trailing ``/`` matches folders only. Negation (``!``) is not supported.

    Raises:
        UserError: a path does not exist, or a ``.tesseraignore`` uses ``!``. Raised at the call, before
            anything is yielded.
    """
    for path in paths:
        if not path.exists():
            raise UserError(f"{path}: no such file or folder")
    base = _compile(ignore, "ignore")
    rules = {path: base + _read_ignore_file(path) for path in paths if path.is_dir()}
    return _walk_all(paths, rules, stats if stats is not None else DiscoverStats())


@dataclass(frozen=True)
class _Pattern:
    glob: str
    relative: bool
    folders_only: bool

    def matches(self, relative_path: str, name: str, is_dir: bool) -> bool:
        if self.folders_only and not is_dir:
            return False
        return fnmatchcase(relative_path if self.relative else name, self.glob)


def _compile(patterns: Sequence[str], where: str) -> list[_Pattern]:
    compiled = []
    for number, raw in enumerate(patterns, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise UserError(f"{where}:{number}: negated patterns ('!') are not supported")
        folders_only = line.endswith("/")
        line = line.rstrip("/")
        while line.startswith("**/"):
            line = line[3:]
        relative = "/" in line
        if line.lstrip("/"):
            compiled.append(_Pattern(line.lstrip("/"), relative, folders_only))
    return compiled


def _read_ignore_file(folder: Path) -> list[_Pattern]:
    file = folder / IGNORE_FILE
    if not file.is_file():
        return []
    return _compile(file.read_text(encoding="utf-8", errors="replace").splitlines(), str(file))


def _walk_all(
    paths: Sequence[Path], rules: dict[Path, list[_Pattern]], stats: DiscoverStats
) -> Iterator[Path]:
    seen: set[Path] = set()
    for path in paths:
        found = _walk(path, rules[path], stats) if path in rules else iter([path])
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file


def _walk(root: Path, patterns: list[_Pattern], stats: DiscoverStats) -> Iterator[Path]:
    stack: list[tuple[str, os.DirEntry[str]]] = []

    def push(folder: Path, relative: str) -> None:
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name, reverse=True)
        except OSError:
            stats.unreadable += 1
            return
        stack.extend((f"{relative}{entry.name}", entry) for entry in entries)

    push(root, "")
    while stack:
        relative, entry = stack.pop()
        is_dir = entry.is_dir(follow_symlinks=False)
        if any(p.matches(relative, entry.name, is_dir) for p in patterns):
            stats.ignored += 1
        elif is_dir:
            push(Path(entry.path), relative + "/")
        elif entry.is_file():
            if file_format(Path(entry.name)) is None:
                stats.unsupported += 1
            else:
                yield Path(entry.path)


def load(path: Path) -> Document:
    """Read ``path`` into a :class:`Document` (see the module docstring for what its lines mean).

    The kind and format come from the suffix; a file with another suffix is read as plain text if it is
    text. ``sha256`` is the digest of the file's bytes.

    Raises:
        BadFile: the file is binary (a NUL byte in its first 8 KiB), not UTF-8, or an encrypted,
            broken or text-less PDF.
        MissingDependencyError: a PDF without pypdf installed.
        OSError: the file cannot be read.
    """
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    kind, fmt = file_format(path) or ("prose", "text")
    if kind == "pdf":
        return Document(path, kind, fmt, None, _pdf_pages(path, raw), digest)
    if b"\0" in raw[:_BINARY_PROBE]:
        raise BadFile(path, "binary file")
    try:
        text = raw.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError:
        raise BadFile(path, "not UTF-8 text") from None
    if fmt == "html":
        text = html_to_text(text)
    return Document(path, kind, fmt, text, None, digest)


def _pdf_pages(path: Path, raw: bytes) -> list[str]:
    try:
        from pypdf import PasswordType, PdfReader
    except ImportError:
        raise MissingDependencyError(_INSTALL_PDF) from None
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise BadFile(path, "encrypted pdf")
        pages = [(page.extract_text() or "") for page in reader.pages]
    except BadFile:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of errors on a broken file
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise BadFile(path, f"unreadable pdf: {detail}") from None
    pages = [page.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "") for page in pages]
    if pages and not any(page.strip() for page in pages):
        raise BadFile(path, "pdf has no text layer (scanned?)")
    return pages


def html_to_text(source: str) -> str:
    """The visible text of an HTML page, line N holding the text of source line N (module docstring)."""
    parser = _HtmlText(source.count("\n") + 1)
    parser.feed(source)
    parser.close()
    return parser.text()


_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript"})
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_INLINE_TAGS = frozenset(
    (
        "a abbr b bdi bdo cite code data dfn em i kbd mark q s samp small span strong sub sup time u var wbr"
    ).split()
)


class _HtmlText(HTMLParser):
    def __init__(self, line_count: int) -> None:
        super().__init__(convert_charrefs=False)
        self.lines: list[list[str]] = [[] for _ in range(line_count)]
        self.verbatim = [False] * line_count
        self.skipping = 0
        self.pre = 0
        self.heading = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag in _HEADINGS:
            self.heading = _HEADINGS[tag]
        elif tag == "pre":
            self.pre += 1
        self._separate(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _HEADINGS:
            self.heading = 0
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        self._separate(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._separate(tag)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        first = self.getpos()[0] - 1
        for offset, part in enumerate(data.split("\n")):
            self._emit(first + offset, part)

    def handle_entityref(self, name: str) -> None:
        self.handle_charref_text(unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.handle_charref_text(unescape(f"&#{name};"))

    def handle_charref_text(self, text: str) -> None:
        if not self.skipping:
            self._emit(self.getpos()[0] - 1, text.replace("\n", " "))

    def _separate(self, tag: str) -> None:
        if tag not in _INLINE_TAGS and not self.skipping and not self.pre:
            self._emit(self.getpos()[0] - 1, " ")

    def _emit(self, index: int, text: str) -> None:
        if not text or index >= len(self.lines):
            return
        parts = self.lines[index]
        if self.heading and text.strip():
            if not "".join(parts).strip():
                parts.append("#" * self.heading + " ")
            self.heading = 0
        parts.append(text)
        self.verbatim[index] = self.verbatim[index] or self.pre > 0

    def text(self) -> str:
        out = []
        for parts, verbatim in zip(self.lines, self.verbatim, strict=True):
            line = "".join(parts)
            out.append(line.rstrip() if verbatim else " ".join(line.split()))
        return "\n".join(out)
