"""The ``ocr`` tool against the real tesseract: rendered text, image formats, PDFs and every error."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tessera import TeamConfig
from tessera.bench.asr import word_errors
from tessera.errors import MissingDependencyError, UserError
from tessera.tools import ocr
from tessera.tools.base import ToolEnv

pytest.importorskip("pytesseract", reason='the ocr extra is not installed: pip install "tessera[ocr]"')
PIL = pytest.importorskip("PIL", reason='the ocr extra is not installed: pip install "tessera[ocr]"')
if shutil.which("tesseract") is None:
    pytest.skip("tesseract is not installed: apt-get install tesseract-ocr", allow_module_level=True)

from PIL import Image, ImageDraw, ImageFont  # noqa: E402 - after the skips above

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Tessera reads 42 scanned pages in 3.5 seconds,",
    "then speaks the summary aloud: done!",
]
TRUTH = "\n".join(LINES)


def cer(found: str, truth: str) -> float:
    """Character error rate, whitespace runs counted as one space."""
    found, truth = " ".join(found.split()), " ".join(truth.split())
    return word_errors(truth, found) / len(truth)  # edit distance over characters


def render(lines: list[str], *, mode: str = "RGB", background: Any = "white") -> Image.Image:
    """Black DejaVu Sans text, 32 px, one line per entry."""
    if not FONT.is_file():
        pytest.skip(f"{FONT} is missing: apt-get install fonts-dejavu-core")
    font = ImageFont.truetype(str(FONT), 32)
    width = 40 + max(int(font.getlength(line)) for line in lines)
    image = Image.new(mode, (width, 40 + 48 * len(lines)), background)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((20, 20 + 48 * i), line, font=font, fill="black")
    return image


def config(**ocr_settings: Any) -> TeamConfig:
    return TeamConfig.from_dict(
        {
            "name": "t",
            "models": {"m": {"backend": "function", "callable": "tests.fakes:echo"}},
            "planner": {"model": "m"},
            "specialists": {"reader": {"description": "reads images", "model": "m"}},
            "tools": {"ocr": ocr_settings},
        }
    )


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ocr") / "scan.png"
    render(LINES).save(path)
    return path


def test_reads_rendered_text_with_low_character_error_rate(scan: Path) -> None:
    ocr.ocr_file(scan)  # warm the page cache; the timing below is a steady-state call
    started = time.perf_counter()
    result = ocr.ocr_file(scan)
    elapsed = time.perf_counter() - started
    print(f"\nOCR of {scan.name}: {elapsed:.2f} s, CER {cer(result.text, TRUTH):.2%}")
    assert cer(result.text, TRUTH) <= 0.02, result.text
    assert (result.path, result.lang, result.pages, result.method) == (scan, "eng", 1, "tesseract")


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".tiff", ".tif", ".bmp", ".webp"])
def test_reads_other_image_formats(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"scan{suffix}"
    render(LINES).save(path, **({"quality": 90} if suffix in (".jpg", ".jpeg") else {}))
    assert cer(ocr.ocr_file(path).text, TRUTH) <= 0.02


def test_reads_every_page_of_a_tiff(tmp_path: Path) -> None:
    path = tmp_path / "pages.tiff"
    render(LINES[:1]).save(path, save_all=True, append_images=[render(LINES[1:])])
    result = ocr.ocr_file(path)
    assert result.pages == 2
    assert cer(result.text, TRUTH) <= 0.02


def test_flattens_transparency_onto_white(tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    render(LINES, mode="RGBA", background=(0, 0, 0, 0)).save(path)
    assert cer(ocr.ocr_file(path).text, TRUTH) <= 0.02


def test_psm_setting_is_passed_to_tesseract(tmp_path: Path) -> None:
    path = tmp_path / "line.png"
    render(LINES[:1]).save(path)
    assert cer(ocr.ocr_file(path, psm=7).text, LINES[0]) <= 0.02  # 7: a single text line


def text_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text layer holds ``lines`` (Helvetica), written by hand."""
    escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
    content = "BT /F1 14 Tf 72 720 Td 20 TL " + " ".join(f"({line}) Tj T*" for line in escaped) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_reads_a_pdf_text_layer_without_tesseract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "doc.pdf"
    path.write_bytes(text_pdf(LINES))
    monkeypatch.setenv("PATH", path_without(tmp_path, "tesseract", "pdftoppm"))
    result = ocr.ocr_file(path)
    assert result.text == TRUTH
    assert (result.pages, result.method) == (1, "pdf-text")


