"""The retriever specialist: answers from the knowledge base with citations that point at the right lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tessera import Team, TeamConfig
from tessera.agents.retriever import NOTHING_FOUND
from tessera.memory.ingest import ingest
from tessera.memory.knowledge import KnowledgeBase
from tessera.models.function import FunctionModel
from tests import fakes
from tests.memory import recording

GUIDE = "\n".join(
    [
        "# Operations guide",
        "",
        "## Monitoring",
        "",
        "Dashboards live in Grafana.",
        "Alerts page the on-call engineer.",
        "",
        "## Deploys",
        "",
        "The deploy window is Tuesday 14:00 UTC.",
        "Deploys outside the window need a second reviewer.",
        "",
    ]
    + [f"Filler line {i} about unrelated housekeeping." for i in range(60)]
)


def team_with_docs(
    tmp_path: Path, model: str | None = "answerer", answerer: str = "tests.memory.recording:answerer"
) -> tuple[Team, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    guide = docs / "guide.md"
    guide.write_text(GUIDE)
    (docs / "cooking.md").write_text("# Cooking\n\nBoil pasta for nine minutes in salted water.\n")
    specialist: dict[str, Any] = {"description": "answers from the docs", "kind": "retriever"}
    if model:
        specialist["model"] = "answerer"
    config = TeamConfig.from_dict(
        {
            "name": "docs",
            "state_dir": str(tmp_path / "state"),
            "models": {
                "planner": {"backend": "function", "callable": "tessera.testing.demo:planner"},
                "answerer": {"backend": "function", "callable": answerer},
            },
            "planner": {"model": "planner"},
            "specialists": {"docs": specialist},
            "memory": {"long_term": False, "chunk_chars": 300, "chunk_overlap": 0},
        }
    )
    with KnowledgeBase.for_team(config, writer=True) as kb:
        ingest(kb, [docs], progress=False, chunk_chars=300, overlap=0)
    return Team(config), guide


def test_citations_point_at_the_file_and_lines_that_hold_the_answer(tmp_path: Path) -> None:
    team, guide = team_with_docs(tmp_path)
    result = team.run("When is the deploy window?")
    sub = result.subtasks[0]
    assert sub.error is None
    first = sub.artifacts["sources"][0]
    assert first["source"] == guide.resolve().as_posix()
    start, _, end = first["location"].partition("-")
    lines = guide.read_text().splitlines()[int(start) - 1 : int(end or start)]
    assert "The deploy window is Tuesday 14:00 UTC." in lines
    assert int(end or start) - int(start) < 10  # a tight range, not the whole file
    assert "Tuesday 14:00 UTC" in sub.output and "[1]" in sub.output
    assert sub.output.rstrip().endswith(f"[1] {first['citation']}")  # only the cited source is listed
    assert first["citation"] == f"{guide.resolve().as_posix()}:{first['location']}"  # outside cwd: absolute
    prompt = recording.ANSWERER_SAW[-1]
    assert prompt.index("[1] ") < prompt.index("Question: When is the deploy window?")


def test_nothing_relevant_means_saying_so_without_asking_the_model(tmp_path: Path) -> None:
    team, _ = team_with_docs(tmp_path)
    calls = len(recording.ANSWERER_SAW)
    result = team.run("Explain quantum chromodynamics.")
    assert result.subtasks[0].output == NOTHING_FOUND
    assert result.subtasks[0].artifacts["sources"] == []
    assert len(recording.ANSWERER_SAW) == calls


def test_without_a_model_the_retriever_answers_with_the_numbered_chunks(tmp_path: Path) -> None:
    team, guide = team_with_docs(tmp_path, model=None)
    sub = team.run("How long do I boil pasta?").subtasks[0]
    assert sub.output.startswith("[1] ") and "cooking.md:" in sub.output.splitlines()[0]
    assert "Boil pasta for nine minutes" in sub.output


def test_the_knowledge_tool_searches_for_a_tool_agent_and_as_a_langchain_tool(tmp_path: Path) -> None:
    from tessera.tools.base import ToolEnv, resolve_tool

    team, guide = team_with_docs(tmp_path)
    config = team.config.model_copy(
        update={
            "specialists": {
                "lookup": team.config.specialists["docs"].model_copy(
                    update={"kind": "tool", "tool": "knowledge", "model": None}
                )
            }
        }
    )
    sub = Team(config).run("deploy window reviewer").subtasks[0]
    assert sub.error is None and sub.output.startswith("[1] ")
    assert sub.artifacts["sources"][0]["source"] == guide.resolve().as_posix()
    tool = resolve_tool("knowledge", ToolEnv(config, tmp_path), where="test")
    assert "Tuesday 14:00 UTC" in tool.invoke({"query": "deploy window", "k": 1})
    assert tool.invoke({"query": "quantum chromodynamics"}) == "no relevant passages in the knowledge base"


def test_an_escalated_retriever_reuses_the_sources_instead_of_searching_again(
    tmp_path: Path, monkeypatch: Any
) -> None:
    team, guide = team_with_docs(tmp_path, model=None)
    config = team.config.model_copy(deep=True)
    config.models["small"] = config.models["answerer"].model_copy(update={"callable": None})
    config.routing.tiers = ["small", "answerer"]
    searches: list[str] = []
    search = KnowledgeBase.search

    def counted(self: KnowledgeBase, query: str, *args: Any, **kwargs: Any) -> Any:
        searches.append(query)
        return search(self, query, *args, **kwargs)

    monkeypatch.setattr(KnowledgeBase, "search", counted)
    broken = FunctionModel(fakes.broken, model_id="small")
    sub = Team(config, models={"small": broken}).run("When is the deploy window?").subtasks[0]
    assert (sub.status, sub.tier, len(sub.escalations)) == ("done", "answerer", 1)
    assert "Tuesday 14:00 UTC" in sub.output
    assert searches == ["When is the deploy window?"]  # one search, shared by both tiers


def cites_only(messages: list[dict[str, Any]], **_: Any) -> str:
    return "[1]"


def test_an_answer_that_only_cites_sources_fails(tmp_path: Path) -> None:
    """A small model sometimes answers "[1]": that is not an answer, so the attempt fails (and escalates)."""
    team, _ = team_with_docs(tmp_path, answerer="tests.agents.test_retriever:cites_only")
    result = team.run("When is the deploy window?")
    sub = result.subtasks[0]
    assert sub.status == "failed" and "only cites sources" in (sub.error or ""), sub
