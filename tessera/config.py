"""Team configuration: one YAML file, validated by strict pydantic models.

A team file names its models, its planner and its specialists. Every section is a pydantic model with
``extra="forbid"``, so a typo is an error, not a silently ignored key. Strings may use ``${VAR}`` and
``${VAR:-default}``. :meth:`TeamConfig.from_yaml` reports every problem at once, one line each, in the form
``team.yaml: specialists.coder.model: unknown model 'codr' (known: coder, small)``.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from tessera._config_sections import (
    _NAME,
    AsrConfig,
    DistributedConfig,
    McpConfig,
    McpServerConfig,
    MemoryConfig,
    OcrConfig,
    RayResources,
    RoutingConfig,
    RuntimeConfig,
    SandboxConfig,
    ToolsConfig,
    TtsConfig,
    _Section,
)
from tessera.errors import ConfigError

__all__ = [
    "AnswerConfig",
    "AsrConfig",
    "DistributedConfig",
    "OcrConfig",
    "SandboxConfig",
    "ToolsConfig",
    "TtsConfig",
    "FunctionModelConfig",
    "LlamaCppModelConfig",
    "McpConfig",
    "McpServerConfig",
    "MemoryConfig",
    "ModelConfig",
    "OpenAIModelConfig",
    "PlannerConfig",
    "RayResources",
    "RoutingConfig",
    "RuntimeConfig",
    "SpecialistConfig",
    "TeamConfig",
    "load_team",
]


class _ModelBase(_Section):
    """Generation options shared by every backend."""

    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling threshold.")
    max_tokens: int = Field(512, ge=1, description="Most tokens one call may generate.")
    seed: int | None = Field(None, description="Sampling seed; None picks one per call.")
    keep_warm: bool = Field(False, description="Never evict this model from the pool.")
    cost: float = Field(1.0, ge=0, description="Relative cost per 1k tokens, for routing.")
    max_prompt_tokens: int | None = Field(None, ge=1, description="Longest prompt to route here.")
    ray: RayResources = Field(
        default_factory=lambda: RayResources(), description="Its actor's resources, with engine: ray."
    )


class LlamaCppModelConfig(_ModelBase):
    """A GGUF model run in-process by llama.cpp: a local ``path``, or ``repo`` + ``file`` on the hub."""

    backend: Literal["llama_cpp"]
    path: Path | None = Field(None, description="Local GGUF file; relative to the team file.")
    repo: str | None = Field(None, description="Hugging Face repo id, e.g. Qwen/Qwen2.5-0.5B-Instruct-GGUF.")
    file: str | None = Field(None, description="File name inside `repo`.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    n_ctx: int = Field(4096, ge=64, description="Context length in tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads; default: physical cores.")
    n_batch: int = Field(512, ge=1, description="Prompt-processing batch size.")
    n_gpu_layers: int = Field(0, ge=-1, description="Layers to offload to a GPU (-1: all).")
    chat_format: str | None = Field(None, description="Override the GGUF's own chat template.")
    prefix_cache_mb: int = Field(
        128,
        ge=0,
        description="Most RAM (MB) for saved KV states of repeated prompt prefixes (system prompts, "
        "tool descriptions), so prompts that interleave on one model skip their prefill; 0 turns it off.",
    )
    prefix_cache_dir: Path | None = Field(
        None,
        description="Folder where the KV states of long prompts (256 tokens or more: a planner's prompt) are "
        "also saved, at most prefix_cache_mb of them, so that a new process restores them instead of "
        "prefilling; relative to the team file.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> LlamaCppModelConfig:
        if self.path is not None and (self.repo or self.file):
            raise ValueError("set either 'path' or 'repo' + 'file', not both")
        if self.path is None and not (self.repo and self.file):
            raise ValueError("needs 'path', or both 'repo' and 'file'")
        return self


class OpenAIModelConfig(_ModelBase):
    """Any OpenAI-compatible endpoint: llama.cpp server, vLLM, Ollama, a cloud API."""

    backend: Literal["openai"]
    base_url: str | None = Field(None, description="Endpoint root, e.g. http://127.0.0.1:8080/v1.")
    endpoints: list[str] = Field(
        default_factory=list,
        description="Replicas of the model (endpoint roots), instead of base_url: requests go to the "
        "healthy ones and fail over on error or timeout.",
    )
    cooloff_s: float = Field(15.0, ge=0, description="How long a replica that failed is skipped.")
    model: str = Field(description="Model name sent to the endpoint.")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key.")
    timeout_s: float = Field(60.0, gt=0, description="Timeout of one request.")
    max_retries: int = Field(1, ge=0, description="Client-level retries on connection errors.")
    structured_output: Literal["json_object", "json_schema"] = Field(
        "json_object",
        description="How to ask for JSON: llama.cpp's server refuses json_schema.",
    )

    @model_validator(mode="after")
    def _one_endpoint(self) -> OpenAIModelConfig:
        if self.base_url is not None and self.endpoints:
            raise ValueError("set either 'base_url' or 'endpoints', not both")
        if self.base_url is None and not self.endpoints:
            raise ValueError("needs 'base_url', or 'endpoints' (a list of replica URLs)")
        for url in [self.base_url, *self.endpoints]:
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint {url!r} is not an http:// or https:// URL")
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError("endpoints: a URL is listed twice")
        return self


class FunctionModelConfig(_ModelBase):
    """A Python callable ``fn(messages, **kw) -> str``: the seam for tests and custom integrations."""

    backend: Literal["function"]
    callable: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="module:function; leave it out for a model given in Python: Team(config, models=...).",
    )


ModelConfig = Annotated[
    LlamaCppModelConfig | OpenAIModelConfig | FunctionModelConfig, Field(discriminator="backend")
]
BACKENDS = ("function", "llama_cpp", "openai")


class PlannerConfig(_Section):
    """The model that breaks a task into a DAG of subtasks."""

    model: str
    max_subtasks: int = Field(8, ge=1, le=64)
    max_replans: int = Field(1, ge=0, le=10)
    approve: bool = Field(
        False, description="Pause after each plan until the user accepts, edits or rejects it."
    )
    system_prompt: str | None = None
    stream: bool = Field(
        True, description="Start each subtask as soon as the streaming plan has it (not with approve)."
    )
    examples: bool = Field(
        True, description="Show the planner worked examples that use the team's own specialists."
    )
    fast_path: bool = Field(
        True,
        description="For a short task with no sign of several steps, a grammar-decoding planner only names "
        "the specialist, and the task is its instruction (no plan to write).",
    )


class AnswerConfig(_Section):
    """Who writes the final answer from the subtasks' results."""

    model: str | None = Field(None, description="A model name; default: the planner's model.")
    system_prompt: str | None = None


