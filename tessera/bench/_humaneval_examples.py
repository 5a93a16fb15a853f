"""The examples a HumanEval prompt shows in its docstring, and a sandbox check of a completion against them.

Only the ``prompt`` is read (never the hidden ``test``), so the examples are what a programmer given the
same task would see. Two forms are parsed:

- doctest: ``>>> f(x)`` followed by the expected output line, read with :class:`doctest.DocTestParser`.
  ``>>> f(x) == y`` with no output line means ``f(x)`` should equal ``y``; any other example with no
  output line means ``f(x)`` returns None (doctest prints nothing for None).
- prose: a line with a call of the entry point, an arrow (``==``, ``==>``, ``=>``, ``->``, ``➞``, ``→``,
  ``=``, ``returns``, ``should return``, ``should be``) and the expected value, e.g.
  ``search([5, 5, 4, 4, 4]) == -1`` or ``multiply(19, 28) should return 72.``; and, for a function of
  one parameter, ``For num = "AB" the output should be 1.``. Both the arguments and the expected value
  must be Python literals (after a trailing ``.``, ``,`` or ``# comment`` is cut; ``true``/``false`` read
  as booleans); anything else (``is_happy(a) => False``, ``f(5) -> 19 - 5 - 6 = 8``, ``Input: / Output:``
  blocks) is skipped rather than guessed. A prompt that defines its function's recurrence with ``=`` lines
  (HumanEval/130: ``tri(1) = 3`` beside ``tri(3) = [1, 3, 2, 8]``) is misread that way.

:func:`check_script` turns the examples into a test script for
:func:`tessera.agents.coder.arun_with_tests`; :func:`read_check` reads its verdict.
"""

from __future__ import annotations

import ast
import doctest
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tessera.tools.sandbox import SandboxResult

__all__ = ["Example", "ExampleCheck", "check_script", "extract_examples", "read_check"]

_ARROW = re.compile(r"\s*(?:==>|==|=>|->|➞|→|=|returns|should\s+return|should\s+be)\s*(?P<rest>.*)$")
_FOR_INPUT = re.compile(
    r"\bFor\s+(?P<name>\w+)\s*=\s*(?P<value>.+?),?\s+the\s+output\s+should\s+be\s+(?P<rest>.*)$"
)
_BOOLS = {"true": "True", "false": "False"}
_MARK = "tessera-examples:"
_SHOWN = 3
"""Failing examples named in a check's report (the rest are counted)."""


@dataclass(frozen=True)
class Example:
    """One docstring example: ``call`` (Python source) should give ``expected``.

    ``expected`` is Python source of a literal when ``literal``; otherwise it is doctest output, compared
    with ``repr`` of the result.
    """

    call: str
    expected: str
    literal: bool = True

    def show(self) -> str:
        """The example as one line: ``f(1) == 2``."""
        return f"{self.call} == {self.expected}"


@dataclass
class ExampleCheck:
    """How a completion did on its prompt's examples; ``error`` is set when the program did not run."""

    examples: int
    failures: list[str]
    """One line per failing example: the call, what was expected and what came back (or was raised)."""
    error: str | None = None

    @property
    def passed(self) -> bool:
        """The program ran and every example gave what the docstring says."""
        return self.error is None and not self.failures

    def report(self) -> str:
        """What went wrong, for the model: the error line, or the failing examples."""
        if self.error is not None:
            return f"Running it failed: {self.error}"
        shown = "\n".join(f"- {line}" for line in self.failures[:_SHOWN])
        more = len(self.failures) - _SHOWN
        tail = f"\n(and {more} more)" if more > 0 else ""
        return f"{len(self.failures)} of the {self.examples} examples in the docstring failed:\n{shown}{tail}"


def extract_examples(prompt: str, entry_point: str) -> list[Example]:
    """The examples shown in ``prompt`` (doctest and prose forms), in order, without duplicates."""
    found: list[Example] = []
    try:
        doctests = doctest.DocTestParser().get_examples(prompt)
    except ValueError:  # inconsistent indentation in a docstring: fall back to prose only
        doctests = []
    for item in doctests:
        example = _from_doctest(item.source.strip(), _docstring_output(item.want))
        if example is not None:
            found.append(example)
    call_start = re.compile(rf"(?<![\w.]){re.escape(entry_point)}\s*\(")
    only_parameter = _only_parameter(prompt, entry_point)
    for line in prompt.splitlines():
        if ">>>" in line or line.lstrip().startswith(("def ", "...")):
            continue
        given = _FOR_INPUT.search(line)
        if given and given.group("name") == only_parameter and _is_literal(given.group("value")):
            expected = _literal_prefix(given.group("rest"))
            if expected is not None:
                found.append(Example(f"{entry_point}({given.group('value').strip()})", expected))
            continue
        for match in call_start.finditer(line):
            example = _from_prose(line, match.start(), entry_point)
            if example is not None:
                found.append(example)
                break
    return list(dict.fromkeys(found))


