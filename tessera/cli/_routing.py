"""``tessera stats`` (what routing did on recorded runs) and ``tessera bench routing``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tessera.cli._common import json_option, load_team_file, team_option

__all__ = ["bench_routing", "routing_stats", "stats"]


def routing_stats(state_dir: Path) -> dict[str, Any]:
    """Summary of ``<state_dir>/routing.sqlite``: tiers, escalations, cost, success per specialist/tier."""
    from tessera.agents.router import RoutingHistory

    path = state_dir / "routing.sqlite"
    history = RoutingHistory(path)
    try:
        subtasks, outcomes = history.subtasks(), history.outcomes()  # empty when nothing is recorded
    finally:
        history.close()
    n = len(subtasks)
    final: dict[str, int] = {}
    first: dict[str, int] = {}
    for row in subtasks:
        final[row.final] = final.get(row.final, 0) + 1
        first[row.first] = first.get(row.first, 0) + 1
    cost = sum(row.cost for row in subtasks)
    largest = sum(row.largest_cost for row in subtasks)
    success: dict[str, dict[str, dict[str, float]]] = {}
    for (specialist, model), (attempts, ok) in sorted(outcomes.items()):
        rate = round(ok / attempts, 4)
        success.setdefault(specialist, {})[model] = {"attempts": attempts, "success_rate": rate}
    return {
        "subtasks": n,
        "succeeded": sum(row.ok for row in subtasks),
        "tier_share": {t: round(c / n, 4) for t, c in sorted(final.items())},
        "first_tier_share": {t: round(c / n, 4) for t, c in sorted(first.items())},
        "escalation_rate": round(sum(row.escalations > 0 for row in subtasks) / n, 4) if n else 0.0,
        "cost": round(cost, 6),
        "always_largest_cost": round(largest, 6),
        "cost_vs_largest": round(cost / largest, 4) if largest else None,
        "success": success,
    }


@click.command()
@team_option
@json_option
def stats(team_file: Path, as_json: bool) -> None:
    """What routing did on this team's recorded runs: tiers, escalations, cost, success per tier."""
    config = load_team_file(team_file)
    report = routing_stats(config.resolved_state_dir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if not report["subtasks"]:
        click.echo(f"no routed subtasks recorded yet in {config.resolved_state_dir / 'routing.sqlite'}")
        return
    share = ", ".join(f"{t} {s:.0%}" for t, s in report["tier_share"].items())
    click.echo(f"routed subtasks   {report['subtasks']} ({report['succeeded']} succeeded)")
    click.echo(f"finished on       {share}")
    click.echo(f"escalation rate   {report['escalation_rate']:.0%}")
    ratio = report["cost_vs_largest"]
    versus = f" ({ratio:.0%} of always-largest: {report['always_largest_cost']:.4g})" if ratio else ""
    click.echo(f"cost              {report['cost']:.4g}{versus}")
    click.echo("success per specialist and tier:")
    for specialist, tiers in report["success"].items():
        cells = ", ".join(f"{m} {r['success_rate']:.0%} of {r['attempts']}" for m, r in tiers.items())
        click.echo(f"  {specialist:<16} {cells}")


@click.command("routing")
@click.option("--tasks", type=click.IntRange(min=10), default=300, show_default=True, help="Tasks a policy.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the synthetic workload.")
@json_option
def bench_routing(tasks: int, seed: int, as_json: bool) -> None:
    """Routing policies on a seeded synthetic workload: quality and cost against always-largest."""
    from tessera.bench.routing import run_routing_bench

    report = run_routing_bench(tasks, seed)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"routing bench: {tasks} tasks, seed {seed}, {report['seconds']:.1f}s")
    click.echo(f"{'policy':<16} {'quality':>8} {'cost':>8} {'vs largest':>18} {'escalated':>10}  first tier")
    for name, row in report["policies"].items():
        versus = f"{row['quality_vs_largest']:.1%} / {row['cost_vs_largest']:.1%}"
        first = ", ".join(f"{t} {s:.0%}" for t, s in row["first_tier_share"].items())
        click.echo(
            f"{name:<16} {row['quality']:>8.3f} {row['cost']:>8.3f} {versus:>18}"
            f" {row['escalation_rate']:>10.1%}  {first}"
        )
    verdict = "met" if report["target_met"] else "NOT met"
    click.echo(f"target ({report['target']}): {verdict}")
