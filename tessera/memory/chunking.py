"""Cutting a :class:`~tessera.memory.loaders.Document` into chunks along its structure.

Sections first: prose is cut at headings (markdown ``#`` and setext headings outside fenced code, rst and
plain-text underlined titles, the ``#`` lines of extracted HTML); Python at its top-level functions and
classes (with their decorators and the comments above; a class longer than ``max_chars`` is cut into its
methods), module-level code between them forming sections of its own. Other code is one section. Each
section is packed greedily: a chunk takes as many lines as fit in ``max_chars`` and ends at the best break
among them (a paragraph, statement or top-level block end over a sentence end over any line; inside a
fenced block or a Python statement only when nothing else fits).

Line ranges (text documents): a chunk is a run of whole lines of ``lines = doc.text.split("\\n")``:
``chunk.text == "\\n".join(lines[chunk.start_line - 1 : chunk.end_line])`` exactly, its first and last
lines are not blank and ``len(chunk.text) <= max_chars``. The exception is a line longer than ``max_chars``:
it is cut at sentence ends (else spaces, else anywhere) into pieces, chunks with ``start_line == end_line``
whose text is a stripped substring of that line. Every non-blank line is in some chunk. HTML lines are
those of ``doc.text``, which line up with the source (see :mod:`tessera.memory.loaders`).

Overlap, within a section only: after a chunk ending at line ``e``, the next starts at the earliest
non-blank line ``o`` after the previous chunk's first line such that lines ``o..e`` joined fit in
``overlap`` characters (none when line ``e`` alone does not). It is shrunk when the next new line would not
fit, and dropped when it would make the chunk end inside a fenced block or a statement that fits without
it. Pieces of an overlong line overlap by whole sentences (else words); none leads into them. With
``overlap=0`` chunks share no line (bar pieces of one line).

PDF: each page's text is packed like plain prose; chunks stay within a page and carry ``page`` but no line
numbers (the lines of extracted text mean nothing to a reader of the PDF).
"""

from __future__ import annotations

import ast
import re
import warnings
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace

from tessera.errors import UserError
from tessera.memory.loaders import Document