class SpecialistConfig(_Section):
    """One member of the team: a model (or a bare tool) good at one kind of subtask."""

    description: str = Field(min_length=1, description="What it is good at; the planner reads it.")
    kind: str = Field("general", description="general, coder, retriever, tool, or module:Class.")
    model: str | None = None
    tool: str | None = None
    system_prompt: str | None = None
    tools: list[str] = Field(default_factory=list)
    mcp: list[str] = Field(
        default_factory=list,
        description="MCP servers ('name': all their tools) or single tools ('name/tool') it may call.",
    )
    timeout_s: float = Field(120.0, gt=0)
    max_attempts: int = Field(2, ge=1, le=10)
    min_tier: str | None = Field(None, description="Lowest routing tier this specialist may use.")
    output_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema the output must match; output that breaks it is a failed check."
    )
    verifier: str | None = Field(
        None, description="A specialist whose model judges each output; its 'no' is a failed check."
    )

    @model_validator(mode="after")
    def _model_or_tool(self) -> SpecialistConfig:
        if self.kind == "tool":
            if self.tool is None or self.model is not None:
                raise ValueError("kind 'tool' needs 'tool' (e.g. tool: ocr) and no 'model'")
        elif self.tool is not None:
            raise ValueError("'tool' is for kind: tool; list the tools a model may call under 'tools'")
        return self


class TeamConfig(_Section):
    """A whole team: its models, planner, specialists, routing, memory and runtime limits."""

    name: str = Field(pattern=_NAME)
    description: str = ""
    state_dir: Path | None = Field(None, description="Default: ~/.tessera/<name>.")
    imports: list[str] = Field(
        default_factory=list, description="Modules to import first, for their @tool and @specialist."
    )
    models: dict[str, ModelConfig] = Field(min_length=1)
    planner: PlannerConfig
    specialists: dict[str, SpecialistConfig] = Field(min_length=1)
    answer: AnswerConfig = Field(default_factory=lambda: AnswerConfig())
    tools: ToolsConfig = Field(default_factory=lambda: ToolsConfig())
    routing: RoutingConfig = Field(default_factory=lambda: RoutingConfig())
    memory: MemoryConfig = Field(default_factory=lambda: MemoryConfig())
    runtime: RuntimeConfig = Field(default_factory=lambda: RuntimeConfig())
    distributed: DistributedConfig = Field(default_factory=lambda: DistributedConfig())
    mcp: McpConfig = Field(default_factory=lambda: McpConfig())

    @property
    def resolved_state_dir(self) -> Path:
        """Where checkpoints, memory and caches live."""
        if self.state_dir is not None:
            return self.state_dir.expanduser()
        return Path("~/.tessera").expanduser() / self.name

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> TeamConfig:
        """Load and validate a team file; raise :class:`ConfigError` listing every problem."""
        return load_team(path)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, source: str = "<dict>", base_dir: Path | None = None
    ) -> TeamConfig:
        """Validate an already-parsed mapping (``${VAR}`` interpolation included)."""
        return _validate(data, source, base_dir or Path.cwd())


