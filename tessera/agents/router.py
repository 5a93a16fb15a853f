"""Tiered routing: the smallest model that can do a subtask, and the next tier up when it cannot.

``routing.tiers`` lists models small to large. A specialist with no ``model`` of its own is routed; one with
a ``model`` is pinned to it. The first tier of a routed subtask is the highest of:

- its specialist's floor (``min_tier``);
- the smallest tier whose ``max_prompt_tokens`` fits the prompt (about 4 characters a token);
- a difficulty estimate (cheap features of the instruction: length, dependencies, hard words), or a
  classifier prompt on the smallest tier (``routing.difficulty: classifier``), or a user
  ``routing.difficulty: module:function`` returning 0..1;
- calibration: the lowest tier at which this specialist has succeeded often enough in recorded runs
  (``<state_dir>/routing.sqlite``), so the router learns the user's own workload.

Every decision has a one-line reason. A failure escalates one tier up, at most ``routing.max_escalations``
times (see :mod:`tessera.graphs.nodes`).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from tessera.errors import ModelUnreachable, SpecialistTimeout
from tessera.models import is_local

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from tessera.config import TeamConfig

__all__ = [
    "FALLBACK_ON",
    "Route",
    "Router",
    "RoutingHistory",
    "SubtaskRecord",
    "classify_difficulty",
    "estimate_difficulty",
]

CHARS_PER_TOKEN = 4
MIN_RUNS = 3
"""Recorded runs of a specialist at a tier before calibration trusts its success rate there."""
GOOD_ENOUGH = 0.8
"""Success rate at which calibration starts a specialist at that tier."""
FALLBACK_ON: tuple[type[Exception], ...] = (ModelUnreachable, SpecialistTimeout)
"""Failures of a remote tier that mean its endpoint is down or slow, not that the task is too hard: the
subtask falls back to a local tier (pydantic-ai's ``FallbackModel(fallback_on=...)``)."""
_HARD = re.compile(
    r"\b(prove|proof|optimi[sz]e|refactor|architect|design|analy[sz]e|derive|complex|concurrent|"
    r"distributed|algorithm|debug|security|legal|compare|trade-?offs?|step[- ]by[- ]step)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Route:
    """Where a subtask runs first, and why."""

    tier: int
    """Index into ``routing.tiers`` (or -1 for a pinned model)."""
    model: str
    reason: str


def estimate_difficulty(instruction: str, dependencies: int = 0) -> float:
    """A cheap 0..1 difficulty: longer instructions, more inputs and hard words score higher."""
    words = len(instruction.split())
    hard = len(_HARD.findall(instruction))
    score = min(words / 400, 0.4) + min(dependencies * 0.1, 0.2) + min(hard * 0.15, 0.4)
    return round(min(score, 1.0), 3)


@dataclass(frozen=True)
class SubtaskRecord:
    """One routed subtask as ``tessera stats`` sees it."""

    specialist: str
    first: str
    """The tier it started on."""
    final: str
    """The tier it ended on."""
    escalations: int
    ok: bool
    cost: float
    """Relative cost of every attempt."""
    largest_cost: float
    """What the same tokens would have cost on the largest tier."""


class RoutingHistory:
    """Successes and failures per (specialist, tier model), kept in SQLite under the team's state dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS outcomes"
                " (specialist TEXT, model TEXT, ok INTEGER, at REAL, cost REAL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS subtasks (specialist TEXT, first TEXT, final TEXT,"
                " escalations INTEGER, ok INTEGER, cost REAL, largest_cost REAL, at REAL)"
            )
            self._db = db
        return self._db

    def record(self, specialist: str, model: str, ok: bool, cost: float = 0.0) -> None:
        """Remember one attempt's outcome."""
        with self._lock:
            self._conn().execute(
                "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?)", (specialist, model, int(ok), time.time(), cost)
            )

    def record_subtask(self, row: SubtaskRecord) -> None:
        """Remember one routed subtask's whole story, for ``tessera stats``."""
        with self._lock:
            self._conn().execute(
                "INSERT INTO subtasks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.specialist,
                    row.first,
                    row.final,
                    row.escalations,
                    int(row.ok),
                    row.cost,
                    row.largest_cost,
                    time.time(),
                ),
            )

    def subtasks(self) -> list[SubtaskRecord]:
        """Every recorded routed subtask, oldest first."""
        if not self.path.exists() and self._db is None:
            return []
        with self._lock:
            rows = self._conn().execute(
                "SELECT specialist, first, final, escalations, ok, cost, largest_cost FROM subtasks"
                " ORDER BY rowid"
            )
            return [SubtaskRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6]) for r in rows.fetchall()]

    def outcomes(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(specialist, model) -> (attempts, successes) over every recorded attempt."""
        if not self.path.exists() and self._db is None:
            return {}
        with self._lock:
            rows = self._conn().execute(
                "SELECT specialist, model, COUNT(*), SUM(ok) FROM outcomes GROUP BY specialist, model"
            )
            return {(r[0], r[1]): (r[2], r[3] or 0) for r in rows.fetchall()}

    def rates(self, specialist: str, last: int = 50) -> dict[str, tuple[int, float]]:
        """Per model: (attempts, success rate) over this specialist's ``last`` attempts there."""
        if not self.path.exists() and self._db is None:
            return {}
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT model, ok FROM outcomes WHERE specialist = ? ORDER BY rowid DESC", (specialist,)
                )
                .fetchall()
            )
        seen: dict[str, list[int]] = {}
        for model, ok in rows:
            if len(seen.setdefault(model, [])) < last:
                seen[model].append(ok)
        return {model: (len(oks), sum(oks) / len(oks)) for model, oks in seen.items()}

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class Router:
    """Chooses each routed subtask's first tier (see the module docstring)."""

    def __init__(
        self,
        config: TeamConfig,
        history: RoutingHistory | None = None,
        difficulty: Callable[[str, int], float] | None = None,
        local: Callable[[str], bool] | None = None,
    ) -> None:
        self.config = config
        self.local = local
        """Whether a model (by name) runs here; by default its config's model class says so."""
        self.tiers = list(config.routing.tiers)
        self.history = history
        self.difficulty = difficulty or estimate_difficulty
        self.down: dict[str, float] = {}
        """Remote tiers in cool-off: model name -> monotonic time it may be tried again."""

    def routed(self, specialist: str) -> bool:
        """Whether ``specialist`` is routed across the tiers (no pinned model, and tiers exist)."""
        spec = self.config.specialists[specialist]
        return bool(self.tiers) and spec.model is None and spec.kind != "tool"

    def choose(
        self, specialist: str, instruction: str, dependencies: int = 0, score: float | None = None
    ) -> Route:
        """The first tier for a subtask of ``specialist`` with this (filled-in) instruction.

        ``score`` is a difficulty already estimated (by the classifier prompt); else the router's own.
        """
        spec = self.config.specialists[specialist]
        if not self.routed(specialist):
            return Route(-1, spec.model or "", "pinned model")
        floors: list[tuple[int, str]] = [(0, "smallest tier")]  # hard limits: calibration stays above them
        if spec.min_tier is not None:
            floors.append((self.tiers.index(spec.min_tier), f"floor {spec.min_tier}"))
        tokens = len(instruction) // CHARS_PER_TOKEN + 1
        fits = [i for i, name in enumerate(self.tiers) if _fits(self.config, name, tokens)]
        if fits and fits[0] > 0:
            floors.append((fits[0], f"~{tokens} prompt tokens exceed smaller tiers"))
        reasons = list(floors)
        if score is None:
            score = self.difficulty(instruction, dependencies)
        by_difficulty = min(int(score * len(self.tiers)), len(self.tiers) - 1)
        if by_difficulty > 0:
            reasons.append((by_difficulty, f"difficulty {score:.2f}"))
        tier, reason = max(reasons, key=lambda pair: pair[0])
        if not self.up(self.tiers[tier]):
            down = self.tiers[tier]
            lower = [i for i in range(tier - 1, -1, -1) if self.up(self.tiers[i])]
            higher = [i for i in range(tier + 1, len(self.tiers)) if self.up(self.tiers[i])]
            if lower or higher:
                tier = (lower or higher)[0]
                return Route(tier, self.tiers[tier], f"{down} is down (cool-off); {reason}")
        calibrated = self._calibrated(specialist, max(i for i, _ in floors))
        if calibrated is not None and calibrated[0] != tier:
            tier, runs, rate = calibrated
            name = self.tiers[tier]
            reason = f"calibrated: {rate:.0%} of {runs} recent runs succeeded on {name} ({reason})"
        return Route(tier, self.tiers[tier], reason)

    def up(self, model: str) -> bool:
        """False while ``model`` (a remote tier) is in its cool-off after failing to answer."""
        return self.down.get(model, 0.0) <= time.monotonic()

    def mark_down(self, model: str) -> None:
        """Take a remote tier out of routing for ``routing.cooloff_s`` seconds."""
        self.down[model] = time.monotonic() + self.config.routing.cooloff_s

    def remote(self, model: str) -> bool:
        """Whether ``model`` is reached over the network: its model class is not ``local``."""
        if self.local is not None:
            return not self.local(model)
        return not is_local(self.config.models[model])

    def unreachable(self, model: str, failure: BaseException | None) -> bool:
        """Whether ``model`` failed because its endpoint is down or slow (not because the task is hard):
        a remote tier whose ``failure`` is one of :data:`FALLBACK_ON`."""
        return self.remote(model) and isinstance(failure, FALLBACK_ON)

    def fallback(self, tried: list[str]) -> str | None:
        """The best local tier not tried yet, for work whose remote tier is down."""
        local = [t for t in self.tiers if not self.remote(t) and t not in tried and self.up(t)]
        return local[-1] if local else None

    def record(self, specialist: str, model: str, ok: bool) -> None:
        """Remember how an attempt on ``model`` went, for calibration."""
        if self.history is not None:
            self.history.record(specialist, model, ok)

    def _calibrated(self, specialist: str, floor: int) -> tuple[int, int, float] | None:
        """(tier, runs, success rate) of the lowest tier from ``floor`` up that recorded runs show is good
        enough; None while a lower tier has too few runs to judge (the static choice stands and keeps
        exploring)."""
        if not self.config.routing.calibrate:
            return None
        rates = self.history.rates(specialist) if self.history is not None else {}
        for i in range(floor, len(self.tiers)):
            runs, rate = rates.get(self.tiers[i], (0, 0.0))
            if runs < MIN_RUNS:
                return None
            if rate >= GOOD_ENOUGH:
                return i, runs, rate
        return None


CLASSIFY_PROMPT = (
    "Rate how hard the task below is for a small language model, from 1 (trivial: a look-up, a rewrite, a "
    "short fact) to 5 (deep reasoning: proofs, long or tricky code, careful analysis). Reply with JSON."
)


class _Rating(BaseModel):
    difficulty: Literal[1, 2, 3, 4, 5]


async def classify_difficulty(model: BaseChatModel, instruction: str) -> float:
    """Difficulty 0..1 from a classifier prompt on ``model`` (``routing.difficulty: classifier``)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    rating = await model.with_structured_output(_Rating).ainvoke(
        [SystemMessage(content=CLASSIFY_PROMPT), HumanMessage(content=f"Task: {instruction[:4000]}")]
    )
    return (_Rating.model_validate(rating).difficulty - 1) / 4


def _fits(config: TeamConfig, model: str, tokens: int) -> bool:
    limit = config.models[model].max_prompt_tokens
    n_ctx = getattr(config.models[model], "n_ctx", None)
    if limit is None and n_ctx:
        limit = int(n_ctx) * 3 // 4  # leave room for the reply
    return limit is None or tokens <= limit
