"""Chunking: the line-range invariant on real files, headings, fences, Python definitions, overlap."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from tessera.errors import UserError
from tessera.memory import loaders
from tessera.memory.chunking import Chunk, chunk
from tessera.memory.loaders import Document, load

REPO = Path(__file__).resolve().parents[2]
REAL_FILES = ["README.md", "tessera/team.py", "tessera/cli/_app.py", "tessera/errors.py", "pyproject.toml"]
REAL_FILES += ["tessera/memory/loaders.py"]
SIZES = [(1500, 200), (400, 100), (200, 0), (120, 60)]


def doc_of(text: str, fmt: str = "markdown", kind: loaders.Kind = "prose") -> Document:
    return Document(Path("doc"), kind, fmt, text, None, "0" * 64)


def write(tmp_path: Path, name: str, text: str) -> Document:
    path = tmp_path / name
    path.write_text(text)
    return load(path)


def check_invariants(doc: Document, chunks: list[Chunk], max_chars: int) -> None:
    """The contract of chunk(): exact line ranges, no blank chunks, every line covered, size bound."""
    assert doc.text is not None
    lines = doc.text.split("\n")
    covered: set[int] = set()
    for piece in chunks:
        assert piece.start_line is not None and piece.end_line is not None
        assert 1 <= piece.start_line <= piece.end_line <= len(lines)
        joined = "\n".join(lines[piece.start_line - 1 : piece.end_line])
        if len(joined) > max_chars:  # a piece of one overlong line
            assert piece.start_line == piece.end_line
            assert piece.text in joined and piece.text == piece.text.strip()
        else:
            assert piece.text == joined
            assert lines[piece.start_line - 1].strip() and lines[piece.end_line - 1].strip()
        assert piece.text.strip()
        assert len(piece.text) <= max_chars
        covered.update(range(piece.start_line, piece.end_line + 1))
    assert {n for n, line in enumerate(lines, 1) if line.strip()} <= covered


@pytest.mark.parametrize("name", REAL_FILES)
@pytest.mark.parametrize(("max_chars", "overlap"), SIZES)
def test_chunks_of_real_files_are_exact_line_ranges(name: str, max_chars: int, overlap: int) -> None:
    doc = load(REPO / name)
    chunks = chunk(doc, max_chars=max_chars, overlap=overlap)
    assert chunks
    check_invariants(doc, chunks, max_chars)


@pytest.mark.parametrize("name", REAL_FILES)
def test_without_overlap_line_ranges_never_intersect(name: str) -> None:
    chunks = chunk(load(REPO / name), max_chars=300, overlap=0)
    previous_end = 0
    for piece in chunks:
        assert piece.start_line is not None and piece.end_line is not None
        assert piece.start_line > previous_end or piece.start_line == piece.end_line == previous_end  # pieces
        previous_end = piece.end_line


def test_overlap_repeats_trailing_whole_lines_within_a_section() -> None:
    sentences = [f"Line {n} says something short." for n in range(1, 41)]
    text = "# Notes\n\n" + "\n".join(sentences) + "\n\n# Other\n\nTail paragraph."
    doc = doc_of(text)
    lines = text.split("\n")
    chunks = chunk(doc, max_chars=300, overlap=100)
    check_invariants(doc, chunks, 300)
    notes = [c for c in chunks if c.heading == "Notes"]
    assert len(notes) > 2
    for before, after in zip(notes, notes[1:], strict=False):
        assert before.start_line is not None and before.end_line is not None and after.start_line is not None
        shared = "\n".join(lines[after.start_line - 1 : before.end_line])
        assert before.start_line < after.start_line <= before.end_line
        assert len(shared) <= 100
        one_more = "\n".join(lines[after.start_line - 2 : before.end_line])
        assert len(one_more) > 100 or after.start_line - 1 == before.start_line  # as much as fits
    other = [c for c in chunks if c.heading == "Other"]
    assert [c.location for c in other] == ["44-46"]  # never overlaps into another section


def test_overlap_is_dropped_when_it_would_split_a_block_that_fits_alone() -> None:
    fence = "```python\n" + "\n".join(f"x{n} = {n}" for n in range(12)) + "\n```"
    text = "Intro line one.\nIntro line two.\n\n" + fence + "\n"
    chunks = chunk(doc_of(text), max_chars=len(fence) + 5, overlap=40)
    assert [c.location for c in chunks] == ["1-2", "4-17"]
    assert chunks[1].text == fence


def test_markdown_sections_are_never_mixed_and_carry_their_path() -> None:
    text = """Preamble text.

# Guide

## Install

Run pip.

### From source

Clone it.
```
# not a heading
```

## Use

Call it.