def load_team(path: str | os.PathLike[str]) -> TeamConfig:
    """Read, interpolate and validate one team YAML file; its folder goes on ``sys.path``."""
    file = Path(path)
    label = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{label}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{label}: is a directory, not a team file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{label}: cannot read: {exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{label}{where}: invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{label}: expected a mapping of sections (name, models, ...) at the top"])
    folder = file.resolve().parent
    if str(folder) not in sys.path:  # so that `callable: mymodule:fn` next to the team file imports
        sys.path.insert(0, str(folder))
    return _validate(data, label, folder)


def _validate(data: dict[str, Any], label: str, base_dir: Path) -> TeamConfig:
    problems: list[str] = []
    data = _interpolate(data, (), problems)
    if problems:
        raise ConfigError([f"{label}: {p}" for p in problems])
    try:
        config = TeamConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{label}: {line}" for line in _describe(exc, data)]) from None
    problems = _check_references(config)
    if problems:
        raise ConfigError([f"{label}: {p}" for p in problems])
    for model in config.models.values():
        if isinstance(model, LlamaCppModelConfig) and model.path is not None:
            model.path = (base_dir / model.path.expanduser()).resolve()
        if isinstance(model, LlamaCppModelConfig) and model.prefix_cache_dir is not None:
            model.prefix_cache_dir = (base_dir / model.prefix_cache_dir.expanduser()).resolve()
    if config.state_dir is not None and not config.state_dir.expanduser().is_absolute():
        config.state_dir = (base_dir / config.state_dir).resolve()
    embedder = config.memory.embedder
    if embedder and (embedder.startswith((".", "~")) or (base_dir / embedder).exists()):  # a local path
        config.memory.embedder = str((base_dir / Path(embedder).expanduser()).resolve())
    asr = config.tools.asr
    if asr.model.startswith((".", "~")) or (base_dir / asr.model).is_dir():  # a local folder
        asr.model = str((base_dir / Path(asr.model).expanduser()).resolve())
    for server in config.mcp.servers.values():
        if server.command is not None:
            server.cwd = (base_dir / (server.cwd or Path()).expanduser()).resolve()
    tts = config.tools.tts
    if tts.output_dir is not None and not tts.output_dir.expanduser().is_absolute():
        tts.output_dir = (base_dir / tts.output_dir).resolve()
    return config


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, path: tuple[str, ...], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, str(i)), problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        problems.append(
            f"{'.'.join(path)}: environment variable '{name}' is not set (use ${{{name}:-default}})"
        )
        return ""

    return _VAR.sub(substitute, value)


def _check_references(config: TeamConfig) -> list[str]:
    """Cross-field checks pydantic cannot express: every name must point at something defined."""
    problems: list[str] = []
    known = sorted(config.models)

    def model_ref(where: str, name: str | None) -> None:
        if name is not None and name not in config.models:
            problems.append(f"{where}: unknown model {name!r}{_hint(name, known, 'known')}")

    model_ref("planner.model", config.planner.model)
    model_ref("answer.model", config.answer.model)
    for name, spec in config.specialists.items():
        if not re.match(_NAME, name):
            problems.append(f"specialists.{name}: invalid name (letters, digits, '_', '-', '.')")
        model_ref(f"specialists.{name}.model", spec.model)
        if spec.model is None and spec.kind in ("general", "coder") and not config.routing.tiers:
            problems.append(
                f"specialists.{name}: kind {spec.kind!r} needs a 'model' (or routing.tiers to route it)"
            )
        if spec.verifier is not None:
            other = config.specialists.get(spec.verifier)
            if other is None or spec.verifier == name:
                problems.append(
                    f"specialists.{name}.verifier: {spec.verifier!r} is not another specialist"
                    f"{_hint(spec.verifier, [n for n in config.specialists if n != name], 'specialists')}"
                )
            elif other.model is None and not config.routing.tiers:
                problems.append(f"specialists.{name}.verifier: {spec.verifier!r} has no model to judge with")
        problems.extend(_mcp_refs(config, name))
        if spec.min_tier is not None and spec.min_tier not in config.routing.tiers:
            tiers = config.routing.tiers
            problems.append(
                f"specialists.{name}.min_tier: {spec.min_tier!r} is not a routing tier"
                f"{_hint(spec.min_tier, tiers, 'tiers')}"
            )
    for i, tier in enumerate(config.routing.tiers):
        model_ref(f"routing.tiers.{i}", tier)
    if len(set(config.routing.tiers)) != len(config.routing.tiers):
        problems.append("routing.tiers: a model is listed twice")
    for name in [*config.models, *config.mcp.servers]:
        if not re.match(_NAME, name):
            section = "models" if name in config.models else "mcp.servers"
            problems.append(f"{section}.{name}: invalid name (letters, digits, '_', '-', '.')")
    return problems


