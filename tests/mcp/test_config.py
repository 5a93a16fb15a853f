"""The ``mcp`` section and a specialist's ``mcp`` field: mistakes are one line naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.config import TeamConfig
from tessera.errors import ConfigError
from tests.conftest import run_cli

from .conftest import CALC, NO_SDK, mcp_team


def _problems(servers: dict[str, object], specialists: dict[str, list[str]]) -> list[str]:
    data = {
        "name": "t",
        "models": {"m": {"backend": "function", "callable": "tests.mcp.fakes:caller"}},
        "planner": {"model": "m"},
        "specialists": {n: {"description": "d", "model": "m", "mcp": e} for n, e in specialists.items()},
        "mcp": {"servers": servers},
    }
    with pytest.raises(ConfigError) as caught:
        TeamConfig.from_dict(data, source="team.yaml")
    return caught.value.problems


def test_bad_mcp_entries_are_one_line_each() -> None:
    calc = {"command": "python3"}
    assert _problems({"calc": calc}, {"a": ["clac", "calc/"]}) == [
        "team.yaml: specialists.a.mcp.0: unknown MCP server 'clac' (mcp.servers: calc; did you mean 'calc'?)",
        "team.yaml: specialists.a.mcp.1: 'calc/' names no tool (use 'server' or 'server/tool')",
    ]
    assert _problems({"x": {"command": "a", "url": "http://h/mcp"}}, {"a": []}) == [
        "team.yaml: mcp.servers.x: set either 'command' (stdio) or 'url' (streamable HTTP), not both"
    ]
    assert _problems({"x": {"url": "ftp://h", "args": ["a"]}}, {"a": []}) == [
        "team.yaml: mcp.servers.x: url 'ftp://h' is not an http:// or https:// URL"
    ]
    assert _problems({"x": {"command": "a", "headers": {"A": "b"}}}, {"a": []}) == [
        "team.yaml: mcp.servers.x: headers: only for an HTTP server ('url')"
    ]
    assert _problems({"x": {}}, {"a": []}) == [
        "team.yaml: mcp.servers.x: needs 'command' (a stdio server) or 'url' (a streamable HTTP server)"
    ]


@pytest.mark.slow
def test_validate_names_the_file_and_field_and_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("mcp", reason=NO_SDK)
    good = mcp_team(
        tmp_path / "good.yaml", {"calc": {"command": CALC[0], "args": CALC[1:]}}, {"a": ["calc/multiply"]}
    )
    assert run_cli("validate", str(good)).returncode == 0

    unknown = mcp_team(tmp_path / "unknown.yaml", {"calc": {"command": CALC[0]}}, {"a": ["calk"]})
    missing = mcp_team(
        tmp_path / "missing.yaml", {"calc": {"command": "no-such-mcp-server-xyz"}}, {"a": ["calc"]}
    )
    for path, line in [
        (
            unknown,
            f"{unknown}: specialists.a.mcp.0: unknown MCP server 'calk' (mcp.servers: calc; did you mean 'calc'?)",
        ),
        (missing, f"{missing}: mcp.servers.calc.command: 'no-such-mcp-server-xyz' is not a program on PATH"),
    ]:
        done = run_cli("validate", str(path))
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == line, done.stderr