Use it
======
Setext paragraph.
"""
    chunks = chunk(doc_of(text), max_chars=1500, overlap=200)
    assert [(c.heading, c.location) for c in chunks] == [
        (None, "1"),
        ("Guide > Install", "3-7"),  # the empty "# Guide" joins its first subsection
        ("Guide > Install > From source", "9-14"),
        ("Guide > Use", "16-18"),
        ("Use it", "20-22"),
    ]
    assert chunks[2].text == "### From source\n\nClone it.\n```\n# not a heading\n```"


def test_fenced_block_is_kept_whole_when_it_fits() -> None:
    code = "\n".join(["```bash", "echo one", "", "echo two", "", "echo three", "```"])
    paragraph = "Some words here. " * 2
    text = f"# Run\n\n{paragraph.strip()}\n\n{code}\n\n{paragraph.strip()}\n"
    doc = doc_of(text)
    for max_chars in (len(code), len(code) + 30, 200):
        chunks = chunk(doc, max_chars=max_chars, overlap=0)
        check_invariants(doc, chunks, max_chars)
        assert any(code in c.text for c in chunks)
        assert not any(c.end_line is not None and 5 <= c.end_line < 11 for c in chunks)


def test_fenced_block_longer_than_max_chars_is_split() -> None:
    code = "```\n" + "\n".join(f"line {n}" for n in range(60)) + "\n```"
    doc = doc_of(code)
    chunks = chunk(doc, max_chars=100, overlap=0)
    assert len(chunks) > 3
    check_invariants(doc, chunks, 100)


def test_rst_titles_by_adornment_style() -> None:
    text = """=======
 Manual
=======

Intro.

Setup
=====

Install it.

Details
-------

More.

Usage
=====

Use it.
"""
    chunks = chunk(doc_of(text, "rst"), max_chars=1500, overlap=0)
    assert [(c.heading, c.location) for c in chunks] == [
        ("Manual", "1-5"),
        ("Manual > Setup", "7-10"),
        ("Manual > Setup > Details", "12-15"),
        ("Manual > Usage", "17-20"),
    ]


def test_long_paragraph_splits_at_sentence_lines() -> None:
    lines = [f"Sentence number {n} ends here." if n % 3 == 0 else f"words for line {n}" for n in range(60)]
    doc = doc_of("\n".join(lines))
    chunks = chunk(doc, max_chars=250, overlap=0)
    check_invariants(doc, chunks, 250)
    for piece in chunks[:-1]:
        assert piece.text.endswith("ends here.")


def test_an_overlong_line_is_cut_at_sentences_with_sentence_overlap() -> None:
    sentences = [f"Sentence {n} has a few words in it." for n in range(40)]
    line = " ".join(sentences)
    doc = doc_of(f"# Big\n\n{line}\n")
    chunks = chunk(doc, max_chars=200, overlap=80)
    check_invariants(doc, chunks, 200)
    pieces = [c for c in chunks if c.start_line == 3]
    assert len(pieces) > 5
    for before, after in zip(pieces, pieces[1:], strict=False):
        assert before.text.endswith(".") and after.text.startswith("Sentence")
        assert (
            after.text.split(".")[0] + "." in before.text
        )  # starts with the previous piece's last sentence(s)
    for sentence in sentences:
        assert any(sentence in p.text for p in pieces)


def test_a_line_without_spaces_is_cut_anywhere() -> None:
    doc = doc_of("x" * 1000, "text")
    chunks = chunk(doc, max_chars=300, overlap=50)
    assert "".join(c.text for c in chunks) == "x" * 1000
    assert [len(c.text) for c in chunks] == [300, 300, 300, 100]


def function_spans(path: Path) -> dict[str, tuple[int, int]]:
    """Top-level definitions: name -> (first line with decorators, last line)."""
    tree = ast.parse(path.read_text())
    spans = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            spans[f"{kind} {node.name}"] = (first, node.end_lineno)
    return spans


@pytest.mark.parametrize("name", ["tessera/errors.py", "tessera/memory/loaders.py", "tessera/cli/_app.py"])
def test_python_definitions_are_their_own_chunks(name: str) -> None:
    path = REPO / name
    doc = load(path)
    lines = path.read_text().split("\n")
    chunks = chunk(doc, max_chars=1500, overlap=200)
    by_heading = {}
    for piece in chunks:
        by_heading.setdefault(piece.heading, []).append(piece)
    for heading, (first, last) in function_spans(path).items():
        if len("\n".join(lines[first - 1 : last])) > 1400:
            continue
        [piece] = by_heading[heading]
        assert piece.end_line == last
        assert piece.start_line is not None and piece.start_line <= first
        above = lines[piece.start_line - 1 : first - 1]
        assert all(not line.strip() or line.lstrip().startswith("#") for line in above)


def test_python_chunk_matches_inspect_source() -> None:
    chunks = chunk(load(REPO / "tessera/memory/loaders.py"))
    for function in (loaders.file_format, loaders.load, loaders.html_to_text):
        source, first = inspect.getsourcelines(function)
        [piece] = [c for c in chunks if c.heading == f"def {function.__name__}"]
        assert (piece.start_line, piece.end_line) == (first, first + len(source) - 1)
        assert piece.text == "".join(source).rstrip("\n")


BIG_MODULE = '''"""A module."""

import os

# Comment about helper.
@staticmethod
def helper():
    return 1


CONSTANT = 3


class Big:
    """A class too long for one chunk."""

    size = 10

    # -- reading -----

    def alpha(self):
        return "{alpha}"

    @property
    def beta(self):
        # explain beta
        return "{beta}"

    limit = 4

    class Inner:
        pass


def tail():
    return os.sep
'''


def test_python_class_longer_than_max_chars_is_cut_into_methods(tmp_path: Path) -> None:
    source = BIG_MODULE.replace("{alpha}", "a" * 120).replace("{beta}", "b" * 120)
    doc = write(tmp_path, "big.py", source)
    chunks = chunk(doc, max_chars=200, overlap=0)
    check_invariants(doc, chunks, 200)
    assert [(c.heading, c.location) for c in chunks] == [
        (None, "1-3"),
        ("def helper", "5-8"),
        (None, "11"),
        ("class Big", "14-17"),
        ("class Big > def alpha", "19-22"),
        ("class Big > def beta", "24-27"),
        ("class Big", "29"),
        ("class Big > class Inner", "31-32"),
        ("def tail", "35-36"),
    ]


def test_a_long_python_function_is_cut_between_statements(tmp_path: Path) -> None:
    body = "\n".join(f"    value_{n} = call(\n        {n},\n        'text {n}',\n    )" for n in range(30))
    doc = write(tmp_path, "long.py", f"def long():\n{body}\n    return value_0\n")
    chunks = chunk(doc, max_chars=300, overlap=0)
    check_invariants(doc, chunks, 300)
    assert len(chunks) > 5 and {c.heading for c in chunks} == {"def long"}
    for piece in chunks:
        assert piece.text.rstrip().endswith(")") or piece.text.endswith("return value_0")


def test_python_that_does_not_parse_falls_back_to_the_generic_splitter(tmp_path: Path) -> None:
    source = "def broken(:\n    pass\n\n\ndef fine():\n    return 1\n"
    doc = write(tmp_path, "broken.py", source)
    chunks = chunk(doc, max_chars=40, overlap=0)
    check_invariants(doc, chunks, 40)
    assert [(c.heading, c.location) for c in chunks] == [("def broken", "1-2"), ("def fine()", "5-6")]


GO_SOURCE = """package main

