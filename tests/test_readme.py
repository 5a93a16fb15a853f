"""The README stays true: every config field is documented, and its commands exist."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from tessera import config

from .conftest import REPO

README = (REPO / "README.md").read_text()


@pytest.mark.parametrize(
    "section",
    [
        config.TeamConfig,
        config.LlamaCppModelConfig,
        config.OpenAIModelConfig,
        config.FunctionModelConfig,
        config.PlannerConfig,
        config.AnswerConfig,
        config.ToolsConfig,
        config.SandboxConfig,
        config.OcrConfig,
        config.TtsConfig,
        config.AsrConfig,
        config.SpecialistConfig,
        config.RoutingConfig,
        config.MemoryConfig,
        config.RuntimeConfig,
        config.McpConfig,
        config.McpServerConfig,
    ],
    ids=lambda c: c.__name__,
)
def test_every_config_field_is_in_the_reference(section: type[BaseModel]) -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)`", README, flags=re.M))
    documented |= {"repo", "file"}  # documented together as `repo`, `file`
    assert set(section.model_fields) <= documented


def test_readme_names_the_scripts_that_exist() -> None:
    for script in ("scripts/setup.sh", "scripts/test.sh"):
        assert script in README and (REPO / script).is_file()
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_the_model_override_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The Python example of `Team(config, models=...)` and `team.override(...)` runs as written."""
    at = README.index('team = Team(config, models={"planner"')
    code = README[README.rindex("```python", 0, at) + len("```python") : README.index("```", at)]
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    assert capsys.readouterr().out.strip() == "HELLO"
