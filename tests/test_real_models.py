"""The default team on its real models: Qwen2.5-Coder 1.5B and 0.5B (Q4_K_M GGUF) and all-MiniLM-L6-v2.

``scripts/setup.sh`` provides the models (``tessera models pull --team configs/default.yaml``); where they
are absent every test here skips, saying so. Together they take about three minutes on two cores.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.config import LlamaCppModelConfig, TeamConfig, load_team
from tessera.models.pool import ModelPool
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.real_models, pytest.mark.slow]

DEFAULT = REPO / "configs" / "default.yaml"
HUMANEVAL = REPO.parent / "shared" / "data" / "HumanEval.jsonl.gz"


def _missing(config: TeamConfig) -> list[str]:
    from tessera.models._download import cached_file

    missing = [
        f"{c.repo}/{c.file}"
        for c in config.models.values()
        if isinstance(c, LlamaCppModelConfig) and c.repo and cached_file(c.repo, str(c.file)) is None
    ]
    embedder = config.memory.embedder
    if embedder:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            snapshot_download(embedder, local_files_only=True)
        except (LocalEntryNotFoundError, FileNotFoundError):
            missing.append(embedder)
    return missing


@pytest.fixture(scope="module")
def default_team() -> TeamConfig:
    config = load_team(DEFAULT)
    missing = _missing(config)
    if missing:
        pytest.skip(
            f"real models absent: {', '.join(missing)} "
            "(scripts/setup.sh or `tessera models pull --team configs/default.yaml` provides them)"
        )
    return config


@pytest.fixture(scope="module")
def pool(default_team: TeamConfig) -> Iterator[ModelPool]:
    with ModelPool.from_team(default_team) as pool:
        yield pool


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("Compute the sum of the squares of the integers from 1 to 100.", {"coder"}),
        (
            "What does our onboarding guide say about VPN access? Answer from the knowledge base.",
            {"researcher"},
        ),
        ("Read the text in the scanned page /data/invoice.png.", {"reader"}),
    ],
)
def test_the_planner_writes_valid_plans_naming_the_right_specialists(
    pool: ModelPool, default_team: TeamConfig, task: str, expected: set[str]
) -> None:
    from tessera.agents.planner import make_plan, validate_plan

    planner = pool.get(default_team.planner.model)
    outcome = asyncio.run(
        make_plan(planner, task, default_team.specialists, max_subtasks=default_team.planner.max_subtasks)
    )
    assert not outcome.fallback and outcome.attempts == 1, outcome.problems
    assert validate_plan(outcome.plan, default_team.specialists, default_team.planner.max_subtasks) == []
    assert {s.specialist for s in outcome.plan.subtasks} == expected, outcome.plan


def test_the_coder_on_the_small_model_solves_humaneval_problems(pool: ModelPool) -> None:
    if not HUMANEVAL.is_file():
        pytest.skip(f"{HUMANEVAL} is absent (../shared is not beside the checkout)")
    from tessera.bench import humaneval as he

    wanted = {"HumanEval/0", "HumanEval/4", "HumanEval/7"}
    problems = [p for p in he.load_problems(HUMANEVAL) if p.task_id in wanted]
    report = he.run_humaneval(problems, he.model_solver(pool.get("small")), mode="small", jobs=1)
    assert report.passed == 3, report.to_json()["failures"]


def test_a_two_part_task_runs_done_on_the_default_team(default_team: TeamConfig, tmp_path: Path) -> None:
    done = run_cli(
        "run", "--team", str(DEFAULT), "--json",
        "Compute the 20th Fibonacci number with Python, then explain in one sentence what the Fibonacci "
        "sequence is.",
        env={"TESSERA_STATE_DIR": str(tmp_path / "state"), "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["status"] == "done", result
    subtasks = result["subtasks"]
    assert len(subtasks) >= 2 and all(s["status"] == "done" for s in subtasks), subtasks
    assert "coder" in {s["specialist"] for s in subtasks}
    answer = result["answer"].lower()
    assert "6765" in answer, answer  # the computed part
    assert "sum" in answer and ("preceding" in answer or "previous" in answer), answer  # the explanation


DOCS = {
    "vpn.md": "# Remote access\n\nTo reach internal services from home, install WireGuard and import the "
    "profile from the IT portal. Access is granted after the security training.\n",
    "expenses.md": "# Expenses\n\nSubmit receipts within 30 days through the finance app. Meals are "
    "reimbursed up to 40 euros a day while travelling.\n",
    "leave.md": "# Leave\n\nEmployees get 25 days of paid leave a year. Unused days carry over until the end "
    "of March.\n",
    "oncall.md": "# On call\n\nThe on-call engineer answers pages within 15 minutes. Rotations change every "
    "Monday at 10:00.\n",
    "coffee.md": "# Kitchen\n\nThe espresso machine on the third floor is descaled every Friday; use only "
    "filtered water.\n",
    "deploy.md": "# Releases\n\nProduction deploys go through the release pipeline after two approvals; "
    "hotfixes need the incident commander's sign-off.\n",
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("How do I connect to the company network remotely?", "vpn.md"),
        ("How much can I claim for food on a business trip?", "expenses.md"),
        ("How many vacation days do I have?", "leave.md"),
        ("How fast must I respond when I get paged?", "oncall.md"),
        ("Who must approve an urgent fix before it ships?", "deploy.md"),
    ],
)
def test_hybrid_search_with_minilm_ranks_the_right_document_first(
    knowledge: object, query: str, expected: str
) -> None:
    from tessera.memory.knowledge import KnowledgeBase

    assert isinstance(knowledge, KnowledgeBase)
    hits = knowledge.search(query, k=3, mode="hybrid")
    assert hits and Path(hits[0].source).name == expected, [(Path(h.source).name, h.score) for h in hits]


@pytest.fixture(scope="module")
def knowledge(default_team: TeamConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tessera.memory.ingest import ingest
    from tessera.memory.knowledge import KnowledgeBase

    root = tmp_path_factory.mktemp("kb")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    config = default_team.model_copy(update={"state_dir": root / "state"})
    with KnowledgeBase.for_team(config, writer=True) as kb:
        report = ingest(kb, [docs], progress=False)
        assert report.summary()
        yield kb