def _mcp_refs(config: TeamConfig, name: str) -> list[str]:
    """A specialist's ``mcp`` entries must name servers of ``mcp.servers`` (``server`` or ``server/tool``)."""
    known = sorted(config.mcp.servers)
    problems: list[str] = []
    for i, entry in enumerate(config.specialists[name].mcp):
        server, _, tool = entry.partition("/")
        if server not in config.mcp.servers:
            hint = _hint(server, known, "mcp.servers")
            problems.append(f"specialists.{name}.mcp.{i}: unknown MCP server {server!r}{hint}")
        elif "/" in entry and not tool:
            problems.append(
                f"specialists.{name}.mcp.{i}: {entry!r} names no tool (use 'server' or 'server/tool')"
            )
    return problems


def _hint(value: str, known: list[str], word: str) -> str:
    if not known:
        return f" ({word}: none)"
    close = difflib.get_close_matches(value, known, n=1)
    suggestion = f"; did you mean {close[0]!r}?" if close else ""
    return f" ({word}: {', '.join(known)}{suggestion})"


def _describe(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    """Turn pydantic errors into ``field.path: message`` lines a person can act on."""
    lines: list[str] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        kind = err["type"]
        # Discriminated unions insert the tag into the location: models.x.llama_cpp.path -> models.x.path
        if len(loc) >= 3 and loc[0] == "models" and loc[2] in BACKENDS:
            del loc[2]
        where = ".".join(loc) or "(top level)"
        if kind == "union_tag_invalid":
            tag = err.get("ctx", {}).get("tag")
            lines.append(
                f"{where}.backend: unknown backend {tag!r}{_hint(str(tag), list(BACKENDS), 'known')}"
            )
        elif kind == "union_tag_not_found":
            lines.append(f"{where}.backend: missing (one of: {', '.join(BACKENDS)})")
        elif kind == "extra_forbidden":
            allowed = _fields_at(loc[:-1], data)
            close = difflib.get_close_matches(loc[-1], allowed, n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
            else:
                hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            lines.append(f"{where}: unknown field{hint}")
        elif kind == "missing":
            lines.append(f"{where}: required field is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            value = err.get("input")
            shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
            lines.append(f"{where}: {msg}{shown}")
    return lines


def _fields_at(loc: list[str], data: dict[str, Any]) -> list[str]:
    """The field names allowed at a location, for 'did you mean' hints."""
    node: Any = TeamConfig
    value: Any = data
    for part in loc:
        value = value.get(part) if isinstance(value, dict) else None
        node = _step(node, part, value)
        if node is None:
            return []
    if isinstance(value, dict) and _is_union(node):
        node = _pick_backend(node, value)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return sorted(node.model_fields)
    return []


def _step(node: Any, part: str, value: Any) -> Any:
    if isinstance(node, type) and issubclass(node, BaseModel):
        field = node.model_fields.get(part)
        return None if field is None else _unwrap(field.annotation)
    origin = typing.get_origin(node)
    if origin is dict:
        inner = _unwrap(typing.get_args(node)[1])
        if _is_union(inner) and isinstance(value, dict):
            return _pick_backend(inner, value)
        return inner
    if origin is list:
        return _unwrap(typing.get_args(node)[0])
    return None


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if _is_union(annotation) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _unwrap(rest[0])
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _pick_backend(union: Any, value: dict[str, Any]) -> Any:
    for option in typing.get_args(union):
        field = getattr(option, "model_fields", {}).get("backend")
        if field is not None and value.get("backend") in typing.get_args(field.annotation):
            return option
    return None
