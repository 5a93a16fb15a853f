"""Config sections: routing, memory, tools, runtime, distributed (re-exported by :mod:`tessera.config`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RoutingConfig(_Section):
    """Tiers of models, small to large, and how far a failing subtask may escalate."""

    tiers: list[str] = Field(default_factory=list)
    max_escalations: int = Field(1, ge=0, le=10)
    cooloff_s: float = Field(60.0, ge=0, description="How long an unreachable endpoint stays down.")
    difficulty: str | None = Field(
        None,
        description="'classifier' (the smallest tier rates each instruction) or "
        "module:function(instruction, dependencies) -> 0..1, instead of the built-in estimate.",
    )
    calibrate: bool = Field(True, description="Learn each specialist's starting tier from recorded runs.")

    @model_validator(mode="after")
    def _check_difficulty(self) -> RoutingConfig:
        if self.difficulty not in (None, "classifier") and ":" not in self.difficulty:
            raise ValueError(f"difficulty: {self.difficulty!r} is neither 'classifier' nor module:function")
        return self


class MemoryConfig(_Section):
    """Knowledge base and long-term memory on Chroma, under ``<state_dir>/memory``."""

    retrieval: Literal["hybrid", "dense", "lexical"] | None = Field(
        None, description="Default: hybrid with an embedder, else lexical (bm25s, no model at all)."
    )
    embedder: str | None = Field(
        None, description="Hub id or local path of a sentence-transformer, or a GGUF embedding model."
    )
    chroma_url: str | None = Field(None, description="A `chroma run` server, for several writers.")
    collection: str = Field("knowledge", pattern=_NAME, min_length=3, max_length=60)
    chunk_chars: int = Field(1500, ge=200, le=20000, description="Largest chunk, in characters.")
    chunk_overlap: int = Field(200, ge=0, description="Characters a chunk repeats from the one before.")
    ignore: list[str] = Field(default_factory=list, description="Extra globs `tessera ingest` skips.")
    top_k: int = Field(5, ge=1, le=50, description="Chunks the retriever puts in its prompt.")
    min_similarity: float = Field(
        0.3, ge=-1, le=1, description="Dense hits below this cosine similarity count as not relevant."
    )
    fusion: Literal["rrf", "convex"] = Field(
        "rrf", description="How hybrid fuses: reciprocal ranks, or a convex combination of normalised scores."
    )
    dense_weight: float = Field(
        0.5, ge=0, le=1, description="The dense list's share in hybrid fusion; 0.5 weighs both alike."
    )
    fusion_depth: int = Field(50, ge=1, le=1000, description="Candidates hybrid takes from each list.")
    long_term: bool = Field(True, description="Remember task summaries and stated facts across runs.")
    recall_k: int = Field(3, ge=0, le=20, description="Memories recalled into the planner's context.")
    scope: Literal["team", "user"] = Field("team", description="Whose memories: the team's, or per $USER.")

    @model_validator(mode="after")
    def _check(self) -> MemoryConfig:
        if self.retrieval in ("dense", "hybrid") and not self.embedder:
            raise ValueError(f"retrieval {self.retrieval!r} needs an 'embedder' (or use 'lexical')")
        if self.chunk_overlap > self.chunk_chars // 2:
            raise ValueError("chunk_overlap must be at most half of chunk_chars")
        return self

    @property
    def mode(self) -> Literal["hybrid", "dense", "lexical"]:
        """The retrieval mode in effect."""
        if self.retrieval is not None:
            return self.retrieval
        return "hybrid" if self.embedder else "lexical"


class SandboxConfig(_Section):
    """Limits for running generated code (the ``python`` tool and the coder)."""

    wall_s: float = Field(10.0, gt=0, description="Wall-clock limit per run.")
    cpu_s: int = Field(10, ge=1, description="CPU-seconds limit per run.")
    memory_mb: int = Field(512, ge=16, description="Address-space limit per process.")
    max_processes: int = Field(16, ge=1, description="Processes and threads the code may have.")
    max_output_kb: int = Field(256, ge=1, description="stdout and stderr are each cut at this size.")
    work_dir_mb: int = Field(
        256, ge=1, description="What the code may write to its work dir in all (bubblewrap: a tmpfs, in RAM)."
    )


class OcrConfig(_Section):
    """The ``ocr`` tool: tesseract."""

    lang: str = Field("eng", description="Tesseract languages, e.g. eng+deu (Debian: tesseract-ocr-deu).")
    psm: int | None = Field(None, ge=0, le=13, description="Tesseract page segmentation mode.")


class TtsConfig(_Section):
    """The ``tts`` tool: text to a WAV file."""

    engine: str = Field("espeak-ng", description="espeak-ng, or module:Class of a custom engine.")
    voice: str = Field("en", description="Engine voice, e.g. en-us.")
    rate: int = Field(175, ge=20, le=600, description="Words per minute.")
    output_dir: Path | None = Field(None, description="Default: <state_dir>/outputs.")


class AsrConfig(_Section):
    """The ``asr`` tool: speech to text with faster-whisper (``pip install "tessera[asr]"``)."""

    model: str = Field(
        "Systran/faster-whisper-base",
        description="Hub id of a CTranslate2 Whisper model, or a local folder holding one.",
    )
    language: str | None = Field(
        None, pattern=r"^[a-z]{2,3}$", description="Spoken language, e.g. en; None: detected per file."
    )
    beam_size: int = Field(5, ge=1, le=20, description="Beam search width (1: greedy, fastest).")
    compute_type: str = Field(
        "int8", description="CTranslate2 compute type: int8, int8_float32, float32, float16, ..."
    )
    threads: int = Field(2, ge=1, le=256, description="CPU threads for one transcription.")


class ToolsConfig(_Section):
    """Settings of the built-in tools."""

    python: SandboxConfig = Field(default_factory=lambda: SandboxConfig())
    ocr: OcrConfig = Field(default_factory=lambda: OcrConfig())
    tts: TtsConfig = Field(default_factory=lambda: TtsConfig())
    asr: AsrConfig = Field(default_factory=lambda: AsrConfig())


class RuntimeConfig(_Section):
    """How the team uses this machine."""

    max_concurrency: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Subtasks in flight at once; None: no run-wide cap, each model's own limit applies "
        "(a llama.cpp model generates one request at a time).",
    )
    memory_budget_mb: int | None = Field(
        None, ge=1, description="RAM for loaded models; default: 70% of physical memory."
    )
    preload: bool = Field(
        True, description="Load a specialist's model in the background as soon as a plan names it."
    )


class RayResources(_Section):
    """What one model's Ray actor asks the cluster for (``models.<name>.ray``), with ``engine: ray``."""

    num_cpus: float | None = Field(
        None, ge=0, description="CPUs to reserve; default: n_threads (or 1) for llama_cpp, 0 for function."
    )
    num_gpus: float = Field(0, ge=0, description="GPUs to reserve (fractions share one GPU).")
    memory_mb: int | None = Field(None, ge=1, description="RAM to reserve (Ray's 'memory' resource).")


