"""The ``python`` tool: run Python code in the sandbox (:mod:`tessera.tools.sandbox`) and see what it did.

Limits come from ``tools.python`` (wall and CPU seconds, memory, processes, output size). A broken limit
comes back to the model as text, like any other outcome; the tool never raises for what the code does.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from tessera.tools.base import ToolEnv
from tessera.tools.sandbox import SandboxResult, arun_python, run_python

__all__ = ["PythonArgs", "args_from_instruction", "make_tool", "report", "show_last_value"]

DESCRIPTION = (
    "Run Python code in a sandbox and return what it printed (and its exit code and stderr if it failed). "
    "The code runs as a fresh script (nothing is kept between calls) without network access; "
    "print what you need to see (a last line that is a bare expression is printed, as in a REPL)."
)

_FENCED = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


class PythonArgs(BaseModel):
    """The ``python`` tool's argument."""

    code: str = Field(description="A complete Python program; its stdout and stderr are returned.")


def show_last_value(code: str) -> str:
    """``code`` with its last statement printed when it is a bare expression (``2**20``), as a REPL would.

    Small models often end a program with the value they want instead of printing it, and get empty output
    back. Only the last statement changes, so line numbers in tracebacks stay right; code that does not
    parse, or ends with a call of ``print``, is returned as it is.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.Expr) or last.end_lineno is None:
        return code
    value = last.value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print":
        return code
    segment = ast.get_source_segment(code, last)
    if segment is None:
        return code
    lines = code.splitlines()
    head = lines[last.lineno - 1][: last.col_offset]
    shown = f"{head}__value = ({segment})\nif __value is not None:\n    print(__value)"
    return "\n".join([*lines[: last.lineno - 1], shown, *lines[last.end_lineno :]]) + "\n"


def report(result: SandboxResult) -> str:
    """What the model reads back: a clean run's output alone, anything else in full.

    A small model reading "exit code: 0" before the output takes it for a request and calls
    ``exit(0)`` next (seen from the real Qwen2.5-Coder-0.5B), so a run that exited 0 with nothing on
    stderr returns just its stdout.
    """
    if result.exit_code == 0 and not result.violation and not result.stderr.strip():
        return result.stdout.strip() or "(the code printed nothing; print what you need to see)"
    return result.summary()


def make_tool(env: ToolEnv) -> BaseTool:
    """The ``python`` tool, with the limits of ``tools.python``."""
    limits = env.config.tools.python

    def python(code: str) -> str:
        return report(run_python(show_last_value(code), limits))

    async def apython(code: str) -> str:
        return report(await arun_python(show_last_value(code), limits))

    return StructuredTool.from_function(
        func=python, coroutine=apython, name="python", description=DESCRIPTION, args_schema=PythonArgs
    )


def args_from_instruction(instruction: str) -> dict[str, Any]:
    """The ``python`` tool's arguments: the first ```python fenced block, else the whole instruction.

    Raises:
        ValueError: the instruction (or its code block) is empty.
    """
    match = _FENCED.search(instruction)
    code = match.group(1) if match else instruction
    if not code.strip():
        raise ValueError(f"no Python code in instruction {instruction!r}")
    return {"code": code}
