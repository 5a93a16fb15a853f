"""``tessera ingest``, ``search``, ``memory`` and ``bench retrieval``: thin shells over the memory API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from tessera._words import plural
from tessera.cli._common import json_option, load_team_file, team_option

__all__ = ["bench_retrieval", "ingest", "memory", "search"]

MODES = click.Choice(["hybrid", "dense", "lexical"])
FILE = click.Path(dir_okay=False, path_type=Path)
collection_option = click.option(
    "--collection", "-c", default=None, help="Collection to use (default: the team's memory.collection)."
)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@team_option
@collection_option
@click.option("--prune", is_flag=True, help="Remove files under PATHS that are gone or now ignored.")
@click.option("--reset", is_flag=True, help="Drop the collection first and ingest from scratch.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def ingest(
    paths: tuple[Path, ...],
    team_file: Path,
    collection: str | None,
    prune: bool,
    reset: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Add files and folders (md, txt, rst, html, code, pdf) to the knowledge base.

    Unchanged files are skipped; changed files replace their old chunks. Safe to re-run after a crash.
    """
    from tessera._progress import quiet as quiet_env
    from tessera.memory.ingest import ingest as run_ingest
    from tessera.memory.knowledge import KnowledgeBase

    config = load_team_file(team_file)
    with KnowledgeBase.for_team(config, collection=collection, writer=True) as kb:
        if reset:
            kb.store.reset()
        report = run_ingest(
            kb,
            list(paths),
            prune=prune,
            ignore=config.memory.ignore,
            chunk_chars=config.memory.chunk_chars,
            overlap=config.memory.chunk_overlap,
            progress=not (quiet or as_json or quiet_env()),
        )
    if as_json:
        data = {k: v for k, v in vars(report).items() if k != "failed"}
        data["failed"] = [{"source": s, "reason": r} for s, r in report.failed]
        click.echo(json.dumps(data))
    else:
        click.echo(report.summary())
    if report.failed and not report.ingested and not report.skipped:
        sys.exit(1)


@click.command()
@click.argument("query")
@team_option
@collection_option
@click.option("-k", "k", type=click.IntRange(1, 1000), default=5, show_default=True, help="How many chunks.")
@click.option("--mode", type=MODES, default=None, help="Retrieval mode (default: the team's).")
@click.option("--where", "where_json", default=None, help='Metadata filter (JSON): \'{"kind": "code"}\'.')
@json_option
def search(
    query: str,
    team_file: Path,
    collection: str | None,
    k: int,
    mode: str | None,
    where_json: str | None,
    as_json: bool,
) -> None:
    """Print the knowledge base's best chunks for QUERY, with source and location."""
    from tessera.memory.knowledge import KnowledgeBase

    where = _where(where_json)
    config = load_team_file(team_file)
    with KnowledgeBase.for_team(config, collection=collection) as kb:
        empty = kb.store.count() == 0
        hits = [] if empty else kb.search(query, k, where, mode=mode)  # type: ignore[arg-type]
    if as_json:
        rows = [
            {
                "rank": n,
                "citation": hit.citation(),
                "source": hit.source,
                "location": hit.location,
                "score": hit.score,
                "heading": hit.record.metadata.get("heading"),
                "text": hit.text,
            }
            for n, hit in enumerate(hits, start=1)
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    if empty:
        hint = f"tessera ingest PATH --team {team_file}"
        click.echo(f"the knowledge base is empty; add documents first: {hint}", err=True)
    elif not hits:
        click.echo("no relevant chunks", err=True)
        return
    for n, hit in enumerate(hits, start=1):
        heading = hit.record.metadata.get("heading")
        click.echo(click.style(f"{n}. {hit.citation()}", bold=True) + (f"  ({heading})" if heading else ""))
        snippet = " ".join(hit.text.split())
        click.echo(f"   {snippet[:200]}{'…' if len(snippet) > 200 else ''}")


def _where(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    from tessera.errors import UserError

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--where: not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise UserError(f'--where: expected a JSON object like \'{{"kind": "code"}}\', got {text!r}')
    return value


@click.group()
def memory() -> None:
    """Long-term memory: task summaries and facts the team remembers."""


@memory.command("list")
@team_option
@json_option
def memory_list(team_file: Path, as_json: bool) -> None:
    """List remembered items, oldest first."""
    from tessera.memory.recall import LongTermMemory

    items = LongTermMemory.for_team(load_team_file(team_file)).all()
    if as_json:
        click.echo(json.dumps([vars(m) for m in items], indent=2))
        return
    for item in items:
        click.echo(f"{item.id}  {item.kind:<7}  {item.text}")
    if not items:
        click.echo("no memories", err=True)


@memory.command("forget")
@click.argument("memory_id")
@team_option
def memory_forget(memory_id: str, team_file: Path) -> None:
    """Delete one memory by id."""
    from tessera.memory.recall import LongTermMemory

    if not LongTermMemory.for_team(load_team_file(team_file)).forget(memory_id):
        click.echo(f"no memory {memory_id!r} (see `tessera memory list`)", err=True)
        sys.exit(2)
    click.echo(f"forgot {memory_id}")


@memory.command("clear")
@team_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
def memory_clear(team_file: Path, yes: bool) -> None:
    """Delete every memory of this team (or user, with memory.scope: user)."""
    from tessera.memory.recall import LongTermMemory

    config = load_team_file(team_file)
    if not yes:
        click.confirm(f"forget everything team '{config.name}' remembers?", abort=True)
    count = LongTermMemory.for_team(config).clear()
    click.echo(f"forgot {plural(count, 'memory', 'memories')}")


@click.command("retrieval")
@click.option("--corpus", type=FILE, required=True, help="BEIR corpus.jsonl")
@click.option("--queries", type=FILE, required=True, help="BEIR queries.jsonl")
@click.option("--qrels", type=FILE, required=True, help="qrels .tsv (with or without a header)")
@click.option(
    "--mode",
    "modes",
    type=MODES,
    multiple=True,
    help="Mode to measure; repeat for several (default: all three with --embedder, else lexical).",
)
@click.option("--embedder", default=None, help="Embedder for dense and hybrid (hub id or local path).")
@json_option
def bench_retrieval(
    corpus: Path, queries: Path, qrels: Path, modes: tuple[str, ...], embedder: str | None, as_json: bool
) -> None:
    """nDCG@10, recall@100, ingest time and query latency per mode on BEIR data, one ingest for all modes.

    Plain bm25s and plain Chroma on the same chunks are the baselines; with hybrid, a sweep of the fusion
    settings follows.
    """
    from tessera.bench.retrieval import format_report, run_retrieval_bench

    report = run_retrieval_bench(corpus, queries, qrels, modes=modes, embedder=embedder)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in format_report(report):
        click.echo(line)