def test_rasterizes_a_scanned_pdf(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is not installed: apt-get install poppler-utils")
    path = tmp_path / "scanned.pdf"
    render(LINES).save(path, resolution=100)
    result = ocr.ocr_file(path)
    assert result.method == "tesseract"
    assert cer(result.text, TRUTH) <= 0.02


def path_without(tmp_path: Path, *programs: str) -> str:
    """A PATH holding links to tesseract and pdftoppm, less ``programs``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in {"tesseract", "pdftoppm"} - set(programs):
        if found := shutil.which(name):
            (bin_dir / name).symlink_to(found)
    return str(bin_dir)


def test_scanned_pdf_without_pdftoppm_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "scanned.pdf"
    render(LINES).save(path)
    monkeypatch.setenv("PATH", path_without(tmp_path, "pdftoppm"))
    with pytest.raises(UserError, match=r"scanned\.pdf has no text layer .*apt-get install poppler-utils"):
        ocr.ocr_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^no such file: .*nope\.png$"):
        ocr.ocr_file(tmp_path / "nope.png")


def test_corrupt_images(tmp_path: Path, scan: Path) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all")
    with pytest.raises(UserError, match=r"^cannot read image .*garbage\.png: not an image"):
        ocr.ocr_file(garbage)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(scan.read_bytes()[: scan.stat().st_size // 2])
    with pytest.raises(UserError, match=r"^cannot read image .*truncated\.png: "):
        ocr.ocr_file(truncated)
    broken_pdf = tmp_path / "broken.pdf"
    broken_pdf.write_bytes(b"%PDF-1.4\nnothing else")
    with pytest.raises(UserError, match=r"^cannot read PDF .*broken\.pdf"):
        ocr.ocr_file(broken_pdf)


def test_unknown_language_names_the_package(scan: Path) -> None:
    with pytest.raises(
        MissingDependencyError, match=r"no language data for zzz .*apt-get install tesseract-ocr-zzz"
    ):
        ocr.ocr_file(scan, lang="eng+zzz")
    with pytest.raises(UserError, match="invalid tesseract language"):
        ocr.ocr_file(scan, lang="eng; rm -rf /")


def test_missing_tesseract(scan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", path_without(tmp_path, "tesseract"))
    with pytest.raises(
        MissingDependencyError, match=r"^tesseract is not installed: apt-get install tesseract-ocr$"
    ):
        ocr.ocr_file(scan)


def test_missing_pytesseract_says_which_extra(scan: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytesseract", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "tessera\[ocr\]"'):
        ocr.ocr_file(scan)


def test_tesseract_runs_with_one_openmp_thread_without_touching_os_environ(scan: Path) -> None:
    before = os.environ.get("OMP_THREAD_LIMIT")
    ocr.ocr_file(scan)
    import pytesseract

    assert os.environ.get("OMP_THREAD_LIMIT") == before
    assert pytesseract.pytesseract.environ["OMP_THREAD_LIMIT"] == (before or "1")


@pytest.mark.parametrize(
    ("instruction", "path"),
    [
        ("Read the text in /tmp/x/scan.png", "/tmp/x/scan.png"),
        ("Read the text in /tmp/x/scan.png.", "/tmp/x/scan.png"),
        ('Transcribe "/tmp/my scans/page 1.JPG" verbatim', "/tmp/my scans/page 1.JPG"),
        ("OCR the receipt (receipts/march.tiff), then total it", "receipts/march.tiff"),
        ("What does `~/Downloads/form.pdf` say?", "~/Downloads/form.pdf"),
        ("Extract text from scan.webp; ignore the logo", "scan.webp"),
        ("Read image=/data/a.bmp", "/data/a.bmp"),
    ],
)
def test_args_from_instruction_finds_the_path(instruction: str, path: str) -> None:
    assert ocr.args_from_instruction(instruction) == {"path": path}


@pytest.mark.parametrize(
    "instruction", ["Read the text in the scan", "Open report.docx", "see scan.png/notes"]
)
def test_args_from_instruction_without_a_path(instruction: str) -> None:
    with pytest.raises(
        ValueError, match=r"^no image or PDF path \(a file ending in png, jpg, .*\) in instruction"
    ):
        ocr.args_from_instruction(instruction)


async def test_tool_and_agent_entry_point(scan: Path, tmp_path: Path) -> None:
    env = ToolEnv(config(lang="eng", psm=3), tmp_path)
    tool = ocr.make_tool(env)
    assert tool.name == "ocr" and list(tool.args) == ["path"]
    assert cer(await tool.ainvoke({"path": str(scan)}), TRUTH) <= 0.02

    text, artifacts = await ocr.run_for_agent(env, f"Read the text in {scan}.")
    assert cer(text, TRUTH) <= 0.02
    assert artifacts["source"] == str(scan)
    assert (artifacts["lang"], artifacts["pages"], artifacts["method"]) == ("eng", 1, "tesseract")
    with pytest.raises(ValueError, match="no image or PDF path"):
        await ocr.run_for_agent(env, "Read the text")


async def test_tool_reports_a_blank_image(tmp_path: Path) -> None:
    path = tmp_path / "blank.png"
    Image.new("RGB", (200, 100), "white").save(path)
    assert await ocr.make_tool(ToolEnv(config(), tmp_path)).ainvoke({"path": str(path)}) == (
        f"(no text found in {path})"
    )
