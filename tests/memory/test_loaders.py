"""Finding files and loading them: ignore globs, .tesseraignore, text, HTML and real PDFs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from tessera.errors import UserError
from tessera.memory.chunking import chunk
from tessera.memory.loaders import (
    DEFAULT_IGNORE,
    IGNORE_FILE,
    SUPPORTED,
    BadFile,
    DiscoverStats,
    discover,
    file_format,
    html_to_text,
    load,
)


def text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF written by hand: one Helvetica text line per string, one page per list."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * k} 0 R" for k in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for k, lines in enumerate(pages):
        operators = ["BT", "/F1 12 Tf", "16 TL", "72 720 Td", *(f"({line}) Tj T*" for line in lines), "ET"]
        stream = "\n".join(operators).encode()
        resources = "/Resources << /Font << /F1 3 0 R >> >>"
        page = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] {resources} /Contents {5 + 2 * k} 0 R >>"
        )
        objects.append(page.encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def encrypted_copy(source: Path, target: Path, user_password: str) -> Path:
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    with target.open("wb") as file:
        writer.write(file)
    return target


def make_tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n")


def relative(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


# --- discover ----------------------------------------------------------------------------------------------


def test_default_ignores_cover_the_usual_clutter() -> None:
    for glob in [
        ".git",
        "__pycache__",
        "node_modules",
        ".venv",
        "venv",
        "*.pyc",
        "build",
        "dist",
        "*.egg-info",
    ]:
        assert glob in DEFAULT_IGNORE
    assert ".*" in DEFAULT_IGNORE  # every hidden file and folder
    assert {".md", ".rst", ".txt", ".html"} <= SUPPORTED["prose"]
    assert {".py", ".go", ".rs", ".ts", ".toml"} <= SUPPORTED["code"]
    assert SUPPORTED["pdf"] == {".pdf"}
    assert file_format(Path("README.MD")) == ("prose", "markdown")
    assert file_format(Path("photo.png")) is None


def test_discover_walks_nested_folders_in_sorted_order_skipping_ignored_and_unsupported(
    tmp_path: Path,
) -> None:
    make_tree(
        tmp_path,
        [
            "b.md", "a.txt", "c/z.py", "c/deeper/d.rst", "ab/e.html", "z.png", ".hidden/x.md", ".env.md",
            ".git/config.md", "node_modules/m.js", "__pycache__/x.py", "build/out.md", "pkg.egg-info/PKG.md",
            "venv/lib.py", "x.pyc", "Makefile",
        ],
    )  # fmt: skip
    stats = DiscoverStats()
    found = list(discover([tmp_path], stats=stats))
    assert relative(found, tmp_path) == ["a.txt", "ab/e.html", "b.md", "c/deeper/d.rst", "c/z.py"]
    assert stats.unsupported == 2  # z.png, Makefile
    assert stats.ignored == 9
    assert list(discover([tmp_path])) == found  # deterministic


def test_discover_yields_given_files_whatever_their_suffix_and_each_file_once(tmp_path: Path) -> None:
    make_tree(tmp_path, ["notes/a.md", "notes/b.md", "NOTES", ".hidden/c.md"])
    given = [
        tmp_path / "NOTES",
        tmp_path / "notes",
        tmp_path / "notes" / "a.md",
        tmp_path / ".hidden" / "c.md",
    ]
    assert relative(list(discover(given)), tmp_path) == ["NOTES", "notes/a.md", "notes/b.md", ".hidden/c.md"]


def test_discover_a_hidden_root_folder_is_walked(tmp_path: Path) -> None:
    make_tree(tmp_path, [".notes/a.md"])
    assert relative(list(discover([tmp_path / ".notes"])), tmp_path) == [".notes/a.md"]


def test_ignore_globs_match_components_or_relative_paths(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        [
            "a.md",
            "a.txt",
            "docs/old/x.md",
            "docs/new/old.md",
            "docs/keep.md",
            "sub/old/y.md",
            "notes.md/in.md",
            "x/notes.md",
        ],
    )
    found = list(discover([tmp_path], [*DEFAULT_IGNORE, "*.txt", "docs/old", "notes.md/", "/sub"]))
    assert relative(found, tmp_path) == ["a.md", "docs/keep.md", "docs/new/old.md", "x/notes.md"]
    found = list(discover([tmp_path], ["old"]))  # a bare name matches that component anywhere
    assert relative(found, tmp_path) == [
        "a.md",
        "a.txt",
        "docs/keep.md",
        "docs/new/old.md",
        "notes.md/in.md",
        "x/notes.md",
    ]


def test_tesseraignore_in_a_walked_folder_is_honoured(tmp_path: Path) -> None:
    make_tree(
        tmp_path, ["top.md", "guide.rst", "drafts/a.md", "docs/top.md", "docs/b.md", "docs/private/p.md"]
    )
    (tmp_path / IGNORE_FILE).write_text("# my ignores\n\n*.rst\ndrafts/\n/top.md\n  docs/private  \n")
    found = list(discover([tmp_path]))
    assert relative(found, tmp_path) == ["docs/b.md", "docs/top.md"]


def test_tesseraignore_with_negation_is_refused_up_front(tmp_path: Path) -> None:
    (tmp_path / IGNORE_FILE).write_text("*.md\n!keep.md\n")
    with pytest.raises(UserError, match=r"\.tesseraignore:2: negated patterns \('!'\) are not supported"):
        discover([tmp_path])


def test_missing_path_is_an_error_before_anything_is_yielded(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("a")
    missing = tmp_path / "nope"
    with pytest.raises(UserError) as caught:
        discover([tmp_path, missing])  # no iteration needed
    assert str(caught.value) == f"{missing}: no such file or folder"


def test_symlinked_folders_are_not_followed_so_loops_end(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a.md", "sub/b.md"])
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    os.symlink(tmp_path / "sub", tmp_path / "alias")
    os.symlink(tmp_path / "a.md", tmp_path / "z-link.md")
    os.symlink(tmp_path / "gone.md", tmp_path / "broken.md")
    found = list(discover([tmp_path]))
    assert relative(found, tmp_path) == ["a.md", "sub/b.md"]  # z-link.md is a.md again


# --- load: text ----------------------------------------------------------------------------------------------


def test_load_markdown(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_bytes("# Guide\n\nHello, wörld.\n".encode())
    doc = load(path)
    assert (doc.path, doc.kind, doc.format, doc.pages) == (path, "prose", "markdown", None)
    assert doc.text == "# Guide\n\nHello, wörld.\n"
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_drops_a_bom_and_crlf_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "main.go"
    path.write_bytes(b"\xef\xbb\xbfpackage main\r\n\r\nfunc main() {}\r\n")
    doc = load(path)
    assert (doc.kind, doc.format) == ("code", "go")
    assert doc.text == "package main\n\nfunc main() {}\n"


def test_load_reads_an_unknown_suffix_as_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "NOTES"
    path.write_text("just text\n")
    doc = load(path)
    assert (doc.kind, doc.format, doc.text) == ("prose", "text", "just text\n")


def test_empty_file_loads_and_gives_no_chunks(tmp_path: Path) -> None:
    path = tmp_path / "empty.md"
    path.write_text("")
    assert chunk(load(path)) == []


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("data.txt", b"abc\x00def", "binary file"),
        ("latin.md", "café crème".encode("latin-1"), "not UTF-8 text"),
        ("utf16.txt", "hello".encode("utf-16"), "binary file"),
    ],
)
def test_bad_text_files(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(BadFile) as caught:
        load(path)
    assert str(caught.value) == reason
    assert caught.value.path == path
    assert isinstance(caught.value, UserError)


def test_an_image_given_directly_is_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "picture.dat"
    Image.new("RGB", (8, 8), "red").save(path, format="PNG")
    with pytest.raises(BadFile, match="^binary file$"):
        load(path)


# --- load: html ----------------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><title>Demo page</title>
<style>
body { color: red; }
</style>
<script>var hidden = "do not index";
console.log(hidden);</script>
</head>
<body>
<h1>Main  title</h1>
<p>First <b>bold</b> paragraph &amp; more
continues here.</p>

<h2 class="x">
  Sub part
</h2>
<pre>  indented
    code</pre>
<!-- a comment -->
<ul><li>one</li><li>two</li></ul>
</body></html>
"""


