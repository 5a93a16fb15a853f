"""``tessera bench routing``: the synthetic workload, its policies, and the shipped target."""

from __future__ import annotations

import json

import pytest

from tessera.bench.routing import POLICIES, make_tasks, run_routing_bench
from tests.conftest import run_cli


def test_the_workload_is_seeded() -> None:
    assert make_tasks(50, 3) == make_tasks(50, 3)
    assert make_tasks(50, 3) != make_tasks(50, 4)
    kinds = {kind for _, kind, _ in make_tasks(200, 3)}
    assert kinds == {"lookup", "summarize", "code", "proof"}


def test_json_has_every_policy_with_quality_and_cost() -> None:
    out = run_cli("bench", "routing", "--tasks", "40", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report["policies"]) == set(POLICIES)
    rows = report["policies"]
    for row in rows.values():
        assert 0 <= row["quality"] <= 1 and row["cost"] > 0
    assert rows["always_smallest"]["quality"] < rows["always_largest"]["quality"]
    assert rows["always_smallest"]["cost"] < rows["static"]["cost"] < rows["always_largest"]["cost"]
    assert rows["always_largest"]["escalation_rate"] == 0 and rows["static"]["escalation_rate"] > 0
    assert rows["static"]["first_tier_share"] == {"small": 1.0}  # no calibration: all start small


@pytest.mark.slow
def test_calibrated_routing_meets_the_target_on_the_shipped_workload() -> None:
    report = run_routing_bench(300, 7)
    calibrated, static = report["policies"]["calibrated"], report["policies"]["static"]
    assert calibrated["quality_vs_largest"] >= 0.95 and calibrated["cost_vs_largest"] <= 0.40, calibrated
    assert report["target_met"]
    assert calibrated["quality"] > static["quality"]  # learning where to start avoids silent failures
    assert len(calibrated["first_tier_share"]) > 1  # it moved some specialists off the smallest tier