class DistributedConfig(_Section):
    """Where the team's local models run: in this process, or as Ray actors placed by resources."""

    engine: Literal["local", "ray"] = Field("local", description="'ray' runs local models as Ray actors.")
    address: str | None = Field(
        None,
        description="None starts a private Ray for this process; 'auto' joins the cluster this machine is "
        "part of (ray start); 'ray://host:10001' connects through Ray Client; 'host:6379' joins a head.",
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a Ray Tessera starts; default: all.")
    object_store_mb: int = Field(
        128, ge=80, description="Object store of a Ray Tessera starts (only messages travel through it)."
    )
    start_timeout_s: float = Field(
        60.0, gt=0, description="How long a model's actor may take to be placed and built."
    )

    @model_validator(mode="after")
    def _check_address(self) -> DistributedConfig:
        address = self.address
        if address is not None and address != "auto" and not re.match(r"^(ray://)?[\w.-]+:\d+$", address):
            raise ValueError(f"address: {address!r} is not 'auto', ray://host:port or host:port")
        local = {"num_cpus", "object_store_mb"} & self.model_fields_set
        if address is not None and local:
            raise ValueError(
                f"{', '.join(sorted(local))}: only for a Ray that Tessera starts (no address); "
                "a running cluster keeps its own settings"
            )
        return self


class McpServerConfig(_Section):
    """One MCP server (``mcp.servers.<name>``): a ``command`` run over stdio, or a streamable HTTP ``url``."""

    command: str | None = Field(None, description="stdio: the program to start, e.g. python3 or npx.")
    args: list[str] = Field(default_factory=list, description="stdio: its arguments.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="stdio: variables added to the small default environment (PATH, HOME, USER, ...).",
    )
    cwd: Path | None = Field(None, description="stdio: working directory; default: the team file's folder.")
    url: str | None = Field(
        None, description="Streamable HTTP: the endpoint, e.g. http://127.0.0.1:8000/mcp."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="HTTP: request headers, e.g. Authorization: Bearer ${TOKEN}."
    )
    start_timeout_s: float = Field(30.0, gt=0, description="How long starting and listing tools may take.")
    call_timeout_s: float = Field(60.0, gt=0, description="How long one tool call may take.")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if self.command is not None and self.url is not None:
            raise ValueError("set either 'command' (stdio) or 'url' (streamable HTTP), not both")
        if self.command is None and self.url is None:
            raise ValueError("needs 'command' (a stdio server) or 'url' (a streamable HTTP server)")
        if self.url is not None:
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"url {self.url!r} is not an http:// or https:// URL")
            stdio = sorted({"args", "env", "cwd"} & self.model_fields_set)
            if stdio:
                raise ValueError(f"{', '.join(stdio)}: only for a stdio server ('command')")
        elif "headers" in self.model_fields_set:
            raise ValueError("headers: only for an HTTP server ('url')")
        return self


class McpConfig(_Section):
    """MCP servers whose tools specialists may call (a specialist lists them under ``mcp``)."""

    servers: dict[str, McpServerConfig] = Field(default_factory=dict)
