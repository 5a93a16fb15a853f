"""The ``distributed`` section and ``models.<name>.ray``: validation, defaults, and Ray not installed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tessera.config import TeamConfig, load_team
from tessera.distributed import actor_resources
from tessera.errors import ConfigError

from ..conftest import run_cli, write_team

FUNCTION = {"backend": "function", "callable": "tessera.testing.demo:echo"}


def problems(tmp_path: Path, models: dict[str, Any] | None = None, **sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_team(write_team(tmp_path / "team.yaml", models or {"m": FUNCTION}, **sections))
    return info.value.problems


def test_defaults_run_in_process(tmp_path: Path) -> None:
    config = load_team(write_team(tmp_path / "team.yaml", {"m": FUNCTION}))
    assert config.distributed.engine == "local"
    assert config.distributed.address is None
    assert config.models["m"].ray.num_gpus == 0


@pytest.mark.parametrize("address", [None, "auto", "ray://head.lan:10001", "10.0.0.5:6379"])
def test_accepted_addresses(tmp_path: Path, address: str | None) -> None:
    config = load_team(
        write_team(tmp_path / "team.yaml", {"m": FUNCTION}, distributed={"engine": "ray", "address": address})
    )
    assert config.distributed.address == address


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"engine": "dask"}, "distributed.engine: Input should be 'local' or 'ray' (got 'dask')"),
        (
            {"engine": "ray", "address": "http://head:8265"},
            "distributed: address: 'http://head:8265' is not 'auto', ray://host:port or host:port",
        ),
        (
            {"engine": "ray", "address": "auto", "num_cpus": 2},
            "distributed: num_cpus: only for a Ray that Tessera starts (no address); "
            "a running cluster keeps its own settings",
        ),
        (
            {"engine": "ray", "object_store_mb": 10},
            "distributed.object_store_mb: Input should be greater than or equal to 80 (got 10)",
        ),
        ({"engine": "ray", "adress": "auto"}, "distributed.adress: unknown field (did you mean 'address'?)"),
    ],
)
def test_bad_distributed_section_is_one_line_naming_the_field(
    tmp_path: Path, section: dict[str, Any], expected: str
) -> None:
    assert problems(tmp_path, distributed=section) == [f"{tmp_path / 'team.yaml'}: {expected}"]


def test_bad_model_resources_name_the_model(tmp_path: Path) -> None:
    found = problems(tmp_path, {"m": {**FUNCTION, "ray": {"num_gpu": 1, "num_cpus": -1}}})
    assert sorted(found) == [
        f"{tmp_path / 'team.yaml'}: models.m.ray.num_cpus: Input should be greater than or equal to 0 (got -1)",
        f"{tmp_path / 'team.yaml'}: models.m.ray.num_gpu: unknown field (did you mean 'num_gpus'?)",
    ]


def test_actor_resources_defaults_and_overrides(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    config = TeamConfig.from_dict(
        {
            "name": "t",
            "models": {
                "fn": FUNCTION,
                "fn_big": {**FUNCTION, "ray": {"num_cpus": 0.5, "num_gpus": 0.25, "memory_mb": 300}},
                "llama": {"backend": "llama_cpp", "path": str(gguf)},
                "llama4": {"backend": "llama_cpp", "path": str(gguf), "n_threads": 4},
            },
            "planner": {"model": "fn"},
            "specialists": {"s": {"description": "d", "model": "fn"}},
        }
    )
    models = config.models
    assert actor_resources(models["fn"]) == {"num_cpus": 0.0}
    assert actor_resources(models["fn_big"]) == {"num_cpus": 0.5, "num_gpus": 0.25, "memory_mb": 300.0}
    assert actor_resources(models["llama"]) == {"num_cpus": 1.0}
    assert actor_resources(models["llama4"]) == {"num_cpus": 4.0}


def test_missing_ray_is_a_one_line_install_hint(tmp_path: Path) -> None:
    """With Ray not importable, a team with engine: ray fails at the start: exit 2, one line, no traceback."""
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    team = write_team(tmp_path / "team.yaml", {"m": FUNCTION}, distributed={"engine": "ray"})
    out = run_cli("run", "--team", str(team), "hello", env={"PYTHONPATH": str(shadow.parent)})
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.strip().splitlines() == [
        'distributed.engine: ray needs Ray: pip install "tessera[distributed]"'
    ]
    assert "Traceback" not in out.stderr


def test_local_engine_never_imports_ray(tmp_path: Path) -> None:
    """Ray is imported only for engine: ray (a local team pays nothing for the extra)."""
    team = write_team(tmp_path / "team.yaml", {"m": FUNCTION})
    code = (
        "import sys; from tessera import Team; t = Team.from_yaml(sys.argv[1]); t.run('hi'); t.close(); "
        "print('ray' in sys.modules)"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code, str(team)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
