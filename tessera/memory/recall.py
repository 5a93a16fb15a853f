"""Long-term memory: what the team remembers across runs and sessions.

After a task that finished, the team stores a short summary of it, plus any facts the user stated ("remember
that the deploy freezes on Fridays", "my name is Ada"), in the ``memory`` collection of its Chroma store,
tagged with a scope (the team, or the user). Before planning, the planner recalls the few memories most
relevant to the new task into its context. Recall is lexical (bm25s) and, with an embedder, fused with
dense similarity, like knowledge search. Memories are few, so they are stored with placeholder vectors and
embedded at recall time through the embedder's content-hash cache; changing the embedder never strands
them.

Writes take the store's writer lock for a moment only; when an ingest holds it for longer, the memory is
dropped with a warning rather than stalling the run.

Recall runs before every plan, so it must be cheap: importing chromadb alone takes most of a second. Each
write therefore also saves the memories as JSON (``<state_dir>/memory/memories.json``), stamped with the
Chroma database file's size and modification time; recall reads that file and opens Chroma only when the
stamp no longer matches (another writer changed the store), then saves a fresh copy. Chroma stays the
source of truth. A ``chroma_url`` server has no local file to stamp, so recall asks it every time.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.memory._lock import StoreLockedError, WriterLock
from tessera.memory.knowledge import rrf
from tessera.memory.lexical import LexicalIndex
from tessera.memory.store import Record, chroma_client

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.memory.embedder import Embedder

__all__ = [
    "LongTermMemory",
    "Memory",
    "recall_context",
    "remember_run",
    "stated_facts",
    "summarize",
    "team_memory",
]

COLLECTION = "memory"
_REFERS_BACK = re.compile(
    r"\b(again|earlier|last time|previous(ly)?|you (said|told me|found|gave|computed|answered|wrote)|"
    r"what did (you|i|we))\b",
    re.IGNORECASE,
)
"""A task that refers back to earlier work: only such a task gets summaries of earlier tasks recalled."""
_FACT = re.compile(
    r"^(?:please\s+)?(?:remember|note|keep in mind|fyi|for the record)(?:\s+that)?[\s,:]+(?P<fact>.+)$"
    r"|^(?P<self>(?:my|our)\s+[\w\s'-]{1,40}?\s+(?:is|are|was)\s+.+"
    r"|i(?:'m| am)\s+.+|we\s+(?:use|prefer)\s+.+)$",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Memory:
    """One remembered item."""

    id: str
    text: str
    kind: str
    created_at: float
    thread: str = ""


def stated_facts(task: str) -> list[str]:
    """Sentences of ``task`` that state a fact to keep (``remember that ...``, ``my X is Y``)."""
    facts = []
    for sentence in _SENTENCE.split(task):
        sentence = sentence.strip()
        if sentence.endswith("?"):
            continue
        match = _FACT.match(sentence.rstrip("."))
        if match:
            fact = (match.group("fact") or match.group("self")).strip()
            facts.append(fact[0].upper() + fact[1:] + ".")
    return facts


def summarize(task: str, answer: str, *, limit: int = 400) -> str:
    """A short summary of a finished task: the task and the start of its answer."""
    task = " ".join(task.split())
    answer = " ".join(answer.split())
    text = f"Task: {task[:200]}" + (f" | Answer: {answer}" if answer else "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LongTermMemory:
    """The ``memory`` collection of a team's store, seen through one scope."""

    def __init__(
        self,
        root: Path,
        scope: str,
        *,
        embedder: Embedder | Callable[[], Embedder | None] | None = None,
        chroma_url: str | None = None,
        min_similarity: float = 0.3,
        lock_wait_s: float = 3.0,
    ) -> None:
        self.root = root
        self.scope = scope
        loads = embedder is not None and not hasattr(embedder, "embed")  # a loader, not an embedder
        self._embedder: Embedder | None = None if loads else embedder  # type: ignore[assignment]
        self._load_embedder: Callable[[], Embedder | None] | None = embedder if loads else None  # type: ignore[assignment]
        self._embedder_lock = threading.Lock()
        self.chroma_url = chroma_url
        self.min_similarity = min_similarity
        self.lock_wait_s = lock_wait_s
        self._lock = WriterLock(root / "chroma") if chroma_url is None else None
        self._opened: Any = None

    @property
    def embedder(self) -> Embedder | None:
        """The embedder for dense recall; a loader given instead runs on first use (writes need none,
        and loading one takes seconds: torch and the model)."""
        with self._embedder_lock:
            if self._load_embedder is not None:
                self._embedder, self._load_embedder = self._load_embedder(), None
            return self._embedder

    @property
    def _collection(self) -> Any:
        """The Chroma collection, opened on first use (recall from the saved copy never opens it)."""
        if self._opened is None:
            from tessera.memory._chroma_ef import embedding_function

            client = chroma_client(self.root / "chroma", self.chroma_url)
            self._opened = client.get_or_create_collection(
                COLLECTION, embedding_function=embedding_function(None), metadata={"hnsw:space": "cosine"}
            )
        return self._opened

    @classmethod
    def for_team(cls, config: TeamConfig) -> LongTermMemory:
        """The memory of the team ``config`` describes, scoped as ``memory.scope`` says."""
        from tessera.memory.embedder import load_embedder

        memory = config.memory
        root = config.resolved_state_dir / "memory"
        scope = f"user:{getpass.getuser()}" if memory.scope == "user" else f"team:{config.name}"
        spec = memory.embedder
        embedder = (lambda: load_embedder(spec, cache_dir=root)) if spec else None
        return cls(
            root, scope, embedder=embedder, chroma_url=memory.chroma_url, min_similarity=memory.min_similarity
        )

    def remember(self, texts: list[tuple[str, str]], *, thread: str = "") -> list[str]:
        """Store ``(kind, text)`` items; return the ids of those stored.

        Nothing empty or repeated is stored: an item with no word in it is dropped, a fact already known
        is not stored again, and a summary of a task already summarized replaces the older one (the newest
        answer is the one worth recalling).
        """
        items = list(
            {_key(kind, text): (kind, text) for kind, text in texts if _has_words(kind, text)}.values()
        )
        if not items:
            return []
        with self._writing():
            known: dict[tuple[str, str], list[str]] = {}
            for memory in self.all():
                known.setdefault(_key(memory.kind, memory.text), []).append(memory.id)
            stale = [
                rid for kind, text in items if kind == "summary" for rid in known.get(_key(kind, text), [])
            ]
            items = [
                (kind, text) for kind, text in items if kind == "summary" or _key(kind, text) not in known
            ]
            if stale:
                self._collection.delete(ids=stale)
            if not items:
                return []
            ids = [uuid.uuid4().hex[:12] for _ in items]
            now = time.time()
            metas = [
                {"kind": kind, "scope": self.scope, "created_at": now, "thread": thread} for kind, _ in items
            ]
            docs = [text for _, text in items]
            self._collection.add(ids=ids, documents=docs, embeddings=[[1.0]] * len(docs), metadatas=metas)
            self._save_copy()
        return ids

    def all(self) -> list[Memory]:
        """Every memory in this scope, oldest first."""
        return _in_scope(self._read({"scope": self.scope}), self.scope)

    def recall(self, query: str, k: int = 3, *, kinds: Collection[str] | None = None) -> list[Memory]:
        """The ``k`` memories most relevant to ``query`` (none when nothing shares a term or meaning),
        among those of ``kinds`` (``fact``, ``summary``) when given."""
        if k <= 0:
            return []
        items = [m for m in self._saved() if kinds is None or m.kind in kinds]
        if not items:
            return []
        by_id = {m.id: m for m in items}
        records = [Record(m.id, m.text, {"kind": m.kind}) for m in items]
        lexical = [r for r, _ in LexicalIndex.build(records).search(query, k)]
        rankings = [lexical]
        if self.embedder is not None:
            rankings.append(self._dense(query, records, k))
        return [by_id[r.id] for r, _, _ in rrf(rankings, k) if r.id in by_id]

    def forget(self, memory_id: str) -> bool:
        """Delete one memory of this scope; False when there is no such id."""
        found = self._collection.get(ids=[memory_id], where={"scope": self.scope}, include=[])
        if not found["ids"]:
            return False
        with self._writing():
            self._collection.delete(ids=[memory_id])
            self._save_copy()
        return True

    def clear(self) -> int:
        """Delete every memory of this scope; return how many there were."""
        ids = self._collection.get(where={"scope": self.scope}, include=[])["ids"]
        if ids:
            with self._writing():
                self._collection.delete(ids=ids)
                self._save_copy()
        return len(ids)

    # -- the saved copy that recall reads (see the module docstring) ----------------------------------

    @property
    def copy_path(self) -> Path:
        """Where the memories of every scope are saved for recall."""
        return self.root / "memories.json"

    def _read(self, where: dict[str, str] | None = None) -> list[tuple[str, Memory]]:
        """``(scope, memory)`` pairs from Chroma."""
        found = self._collection.get(where=where, include=["documents", "metadatas"])
        return [
            (
                str(meta.get("scope", "")),
                Memory(
                    rid, doc or "", str(meta["kind"]), float(meta["created_at"]), str(meta.get("thread", ""))
                ),
            )
            for rid, doc, meta in zip(found["ids"], found["documents"], found["metadatas"], strict=True)
        ]

    def _saved(self) -> list[Memory]:
        """This scope's memories from the saved copy; from Chroma (saving a new copy) when it is stale."""
        stamp = _stamp(self.root / "chroma") if self.chroma_url is None else None
        if stamp is None:
            return self.all()
        try:
            saved = json.loads(self.copy_path.read_text(encoding="utf-8"))
            if saved["stamp"] == stamp:
                return _in_scope(((m.pop("scope"), Memory(**m)) for m in saved["memories"]), self.scope)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        assert self._lock is not None
        try:  # under the writer lock, so that no write lands between reading Chroma and stamping
            self._lock.acquire()
        except StoreLockedError:
            return self.all()
        try:
            return _in_scope(self._save_copy(), self.scope)
        finally:
            self._lock.release()

    def _save_copy(self) -> list[tuple[str, Memory]]:
        """Save every scope's memories with the store's stamp (the writer lock is held); return them."""
        pairs = self._read()
        stamp = _stamp(self.root / "chroma")
        if stamp is None:
            return pairs
        data = {"stamp": stamp, "memories": [{"scope": scope, **vars(m)} for scope, m in pairs]}
        tmp = self.copy_path.with_name(f".{self.copy_path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.copy_path)
        return pairs

    def _dense(self, query: str, records: list[Record], k: int) -> list[Record]:
        assert self.embedder is not None
        vectors = self.embedder.embed([query, *(r.text for r in records)])
        query_vector = vectors[0]
        scored = [
            (sum(a * b for a, b in zip(query_vector, v, strict=True)), r)
            for v, r in zip(vectors[1:], records, strict=True)
        ]
        scored = [(sim, r) for sim, r in scored if sim >= self.min_similarity]
        return [r for _, r in sorted(scored, key=lambda pair: -pair[0])[:k]]

    def _writing(self) -> _Held:
        return _Held(self._lock, self.lock_wait_s)


class _Held:
    """Hold the writer lock for one short write, waiting up to ``wait_s`` for an ingest to finish."""

    def __init__(self, lock: WriterLock | None, wait_s: float) -> None:
        self.lock = lock
        self.wait_s = wait_s

    def __enter__(self) -> None:
        if self.lock is None:
            return
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                self.lock.acquire()
                return
            except StoreLockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.lock is not None:
            self.lock.release()


def _in_scope(pairs: Iterable[tuple[str, Memory]], scope: str) -> list[Memory]:
    """The memories of ``scope``, oldest first."""
    return sorted((m for s, m in pairs if s == scope), key=lambda m: (m.created_at, m.id))


def _stamp(chroma_dir: Path) -> list[list[int | str]] | None:
    """Size and modification time of the Chroma database's files; None when there is no database."""
    stamp: list[list[int | str]] = []
    for name in ("chroma.sqlite3", "chroma.sqlite3-wal"):
        try:
            info = os.stat(chroma_dir / name)
        except OSError:
            if not stamp:
                return None
            continue
        stamp.append([name, info.st_size, info.st_mtime_ns])
    return stamp


def _subject(kind: str, text: str) -> str:
    """What a memory is about: a summary's task, or the whole text of a fact."""
    return text.split(" | Answer: ", 1)[0].removeprefix("Task:") if kind == "summary" else text


def _key(kind: str, text: str) -> tuple[str, str]:
    """Memories with the same key say the same thing (case, spacing and a final period aside)."""
    return kind, " ".join(_subject(kind, text).split()).rstrip(".").casefold()


def _has_words(kind: str, text: str) -> bool:
    return any(ch.isalnum() for ch in _subject(kind, text))


_TEAMS: dict[tuple[Path, str], LongTermMemory] = {}
_TEAMS_LOCK = threading.Lock()


def team_memory(config: TeamConfig) -> LongTermMemory:
    """The team's long-term memory, opened once per process."""
    key = (config.resolved_state_dir, config.name)
    with _TEAMS_LOCK:
        if key not in _TEAMS:
            _TEAMS[key] = LongTermMemory.for_team(config)
        return _TEAMS[key]


def recall_context(config: TeamConfig, task: str) -> list[Memory]:
    """The memories to put in the planner's context for ``task`` (none when long-term memory is off).

    Stated facts always compete; summaries of earlier tasks only when ``task`` refers back to earlier
    work ("again", "last time", "what did you find"). A summary in the prompt of a small planner derails
    plans that have nothing to do with it: on the task suite's 14 tasks of several steps, the 1.5B planned
    14 right with no memory, 10 with the summary of the same task recalled (a run repeated) and 12 with
    the summary of another task, whose subtasks it sometimes copied into the plan.
    """
    memory = config.memory
    if not memory.long_term or memory.recall_k == 0:
        return []
    if memory.chroma_url is None and not (config.resolved_state_dir / "memory" / "chroma").exists():
        return []  # nothing remembered yet: do not pay for importing chromadb
    kinds = None if _REFERS_BACK.search(task) else ("fact",)
    return team_memory(config).recall(task, memory.recall_k, kinds=kinds)


def remember_run(config: TeamConfig, task: str, answer: str, *, thread: str = "") -> None:
    """Store a finished task's summary and stated facts.

    Raises :class:`~tessera.memory._lock.StoreLockedError` when an ingest holds the store for longer than
    the memory waits. Writing needs no embedder (memories are embedded when recalled), so none is loaded.
    """
    if not config.memory.long_term:
        return
    items = [("fact", fact) for fact in stated_facts(task)]
    items.append(("summary", summarize(task, answer)))
    team_memory(config).remember(items, thread=thread)