def test_html_text_keeps_source_lines_and_drops_scripts_and_styles() -> None:
    lines = html_to_text(PAGE).split("\n")
    assert len(lines) == len(PAGE.split("\n"))
    assert lines[1] == "Demo page"
    assert lines[3] == "" and lines[5] == "" and lines[6] == ""  # style and script bodies
    assert lines[9] == "# Main title"
    assert lines[10] == "First bold paragraph & more"
    assert lines[11] == "continues here."
    assert lines[13:16] == ["", "## Sub part", ""]
    assert lines[16:18] == ["  indented", "    code"]
    assert lines[18] == ""
    assert lines[19] == "one two"
    assert "hidden" not in html_to_text(PAGE) and "color" not in html_to_text(PAGE)


def test_html_chunks_cite_source_lines_under_their_headings(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(PAGE)
    doc = load(path)
    assert (doc.kind, doc.format) == ("prose", "html")
    chunks = chunk(doc, max_chars=80, overlap=0)
    assert [(c.heading, c.location) for c in chunks] == [
        (None, "2"),
        ("Main title", "10-12"),
        ("Main title > Sub part", "15-20"),
    ]
    assert chunks[1].text == "# Main title\nFirst bold paragraph & more\ncontinues here."


# --- load: pdf ------------------------------------------------------------------------------------------------


@pytest.fixture
def two_page_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(
        text_pdf([["Quarterly report.", "Revenue grew by ten percent."], ["Outlook is stable."]])
    )
    return path


def test_pdf_pages_and_page_numbered_chunks(two_page_pdf: Path) -> None:
    doc = load(two_page_pdf)
    assert (doc.kind, doc.format, doc.text) == ("pdf", "pdf", None)
    assert doc.pages is not None and len(doc.pages) == 2
    assert "Revenue grew by ten percent." in doc.pages[0]
    chunks = chunk(doc)
    assert [(c.page, c.location, c.start_line, c.end_line) for c in chunks] == [
        (1, "p1", None, None),
        (2, "p2", None, None),
    ]
    assert chunks[0].text == "Quarterly report.\nRevenue grew by ten percent."
    assert chunks[1].text == "Outlook is stable."


def test_encrypted_pdf_is_a_bad_file(two_page_pdf: Path, tmp_path: Path) -> None:
    locked = encrypted_copy(two_page_pdf, tmp_path / "locked.pdf", user_password="secret")
    with pytest.raises(BadFile, match="^encrypted pdf$"):
        load(locked)


def test_pdf_encrypted_with_an_empty_user_password_opens(two_page_pdf: Path, tmp_path: Path) -> None:
    doc = load(encrypted_copy(two_page_pdf, tmp_path / "open.pdf", user_password=""))
    assert doc.pages is not None and "Outlook is stable." in doc.pages[1]


def test_broken_and_textless_pdfs_are_bad_files(tmp_path: Path, two_page_pdf: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nthis is not a pdf\n")
    with pytest.raises(BadFile, match=r"^unreadable pdf: \S"):
        load(broken)
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(two_page_pdf.read_bytes()[:200])
    with pytest.raises(BadFile, match=r"^unreadable pdf: "):
        load(truncated)
    scanned = tmp_path / "scanned.pdf"
    Image.new("RGB", (60, 60), "white").save(scanned, format="PDF")
    with pytest.raises(BadFile, match=r"^pdf has no text layer \(scanned\?\)$"):
        load(scanned)
