"""The ``ocr`` tool: the text in an image (tesseract) or a PDF (its text layer, else tesseract per page).

Images: png, jpg/jpeg, tiff/tif (every page), bmp, webp. PDFs: pypdf reads the embedded text layer; pages
without one (scans) are rasterized with ``pdftoppm`` (Debian: ``poppler-utils``) and read by tesseract, or
reported as skipped when ``pdftoppm`` is absent. Settings: ``tools.ocr.lang`` (e.g. ``eng+deu``) and
``tools.ocr.psm``.

Tesseract runs with ``OMP_THREAD_LIMIT=1`` unless the environment sets it: on a small machine its OpenMP
threads fight each other and one image takes several times longer. Only the tesseract subprocess gets the
setting; ``os.environ`` is left alone, as llama.cpp in this process uses OpenMP too.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import ChainMap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, StructuredTool

from tessera.errors import AgentRunError, MissingDependencyError, UserError
from tessera.tools.base import ToolEnv

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["IMAGE_SUFFIXES", "OcrResult", "args_from_instruction", "make_tool", "ocr_file", "run_for_agent"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
TIMEOUT_S = 300
"""The most one tesseract or pdftoppm call may take."""
PDF_DPI = 300

_INSTALL = 'pip install "tessera[ocr]"'
_NO_TESSERACT = "tesseract is not installed: apt-get install tesseract-ocr"
_SUFFIXES = "|".join(s.lstrip(".") for s in (*IMAGE_SUFFIXES, ".pdf"))
_QUOTED_PATH = re.compile(rf"""(["'`])([^"'`\n]+?\.(?:{_SUFFIXES}))\1""", re.IGNORECASE)
_BARE_PATH = re.compile(
    rf"""(?:^|(?<=[\s(<\[{{"'`=]))([^\s"'`<>()\[\]{{}},;=]+?\.(?:{_SUFFIXES}))(?![\w/\\])""", re.IGNORECASE
)
_LANG = re.compile(r"[A-Za-z0-9_/]+(?:\+[A-Za-z0-9_/]+)*")


@dataclass(frozen=True)
class OcrResult:
    """The text read from one file."""

    text: str
    path: Path
    lang: str
    pages: int
    method: str
    """``tesseract`` (an image), ``pdf-text`` (a PDF's text layer) or ``pdf-text+tesseract``."""
    seconds: float
    notes: tuple[str, ...] = field(default=())
    """Warnings, e.g. PDF pages skipped for lack of a text layer."""


def ocr_file(path: str | os.PathLike[str], *, lang: str = "eng", psm: int | None = None) -> OcrResult:
    """Read the text in an image or PDF file.

    Raises:
        UserError: the file is missing or not a readable image/PDF, or ``lang`` is malformed.
        MissingDependencyError: pytesseract, pillow, pypdf, tesseract or its language data is missing.
        AgentRunError: tesseract failed or ran past ``TIMEOUT_S``.
    """
    started = time.perf_counter()
    file = Path(os.fspath(path).removeprefix("file://")).expanduser()
    if not file.exists():
        raise UserError(f"no such file: {file}")
    if file.is_dir():
        raise UserError(f"{file} is a directory, not an image or PDF")
    if not _LANG.fullmatch(lang):
        raise UserError(f"invalid tesseract language {lang!r} (expected e.g. eng or eng+deu)")
    if file.suffix.lower() == ".pdf" or _head(file).startswith(b"%PDF-"):
        pages, method, notes = _read_pdf(file, lang, psm)
    else:
        pages = [_tesseract(image, lang, psm, file) for image in _load_images(file)]
        method, notes = "tesseract", []
    text = "\n\n".join(page for page in pages if page)
    return OcrResult(text, file, lang, len(pages), method, time.perf_counter() - started, tuple(notes))


def args_from_instruction(instruction: str) -> dict[str, Any]:
    """The ``ocr`` tool's arguments: the first image or PDF path in the instruction (may be quoted).

    Raises:
        ValueError: the instruction names no file with an image or PDF extension.
    """
    match = _QUOTED_PATH.search(instruction)
    found = match.group(2) if match else None
    if found is None and (match := _BARE_PATH.search(instruction)):
        found = match.group(1)
    if found is None:
        kinds = ", ".join(s.lstrip(".") for s in (*IMAGE_SUFFIXES, ".pdf"))
        raise ValueError(f"no image or PDF path (a file ending in {kinds}) in instruction {instruction!r}")
    return {"path": found}


def make_tool(env: ToolEnv) -> BaseTool:
    """The ``ocr`` tool, with the language and page segmentation mode of ``tools.ocr``."""
    settings = env.config.tools.ocr

    def ocr(path: str) -> str:
        """Read the text in an image (png, jpg, tiff, bmp, webp) or PDF file, given its path."""
        return _output(ocr_file(path, lang=settings.lang, psm=settings.psm))

    async def aocr(path: str) -> str:
        return await asyncio.to_thread(ocr, path)

    return StructuredTool.from_function(func=ocr, coroutine=aocr, name="ocr")


async def run_for_agent(env: ToolEnv, instruction: str) -> tuple[str, dict[str, Any]]:
    """Run ``ocr`` for a tool agent: the text read, and artifacts (source, lang, pages, method, seconds)."""
    args = args_from_instruction(instruction)
    settings = env.config.tools.ocr
    result = await asyncio.to_thread(ocr_file, args["path"], lang=settings.lang, psm=settings.psm)
    artifacts: dict[str, Any] = {
        "source": str(result.path),
        "lang": result.lang,
        "pages": result.pages,
        "method": result.method,
        "seconds": round(result.seconds, 3),
    }
    if result.notes:
        artifacts["notes"] = list(result.notes)
    return _output(result), artifacts


def _output(result: OcrResult) -> str:
    text = result.text or f"(no text found in {result.path})"
    return "\n\n".join([text, *(f"Note: {note}" for note in result.notes)])


def _head(file: Path) -> bytes:
    try:
        with file.open("rb") as handle:
            return handle.read(5)
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror or exc}") from None


def _load_images(file: Path) -> list[Image]:
    """The image's frames (every page of a TIFF), flattened onto white and ready for tesseract."""
    try:
        from PIL import Image as PILImage
        from PIL import ImageSequence
    except ImportError:
        raise MissingDependencyError(f"the ocr tool needs pillow: {_INSTALL}") from None
    try:
        with PILImage.open(file) as image:
            frames = ImageSequence.Iterator(image) if image.format == "TIFF" else [image]
            return [_flatten(frame) for frame in frames]
    except PILImage.UnidentifiedImageError:
        kinds = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
        raise UserError(f"cannot read image {file}: not an image ({kinds}) or PDF, or corrupt") from None
    except (OSError, SyntaxError, ValueError, EOFError, PILImage.DecompressionBombError) as exc:
        raise UserError(f"cannot read image {file}: {exc}") from None


def _flatten(frame: Image) -> Image:
    from PIL import Image as PILImage

    frame.load()
    if frame.mode in ("1", "L", "RGB"):
        return frame.copy()
    if frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info:
        rgba = frame.convert("RGBA")
        flat = PILImage.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return frame.convert("RGB")


def _pytesseract() -> Any:
    try:
        import pytesseract  # type: ignore[import-untyped]
    except ImportError:
        raise MissingDependencyError(f"the ocr tool needs pytesseract: {_INSTALL}") from None
    module = pytesseract.pytesseract
    if getattr(module, "environ", None) is os.environ:
        module.environ = ChainMap(os.environ, {"OMP_THREAD_LIMIT": "1"})
    return pytesseract


def _tesseract(image: Image, lang: str, psm: int | None, file: Path) -> str:
    pytesseract = _pytesseract()
    _check_languages(lang)
    config = f"--psm {psm}" if psm is not None else ""
    try:
        text: str = pytesseract.image_to_string(image, lang=lang, config=config, timeout=TIMEOUT_S)
    except pytesseract.TesseractNotFoundError:
        raise MissingDependencyError(_NO_TESSERACT) from None
    except pytesseract.TesseractError as exc:
        raise AgentRunError(f"tesseract failed on {file}: {exc.message or f'exit {exc.status}'}") from None
    except RuntimeError as exc:
        if "timeout" not in str(exc):
            raise
        raise AgentRunError(f"tesseract took more than {TIMEOUT_S} s on {file}") from None
    return text.replace("\f", "").strip()


def _check_languages(lang: str) -> None:
    """Raise when tesseract lacks one of ``lang``'s languages: it would skip them silently otherwise."""
    wanted = lang.split("+")
    if all(name in _installed_languages() for name in wanted):
        return
    _installed_languages.cache_clear()
    installed = _installed_languages()
    missing = [name for name in wanted if name not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{name.lower().replace('_', '-')}" for name in missing)
        raise MissingDependencyError(
            f"tesseract has no language data for {'+'.join(missing)} "
            f"(installed: {', '.join(sorted(installed)) or 'none'}): apt-get install {packages}"
        )


@functools.cache
def _installed_languages() -> frozenset[str]:
    pytesseract = _pytesseract()
    try:
        return frozenset(pytesseract.get_languages(config=""))
    except pytesseract.TesseractNotFoundError:
        raise MissingDependencyError(_NO_TESSERACT) from None


def _read_pdf(file: Path, lang: str, psm: int | None) -> tuple[list[str], str, list[str]]:
    """Each page's text layer; pages without one are rasterized and read by tesseract if possible."""
    try:
        from pypdf import PdfReader
    except ImportError:
        raise MissingDependencyError(f"the ocr tool needs pypdf for PDFs: {_INSTALL}") from None
    try:
        reader = PdfReader(file)
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of errors on a broken file
        raise UserError(f"cannot read PDF {file}: {exc}") from None
    scanned = [number for number, text in enumerate(pages, 1) if not text]
    if not scanned:
        return pages, "pdf-text", []
    if shutil.which("pdftoppm") is None:
        hint = "reading scanned PDF pages needs pdftoppm: apt-get install poppler-utils"
        if len(scanned) == len(pages):
            raise UserError(f"{file} has no text layer (a scanned PDF?); {hint}")
        listed = ", ".join(map(str, scanned))
        return pages, "pdf-text", [f"page(s) {listed} of {file.name} have no text layer, skipped; {hint}"]
    for number in scanned:
        pages[number - 1] = _tesseract(_rasterize(file, number), lang, psm, file)
    method = "tesseract" if len(scanned) == len(pages) else "pdf-text+tesseract"
    return pages, method, []


def _rasterize(file: Path, number: int) -> Image:
    from PIL import Image as PILImage

    with tempfile.TemporaryDirectory(prefix="tessera-ocr-") as tmp:
        prefix = Path(tmp) / "page"
        command = ["pdftoppm", "-r", str(PDF_DPI), "-gray", "-png", "-singlefile"]
        command += ["-f", str(number), "-l", str(number), str(file), str(prefix)]
        try:
            subprocess.run(command, capture_output=True, check=True, timeout=TIMEOUT_S)
        except subprocess.CalledProcessError as exc:
            reason = exc.stderr.decode(errors="replace").strip() or f"exit {exc.returncode}"
            raise UserError(f"cannot rasterize page {number} of {file}: {reason}") from None
        except subprocess.TimeoutExpired:
            raise AgentRunError(f"pdftoppm took more than {TIMEOUT_S} s on page {number} of {file}") from None
        with PILImage.open(prefix.with_suffix(".png")) as page:
            page.load()
            return page.copy()
