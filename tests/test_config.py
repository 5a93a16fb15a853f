from __future__ import annotations

from pathlib import Path

import pytest

from tessera.agents.kinds import check_specialists
from tessera.config import LlamaCppModelConfig, TeamConfig, load_team
from tessera.errors import ConfigError

from .conftest import REPO, write_team

FUNCTION = {"backend": "function", "callable": "tessera.testing.demo:echo"}


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_team(path)
    return info.value.problems


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    team = load_team(path)
    assert team.planner.model in team.models
    check_specialists(team)  # kinds and tool names resolve too


def test_default_team_uses_the_real_coder_models() -> None:
    team = load_team(REPO / "configs" / "default.yaml")
    sources = {
        name: (m.repo, m.file) for name, m in team.models.items() if isinstance(m, LlamaCppModelConfig)
    }
    assert set(sources) == {"coder", "small"}
    assert team.planner.model == "coder" and team.specialists["coder"].model == "coder"
    assert sources["coder"] == (
        "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    )
    assert sources["small"] == (
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    )
    assert team.memory.embedder == "sentence-transformers/all-MiniLM-L6-v2"
    # every one of them is catalogued, so a machine without the hub can still provide it
    from tessera.models import _pypi

    assert all(_pypi.known(repo, file) for repo, file in sources.values())
    assert _pypi.known(team.memory.embedder)


def test_unknown_model_names_the_file_field_and_choices(tmp_path: Path) -> None:
    path = write_team(
        tmp_path / "team.yaml",
        {"coder": FUNCTION, "small": FUNCTION},
        specialists={"coder": {"description": "codes", "model": "codr"}},
    )
    assert problems_of(path) == [
        f"{path}: specialists.coder.model: unknown model 'codr' (known: coder, small; did you mean 'coder'?)"
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(
        """
name: t
models:
  a: {backend: llama_cpp, path: x.gguf, tempreature: 0.3}
  b: {backend: llama_cpp, repo: org/x}
  c: {backend: nope}
planner: {model: a}
specialists:
  s: {description: d, model: a, tool: ocr}
"""
    )
    problems = problems_of(path)
    assert f"{path}: models.a.tempreature: unknown field (did you mean 'temperature'?)" in problems
    assert f"{path}: models.b: needs 'path', or both 'repo' and 'file'" in problems
    assert any(
        "models.c.backend: unknown backend 'nope' (known: function, llama_cpp, openai" in p for p in problems
    )
    assert (
        f"{path}: specialists.s: 'tool' is for kind: tool; list the tools a model may call under 'tools'"
        in problems
    )
    assert len(problems) == 4


def test_missing_required_sections(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text("name: t\nmodels: {a: {backend: function, callable: 'm:f'}}\n")
    assert sorted(problems_of(path)) == [
        f"{path}: planner: required field is missing",
        f"{path}: specialists: required field is missing",
    ]


def test_env_interpolation_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_TEST_URL", "http://127.0.0.1:9999/v1")
    monkeypatch.delenv("TESSERA_UNSET", raising=False)
    path = write_team(
        tmp_path / "team.yaml",
        {
            "remote": {
                "backend": "openai",
                "base_url": "${TESSERA_TEST_URL}",
                "model": "${TESSERA_UNSET:-qwen}",
            },
        },
        description="costs $$5",
    )
    team = load_team(path)
    remote = team.models["remote"]
    assert remote.backend == "openai"
    assert (remote.base_url, remote.model) == ("http://127.0.0.1:9999/v1", "qwen")
    assert team.description == "costs $5"


def test_unset_variable_without_default_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESSERA_UNSET", raising=False)
    path = write_team(tmp_path / "team.yaml", {"a": {**FUNCTION, "callable": "${TESSERA_UNSET}"}})
    assert problems_of(path) == [
        f"{path}: models.a.callable: environment variable 'TESSERA_UNSET' is not set (use ${{TESSERA_UNSET:-default}})"
    ]


def test_relative_model_path_is_relative_to_the_team_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write_team(tmp_path / "sub" / "team.yaml", {"m": {"backend": "llama_cpp", "path": "../m.gguf"}})
    model = load_team(path).models["m"]
    assert isinstance(model, LlamaCppModelConfig)
    assert model.path == (tmp_path / "m.gguf").resolve()


def test_state_dir_defaults_under_home(tmp_path: Path) -> None:
    team = TeamConfig.from_dict(
        {
            "name": "crew",
            "models": {"a": FUNCTION},
            "planner": {"model": "a"},
            "specialists": {"g": {"description": "d", "model": "a"}},
        }
    )
    assert team.resolved_state_dir == Path("~/.tessera/crew").expanduser()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_unreadable_yaml(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(text)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}") and expected in problem


def test_missing_file(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: no such file"]


def test_routing_tiers_and_min_tier_must_exist(tmp_path: Path) -> None:
    path = write_team(
        tmp_path / "team.yaml",
        {"small": FUNCTION, "big": FUNCTION},
        routing={"tiers": ["small", "huge"]},
        specialists={"g": {"description": "d", "model": "small", "min_tier": "medium"}},
    )
    problems = problems_of(path)
    assert any("routing.tiers.1: unknown model 'huge'" in p for p in problems)
    assert any("specialists.g.min_tier: 'medium' is not a routing tier" in p for p in problems)


def test_json_schema_export_covers_sections() -> None:
    schema = TeamConfig.model_json_schema()
    assert {"models", "planner", "specialists", "routing", "memory"} <= set(schema["properties"])


def test_the_team_files_folder_is_on_the_import_path(tmp_path: Path) -> None:
    from tessera.models.function import FunctionModel

    (tmp_path / "t19_cfg_neighbour.py").write_text("def fn(messages, **kw):\n    return 'from next door'\n")
    team = load_team(
        write_team(tmp_path / "team.yaml", {"m": {**FUNCTION, "callable": "t19_cfg_neighbour:fn"}})
    )
    model = FunctionModel.from_config("m", team.models["m"])  # type: ignore[arg-type]
    assert model.invoke("hi").content == "from next door"


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_every_shipped_config_keeps_state_in_tessera_state_dir(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_STATE_DIR", str(tmp_path))
    assert load_team(REPO / "configs" / name).resolved_state_dir == tmp_path
