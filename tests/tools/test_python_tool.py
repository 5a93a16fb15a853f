"""The ``python`` tool prints a bare last expression, as a REPL does, and leaves other code alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera import TeamConfig
from tessera.tools.base import ToolEnv
from tessera.tools.python import make_tool, show_last_value


@pytest.mark.parametrize(
    ("code", "changed"),
    [
        ("2**20", True),
        ("x = 3\nx * 2", True),
        ("import math; math.factorial(5)", True),
        ("print(5)", False),
        ("x = 3", False),
        ("def f(:\n  pass", False),
        ("", False),
    ],
)
def test_show_last_value_only_touches_a_bare_last_expression(code: str, changed: bool) -> None:
    assert (show_last_value(code) != code) is changed


def test_the_tool_returns_a_bare_last_value(tmp_path: Path) -> None:
    config = TeamConfig.from_dict(
        {
            "name": "t",
            "models": {"m": {"backend": "function", "callable": "tessera.testing.demo:echo"}},
            "planner": {"model": "m"},
            "specialists": {"g": {"description": "d", "model": "m"}},
        }
    )
    tool = make_tool(ToolEnv(config, tmp_path))
    assert "1048576" in tool.invoke({"code": "2**20"})
    out = tool.invoke({"code": "import math; math.factorial(5)"})
    assert "120" in out
    assert (
        tool.invoke({"code": "print(7)\nNone"}) == "7"
    )  # a clean run is its output alone; None is not printed
    assert "printed nothing" in tool.invoke({"code": "x = 1"})
    failing = tool.invoke({"code": "x = 1\n1 / 0"})
    assert "ZeroDivisionError" in failing and "line 2" in failing  # line numbers stay right