__all__ = ["Chunk", "chunk"]


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, with where it came from (module docstring: what the lines mean)."""

    text: str
    start_line: int | None = None
    end_line: int | None = None
    page: int | None = None
    heading: str | None = None

    @property
    def location(self) -> str:
        """``"40-62"``, ``"40"`` for one line, ``"p3"`` for a PDF page, ``""`` when unknown."""
        if self.page is not None:
            return f"p{self.page}"
        if self.start_line is None:
            return ""
        if self.end_line is None or self.end_line == self.start_line:
            return str(self.start_line)
        return f"{self.start_line}-{self.end_line}"


@dataclass(frozen=True)
class _Section:
    start: int  # 0-based, inclusive
    end: int  # 0-based, inclusive
    heading: str | None


_Scores = list[int]  # how good the end of each line is as a chunk's end: 0 (in a fence or statement) to 4
_MIN_CHARS = 40


def chunk(doc: Document, *, max_chars: int = 1500, overlap: int = 200) -> list[Chunk]:
    """Cut ``doc`` into chunks of at most ``max_chars`` characters (the module docstring has the rules).

    Raises:
        UserError: ``max_chars`` is below 40, or ``overlap`` is not between 0 and ``max_chars // 2``.
    """
    if max_chars < _MIN_CHARS:
        raise UserError(f"chunk size must be at least {_MIN_CHARS} characters, not {max_chars}")
    if not 0 <= overlap <= max_chars // 2:
        raise UserError(f"chunk overlap must be between 0 and {max_chars // 2}, not {overlap}")
    if doc.kind == "pdf":
        pages = [page.split("\n") for page in doc.pages or []]
        return [
            replace(piece, start_line=None, end_line=None, page=number)
            for number, lines in enumerate(pages, 1)
            for piece in _pack(lines, *_prose_structure(lines, "pdf"), max_chars, overlap)
        ]
    lines = (doc.text or "").split("\n")
    if doc.kind == "code":
        python = doc.format == "python" and "\r" not in (doc.text or "")  # ast counts a lone \r as a line end
        if python and (found := _python_structure(lines, max_chars)) is not None:
            return _pack(lines, *found, max_chars, overlap)
        scores, labels = _code_structure(lines, doc.format)
        return _pack(lines, [_Section(0, len(lines) - 1, None)], scores, max_chars, overlap, labels)
    return _pack(lines, *_prose_structure(lines, doc.format), max_chars, overlap)


# --- prose -------------------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}[ \t]*$")
_SENTENCE_LINE = re.compile(r"[.!?:;][\"')\]*_]*[ \t]*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")


def _prose_structure(lines: list[str], fmt: str) -> tuple[list[_Section], _Scores]:
    fenced: set[int] = set()
    titles = _rst_titles(lines) if fmt in ("rst", "text") else []
    if fmt in ("markdown", "html"):
        titles = _markdown_titles(lines, fenced, setext=fmt == "markdown")
    title_lines = {k for first, after, _, _ in titles for k in range(first, after)}
    return _sections(lines, titles), _prose_scores(lines, fenced, title_lines)


def _markdown_titles(lines: list[str], fenced: set[int], setext: bool) -> list[tuple[int, int, int, str]]:
    """(first line, line after it, level, title) of each heading; fills ``fenced`` with fenced lines."""
    titles: list[tuple[int, int, int, str]] = []
    fence, start = "", 0
    if setext and lines and lines[0].strip() == "---":  # YAML front matter
        start = next((k + 1 for k in range(1, len(lines)) if lines[k].strip() in ("---", "...")), 0)
    for i in range(start, len(lines)):
        line = lines[i]
        if fence:
            fenced.add(i)
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = ""
        elif match := _FENCE.match(line):
            fence = match.group(1)
            fenced.add(i)
        elif match := _ATX.match(line):
            titles.append((i, i + 1, len(match.group(1)), (match.group(2) or "").strip()))
        elif setext and _SETEXT.match(line) and i > start and i - 1 not in fenced and lines[i - 1].strip():
            if (i - 1 == start or not lines[i - 2].strip()) and not (titles and titles[-1][0] == i - 1):
                titles.append((i - 1, i + 1, 1 if "=" in line else 2, lines[i - 1].strip()))
    return titles


def _rst_titles(lines: list[str]) -> list[tuple[int, int, int, str]]:
    """Underlined (optionally overlined) titles; levels in order of first use of each style, as in rst."""
    styles: list[tuple[str, bool]] = []
    titles: list[tuple[int, int, int, str]] = []
    i = 0
    while i < len(lines) - 1:
        if (found := _rst_title_at(lines, i)) is None:
            i += 1
            continue
        after, style, text = found
        styles += [style] if style not in styles else []
        titles.append((i, after, styles.index(style) + 1, text))
        i = after
    return titles


def _rst_title_at(lines: list[str], i: int) -> tuple[int, tuple[str, bool], str] | None:
    """(line after the title, (adornment, overlined), title) for a title starting at line ``i``."""
    if i > 0 and lines[i - 1].strip():
        return None
    over = _ADORNMENT.match(lines[i])
    at = i + 1 if over else i
    if at + 1 >= len(lines) or _ADORNMENT.match(lines[at]) or (not over and lines[at][:1].isspace()):
        return None
    text, under = lines[at].strip(), _ADORNMENT.match(lines[at + 1])
    if not text or under is None or len(under.group(0).rstrip()) < len(text):
        return None
    if over and over.group(1) != under.group(1):
        return None
    return at + 2, (under.group(1), over is not None), text


def _sections(lines: list[str], titles: list[tuple[int, int, int, str]]) -> list[_Section]:
    """Sections between titles; a title with nothing under it but a deeper title joins that section."""
    sections: list[_Section] = []
    path: list[tuple[int, str]] = []
    start, after, level, heading = 0, 0, 0, None
    for first, title_end, title_level, title in titles:
        empty = not any(line.strip() for line in lines[after:first])
        if not (empty and path and title_level > level) and first > start:
            sections.append(_Section(start, first - 1, heading))
            start = first
        while path and path[-1][0] >= title_level:
            path.pop()
        path.append((title_level, title))
        after, level, heading = title_end, title_level, " > ".join(t for _, t in path)
    sections.append(_Section(start, len(lines) - 1, heading))
    return sections


def _prose_scores(lines: list[str], fenced: set[int], title_lines: set[int]) -> _Scores:
    scores = []
    upcoming = ""  # the next non-blank line after a run of blank lines
    for i in range(len(lines) - 1, -1, -1):
        line, following = lines[i], lines[i + 1] if i + 1 < len(lines) else ""
        if (i in fenced and i + 1 in fenced) or i in title_lines:
            scores.append(0)
        elif not following.strip():
            inside = upcoming[:1].isspace() and (line[:1].isspace() or line.rstrip().endswith("::"))
            scores.append(2 if inside else 3)
        elif _SENTENCE_LINE.search(line) or _LIST_ITEM.match(following) or i + 1 in fenced:
            scores.append(2)
        else:
            scores.append(1)
        upcoming = line if line.strip() else upcoming
    return scores[::-1]


# --- code --------------------------------------------------------------------------------------------------

_MODIFIERS = r"(?:export|pub(?:\([^)]*\))?|public|private|protected|internal|static|async|abstract|final|"
_MODIFIERS += r"default|unsafe|extern|override|open|sealed|data|inline|suspend|local)\s+"
_KEYWORDS = r"(?:function\*?|func|fn|def|class|struct|enum|trait|impl|interface|type|module|mod|object|fun"
_KEYWORDS += r"|namespace|macro_rules!|sub|create|CREATE)\b"
_BLOCK_START = re.compile(
    rf"^(?:(?:{_MODIFIERS})*{_KEYWORDS}|[A-Za-z_][\w\s*&:<>,\[\]]*\([^;]*$|[^\s#/*@{{}}][^{{}};]*\{{\s*$"
    r"|\[[^\]]+\]\s*$|[\w.-]+:\s*$)"
)
_PREAMBLE = re.compile(r"^\s*(?://|#|/\*|\*|--|@|<!--)")
_CLOSER = re.compile(r"^(?:[}\])]|end\b)")


def _code_structure(lines: list[str], fmt: str) -> tuple[_Scores, list[str | None]]:
    """Scores and per-line labels (the top-level block each line belongs to) for any language."""
    scores: _Scores = []
    labels: list[str | None] = [None] * len(lines)
    current: str | None = None
    for i, line in enumerate(lines):
        if line.strip() and not line[0].isspace():
            if _BLOCK_START.match(line):
                current = " ".join(line.rstrip("{:( \t").split())[:80]
                k = i - 1
                while k >= 0 and lines[k].strip() and _PREAMBLE.match(lines[k]):
                    labels[k], k = current, k - 1
            elif not _CLOSER.match(line) and not _PREAMBLE.match(line) and fmt != "toml":
                current = None
        labels[i] = current
        j = next((k for k in range(i + 1, len(lines)) if lines[k].strip()), None)
        if j is None:
            scores.append(4)
        elif j > i + 1:
            scores.append(3 if not lines[j][0].isspace() else 2)
        elif _PREAMBLE.match(line) and not line[:1].isspace():
            scores.append(0)
        else:
            scores.append(2 if not lines[j][0].isspace() and not line[:1].isspace() else 1)
    return scores, labels


_Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _python_structure(lines: list[str], max_chars: int) -> tuple[list[_Section], _Scores] | None:
    """Sections by top-level definition and scores by statement end, or ``None`` if it does not parse."""
    try:
        with warnings.catch_warnings():  # invalid escape sequences and the like are not ours to report
            warnings.simplefilter("ignore")
            tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    scores = [0] * len(lines)
    _statement_scores(tree, 0, lines, scores)
    return _python_sections(tree.body, lines, max_chars, 0, len(lines) - 1, ""), scores


def _statement_scores(node: ast.AST, depth: int, lines: list[str], scores: _Scores) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt) and child.end_lineno is not None:
            end = child.end_lineno - 1
            blank_after = end + 1 >= len(lines) or not lines[end + 1].strip()
            scores[end] = max(scores[end], max(1, 3 - depth) + blank_after)
            _statement_scores(child, depth + 1, lines, scores)
        elif isinstance(child, ast.excepthandler | ast.match_case):
            _statement_scores(child, depth, lines, scores)


def _python_sections(
    body: list[ast.stmt], lines: list[str], max_chars: int, start: int, end: int, prefix: str
) -> list[_Section]:
    sections: list[_Section] = []
    cursor = start
    for node in body:
        if not isinstance(node, _Definition) or node.end_lineno is None:
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        while first - 1 >= cursor and (not lines[first - 1].strip() or lines[first - 1].lstrip()[:1] == "#"):
            first -= 1  # the comments above (and blank lines, which packing trims) go with the definition
        last = node.end_lineno - 1
        if first > cursor:
            sections.append(_Section(cursor, first - 1, prefix or None))
        name = f"{'class' if isinstance(node, ast.ClassDef) else 'def'} {node.name}"
        heading = f"{prefix} > {name}" if prefix else name
        if isinstance(node, ast.ClassDef) and len("\n".join(lines[first : last + 1])) > max_chars:
            sections += _python_sections(node.body, lines, max_chars, first, last, heading)
        else:
            sections.append(_Section(first, last, heading))
        cursor = last + 1
    if cursor <= end:
        sections.append(_Section(cursor, end, prefix or None))
    return sections


# --- packing -----------------------------------------------------------------------------------------------


def _pack(
    lines: list[str],
    sections: list[_Section],
    scores: _Scores,
    max_chars: int,
    overlap: int,
    labels: list[str | None] | None = None,
) -> list[Chunk]:
    """Pack each section's lines into chunks (module docstring: line ranges and overlap)."""
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    def size(a: int, b: int) -> int:
        return offsets[b + 1] - offsets[a] - 1

    def best_end(start: int, need: int, last: int) -> tuple[int, int]:
        """The best line to end a chunk starting at ``start`` on, at or after ``need``, and its score."""
        end, best = need, -1
        for k in range(need, last + 1):
            if size(start, k) > max_chars:
                break
            if k == last:
                return k, 99
            if lines[k].strip() and scores[k] >= best:
                end, best = k, scores[k]
        return end, best

    chunks: list[Chunk] = []
    for section in sections:
        filled = [i for i in range(section.start, section.end + 1) if lines[i].strip()]
        start = need = filled[0] if filled else -1
        while filled:
            heading = section.heading if section.heading is not None or labels is None else labels[need]
            if size(need, need) > max_chars:
                pieces = _cut_line(lines[need], max_chars, overlap)
                chunks += [Chunk(piece, need + 1, need + 1, heading=heading) for piece in pieces]
                start = end = need
            else:
                while size(start, need) > max_chars:
                    start = filled[bisect_right(filled, start)]
                end, best = best_end(start, need, filled[-1])
                if start < need and best == 0 and (alone := best_end(need, need, filled[-1]))[1] > 0:
                    start, end = need, alone[0]
                text = "\n".join(lines[start : end + 1])
                chunks.append(Chunk(text, start + 1, end + 1, heading=heading))
            if end == filled[-1]:
                break
            need = filled[bisect_right(filled, end)]
            kept = filled[bisect_right(filled, start) : bisect_right(filled, end)]
            start = next((o for o in kept if size(o, end) <= overlap), need)
    return chunks


