"""The router's first choice: by prompt length, floor, difficulty, and calibration from recorded runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tessera import TeamConfig
from tessera.agents.router import MIN_RUNS, Router, RoutingHistory, estimate_difficulty

FN = {"backend": "function"}  # routing reads the configs only; no model is called


def config(**specialist: Any) -> TeamConfig:
    return TeamConfig.from_dict(
        {
            "name": "r",
            "models": {
                "small": {**FN, "max_prompt_tokens": 100, "cost": 1},
                "medium": {**FN, "max_prompt_tokens": 1000, "cost": 4},
                "large": {**FN, "cost": 20},
            },
            "planner": {"model": "small"},
            "specialists": {
                "writer": {"description": "writes", **specialist},
                "fixed": {"description": "pinned", "model": "medium"},
            },
            "routing": {"tiers": ["small", "medium", "large"], "max_escalations": 2},
        }
    )


def test_an_easy_short_subtask_starts_on_the_smallest_tier() -> None:
    route = Router(config()).choose("writer", "Write a haiku about tea.")
    assert (route.tier, route.model, route.reason) == (0, "small", "smallest tier")


def test_a_pinned_model_is_not_routed() -> None:
    router = Router(config())
    assert not router.routed("fixed") and router.routed("writer")
    assert router.choose("fixed", "anything").model == "medium"


def test_a_long_prompt_skips_tiers_it_does_not_fit() -> None:
    route = Router(config()).choose("writer", "word " * 200)  # ~250 tokens: over small's 100
    assert route.model == "medium" and "prompt tokens" in route.reason
    assert Router(config()).choose("writer", "x" * 8000).model == "large"


def test_the_specialists_floor_is_respected() -> None:
    route = Router(config(min_tier="medium")).choose("writer", "Write a haiku.")
    assert route.model == "medium" and route.reason == "floor medium"


def test_difficulty_raises_the_first_tier() -> None:
    hard = "Prove the algorithm is correct, analyse its security and optimise the distributed design."
    assert estimate_difficulty(hard) > estimate_difficulty("Write a haiku.")
    route = Router(config()).choose("writer", hard)
    assert route.tier >= 1 and route.reason.startswith("difficulty")
    custom = Router(config(), difficulty=lambda text, deps: 0.99).choose("writer", "Write a haiku.")
    assert custom.model == "large" and custom.reason == "difficulty 0.99"


def test_calibration_moves_a_specialist_down_after_successes_there(tmp_path: Path) -> None:
    history = RoutingHistory(tmp_path / "routing.sqlite")
    router = Router(config(), history, difficulty=lambda text, deps: 0.99)  # static policy: large
    assert router.choose("writer", "task").model == "large"
    for _ in range(MIN_RUNS):
        history.record("writer", "small", ok=True)
    route = router.choose("writer", "task")
    assert route.model == "small" and route.reason.startswith("calibrated: 100% of 3 recent runs")
    for _ in range(MIN_RUNS * 2):  # small starts failing: calibration steps up to the next tier that works
        history.record("writer", "small", ok=False)
    for _ in range(MIN_RUNS):
        history.record("writer", "medium", ok=True)
    assert router.choose("writer", "task").model == "medium"
    assert Router(config(min_tier="large"), history).choose("writer", "t").model == "large"  # floor wins
    history.close()
    reopened = Router(config(), RoutingHistory(tmp_path / "routing.sqlite"), difficulty=lambda t, d: 0.99)
    assert reopened.choose("writer", "task").model == "medium"  # the history is on disk


def test_calibration_waits_for_enough_runs_on_the_lower_tier(tmp_path: Path) -> None:
    history = RoutingHistory(tmp_path / "routing.sqlite")
    for _ in range(MIN_RUNS):
        history.record("writer", "medium", ok=True)
    router = Router(config(), history)
    assert router.choose("writer", "Write a haiku.").model == "small"  # small untried: keep exploring it