import "fmt"

// greet says hello.
func greet(name string) string {
\tmsg := "hello " + name

\treturn msg
}

type Point struct {
\tX, Y int
}

func main() {
\tfmt.Println(greet("world"))
}
"""


def test_generic_code_breaks_between_top_level_blocks(tmp_path: Path) -> None:
    doc = write(tmp_path, "main.go", GO_SOURCE)
    small = chunk(doc, max_chars=100, overlap=0)
    check_invariants(doc, small, 100)
    assert [(c.heading, c.location) for c in small] == [
        (None, "1-3"),
        ("func greet(name string) string", "5-10"),
        ("type Point struct", "12-18"),  # small blocks are packed together
    ]
    packed = chunk(doc, max_chars=1500, overlap=0)
    assert [c.location for c in packed] == ["1-18"]


def test_toml_chunks_are_labelled_by_table() -> None:
    chunks = chunk(load(REPO / "pyproject.toml"), max_chars=400, overlap=0)
    assert chunks[0].heading == "[build-system]"
    assert all(c.heading is None or c.heading.startswith("[") for c in chunks)
    assert any(c.heading == "[tool.mypy]" for c in chunks)


def test_pdf_documents_chunk_per_page() -> None:
    pages = ["Page one.\nStill one.", "", "Third page " * 30]
    doc = Document(Path("x.pdf"), "pdf", "pdf", None, pages, "0" * 64)
    chunks = chunk(doc, max_chars=200, overlap=0)
    assert [c.page for c in chunks][:1] == [1] and {c.page for c in chunks} == {1, 3}
    assert chunks[0].text == "Page one.\nStill one." and chunks[-1].location == "p3"
    assert all(c.start_line is None and c.end_line is None and len(c.text) <= 200 for c in chunks)


def test_location_and_blank_documents() -> None:
    assert Chunk("x", 40, 62).location == "40-62"
    assert Chunk("x", 7, 7).location == "7"
    assert Chunk("x", page=3).location == "p3"
    assert Chunk("x").location == ""
    assert chunk(doc_of("")) == []
    assert chunk(doc_of("\n  \n\t\n")) == []
    assert chunk(doc_of("\n\n", "python", "code")) == []


@pytest.mark.parametrize(("max_chars", "overlap"), [(10, 0), (100, 51), (100, -1)])
def test_bad_sizes_are_user_errors(max_chars: int, overlap: int) -> None:
    with pytest.raises(UserError, match="chunk"):
        chunk(doc_of("text"), max_chars=max_chars, overlap=overlap)
