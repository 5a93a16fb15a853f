"""The backend registry: config class and model class together, and capabilities as class attributes."""

from __future__ import annotations

import typing

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from tessera import FunctionModel, Team, TeamConfig, config
from tessera.errors import UserError
from tessera.models import BACKENDS, is_local, loads_weights, model_class
from tessera.models.pool import ModelPool


def test_every_config_backend_is_registered_with_its_config_class() -> None:
    union = typing.get_args(typing.get_args(config.ModelConfig)[0])
    assert sorted(BACKENDS) == sorted(config.BACKENDS)
    assert {entry.config for entry in BACKENDS.values()} == set(union)


@pytest.mark.parametrize(
    ("backend", "local", "weights"),
    [("llama_cpp", True, True), ("openai", False, False), ("function", True, False)],
)
def test_capabilities_are_class_attributes(backend: str, local: bool, weights: bool) -> None:
    cls = model_class(backend)
    assert (cls.local, cls.loads_weights) == (local, weights)  # type: ignore[attr-defined]


def test_a_config_entry_and_an_instance_answer_alike() -> None:
    entry = config.OpenAIModelConfig(backend="openai", base_url="http://x/v1", model="m")
    assert not is_local(entry) and not loads_weights(entry)
    assert is_local(FunctionModel(lambda m, **kw: "x"))
    assert not is_local(FakeListChatModel(responses=["x"]))  # a LangChain model without the attribute


def test_the_pool_serves_instances_beside_configs() -> None:
    fn = FunctionModel(lambda m, **kw: "x")
    pool = ModelPool({"given": fn, "built": config.FunctionModelConfig(backend="function")})
    assert pool.get("given") is fn and pool.names == ["built", "given"] and pool.is_local("given")
    status = {s.name: s for s in pool.status()}
    assert status["given"].backend == "function" and not status["given"].loads_weights


def test_team_refuses_a_model_the_config_does_not_name() -> None:
    team_config = TeamConfig.from_dict(
        {
            "name": "t",
            "models": {"m": {"backend": "function"}},
            "planner": {"model": "m"},
            "specialists": {"general": {"description": "d", "model": "m"}},
        }
    )
    with pytest.raises(UserError, match="unknown model 'x'"):
        Team(team_config, models={"x": FunctionModel(lambda m, **kw: "x")})