def check_script(examples: list[Example]) -> str:
    """A test script that runs every example and prints one verdict line (JSON after a marker).

    It runs after the solution in the same namespace, so its own names start with ``_tessera_``.
    """
    cases = [(e.call, e.expected, e.literal) for e in examples]
    return (
        "import json as _tessera_json, math as _tessera_math\n\n"
        "def _tessera_same(got, want):\n"
        "    if isinstance(want, float) or isinstance(got, float):\n"
        "        try:\n"
        "            return _tessera_math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)\n"
        "        except TypeError:\n"
        "            return False\n"
        "    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):\n"
        "        return type(got) is type(want) and len(got) == len(want) and all(\n"
        "            _tessera_same(g, w) for g, w in zip(got, want))\n"
        "    return got == want\n\n"
        "_tessera_failures = []\n"
        f"for _tessera_call, _tessera_want, _tessera_literal in {cases!r}:\n"
        "    try:\n"
        "        _tessera_got = eval(_tessera_call)\n"
        "    except Exception as _tessera_exc:\n"
        "        _tessera_failures.append(f'{_tessera_call} raised {type(_tessera_exc).__name__}: "
        "{_tessera_exc}'[:300])\n"
        "        continue\n"
        "    if _tessera_literal:\n"
        "        _tessera_ok = _tessera_same(_tessera_got, eval(_tessera_want))\n"
        "    else:\n"
        "        _tessera_ok = repr(_tessera_got) == _tessera_want\n"
        "    if not _tessera_ok:\n"
        "        _tessera_failures.append(f'{_tessera_call}: expected {_tessera_want}, got "
        "{_tessera_got!r}'[:300])\n"
        f"print({_MARK!r}, _tessera_json.dumps(_tessera_failures))\n"
    )


def read_check(examples: list[Example], result: SandboxResult) -> ExampleCheck:
    """The verdict of a :func:`check_script` run; a run that broke before it is an ``error``."""
    from tessera.agents.coder import describe_failure

    verdicts = [line for line in result.stdout.splitlines() if line.startswith(_MARK)]
    if not result.ok or not verdicts:
        error = describe_failure(result) if not result.ok else "the examples did not run to the end"
        return ExampleCheck(len(examples), [], error)
    failures = json.loads(verdicts[-1][len(_MARK) :])
    return ExampleCheck(len(examples), [str(line) for line in failures])


def _docstring_output(want: str) -> str:
    """A doctest output without the docstring's closing quotes (the parser reads up to a blank line)."""
    lines: list[str] = []
    for line in want.splitlines():
        if line.strip() in ('"""', "'''"):
            break
        lines.append(line)
    return "\n".join(lines).strip()


def _from_doctest(source: str, want: str) -> Example | None:
    """A ``>>>`` call: ``call == value`` asserts; otherwise the output (empty: None) is expected.

    Only a call or an ``==`` comparison is read; anything else (``f(x) [1, 2]``, which parses as a
    subscript) is skipped.
    """
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(tree, ast.Call | ast.Compare):
        return None
    if isinstance(tree, ast.Compare) and len(tree.ops) == 1 and isinstance(tree.ops[0], ast.Eq):
        if not want or want == "True":
            expected = ast.get_source_segment(source, tree.comparators[0])
            call = ast.get_source_segment(source, tree.left)
            if call is not None and expected is not None and _is_literal(expected):
                return Example(call, expected)
    if not want:
        return Example(source, "None")
    return Example(source, want, literal=_is_literal(want))


def _from_prose(line: str, start: int, entry_point: str) -> Example | None:
    """``entry_point(<literals>) <arrow> <literal>`` starting at ``start`` of ``line``; None otherwise."""
    for end in (i for i, ch in enumerate(line) if ch == ")" and i > start):
        call = line[start : end + 1]
        try:
            node = ast.parse(call, mode="eval").body
        except SyntaxError:
            continue
        if not (isinstance(node, ast.Call) and not node.keywords):
            return None
        if not all(_is_literal(ast.unparse(arg)) for arg in node.args):
            return None
        arrow = _ARROW.match(line, end + 1)
        if arrow is None:
            return None
        expected = _literal_prefix(arrow.group("rest"))
        return (
            Example(f"{entry_point}({', '.join(ast.unparse(a) for a in node.args)})", expected)
            if (expected is not None)
            else None
        )
    return None


def _literal_prefix(rest: str) -> str | None:
    """The expected value: the rest of the line without a trailing ``.``/``,`` or comment, if a literal."""
    candidates = [rest.split(" #")[0], rest]
    for text in candidates:
        text = text.strip().rstrip(".,;").strip()
        text = _BOOLS.get(text, text)
        if text and _is_literal(text):
            return text
    return None


def _only_parameter(prompt: str, entry_point: str) -> str | None:
    """The name of the entry point's parameter when it has exactly one (None otherwise)."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            params = [*node.args.posonlyargs, *node.args.args]
            return params[0].arg if len(params) == 1 and not node.args.kwonlyargs else None
    return None


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True