_SENTENCE_START = re.compile(r"[.!?\u3002\uff01\uff1f][\"')\]]*\s+")
_WORD_START = re.compile(r"\s+")


def _cut_line(line: str, max_chars: int, overlap: int) -> list[str]:
    """Pieces of an overlong line, cut at sentence starts, else word starts, else anywhere."""
    sentences = [m.end() for m in _SENTENCE_START.finditer(line)]
    words = [m.end() for m in _WORD_START.finditer(line)]
    stop = len(line.rstrip())
    start = done = len(line) - len(line.lstrip())
    pieces = []
    while stop - start > max_chars:
        limit = start + max_chars
        cut = _last_in(sentences, done, limit) or _last_in(words, done, limit) or limit
        pieces.append(line[start:cut].rstrip())
        low = max(cut - overlap, start + 1)
        start = done = cut
        if overlap:
            start = _first_in(sentences, low, cut) or _first_in(words, low, cut) or cut
        while line[start].isspace():
            start += 1
    pieces.append(line[start:stop])
    return pieces


def _last_in(marks: list[int], low: int, high: int) -> int | None:
    """The last mark in ``(low, high]``."""
    index = bisect_right(marks, high) - 1
    return marks[index] if index >= 0 and marks[index] > low else None


def _first_in(marks: list[int], low: int, high: int) -> int | None:
    """The first mark in ``[low, high)``."""
    index = bisect_left(marks, low)
    return marks[index] if index < len(marks) and marks[index] < high else None
