"""The ``tessera`` command, run as a user runs it: a fresh interpreter, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, STORIES, run_cli, write_team

HEAVY = ("torch", "chromadb", "llama_cpp", "sentence_transformers", "langchain_core", "langgraph")


def imported_modules(*args: str) -> set[str]:
    import subprocess

    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tessera.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-500:]
    return {
        line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")
    }


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(flag: str) -> None:
    modules = imported_modules(flag)
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_version() -> None:
    from tessera import __version__

    out = run_cli("--version")
    assert out.returncode == 0 and __version__ in out.stdout


def run_cli_stdin(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``tessera ARGS`` with ``text`` on its stdin."""
    return subprocess.run(
        [sys.executable, "-m", "tessera.cli", *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def assert_one_line_error(out: object, *needles: str, seconds: float | None = None) -> None:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)  # type: ignore[attr-defined]
    lines = out.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert "Traceback" not in out.stderr  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_validate_ok_for_shipped_configs(request: pytest.FixtureRequest) -> None:
    # validate looks for local model files: stories.yaml's is in ../shared, or a stand-in
    env = {} if STORIES.is_file() else {"TESSERA_STORIES_GGUF": str(request.getfixturevalue("tiny_gguf"))}
    out = run_cli("validate", *sorted(str(p) for p in (REPO / "configs").glob("*.yaml")), env=env)
    assert out.returncode == 0, out.stderr
    assert "configs/default.yaml: ok" in out.stdout
    assert "configs/stories.yaml: ok (1 model, 1 specialist)" in out.stdout  # not "1 models"


def test_validate_reports_each_problem_on_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "team.yaml"
    bad.write_text(
        "name: t\nmodels:\n  coder: {backend: function, callable: 'a:b'}\n  small: {backend: function, callable: 'a:b'}\n"
        "planner: {model: smal}\nspecialists:\n  coder: {description: d, model: codr}\n"
    )
    good = REPO / "configs" / "offline.yaml"
    out = run_cli("validate", str(good), str(bad))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"{bad}: planner.model: unknown model 'smal' (known: coder, small; did you mean 'small'?)",
        f"{bad}: specialists.coder.model: unknown model 'codr' (known: coder, small; did you mean 'coder'?)",
    ]
    assert "Traceback" not in out.stderr


def test_validate_json_output(tmp_path: Path) -> None:
    out = run_cli(
        "validate", "--json", str(REPO / "configs" / "offline.yaml"), str(tmp_path / "missing.yaml")
    )
    assert out.returncode == 2
    report = json.loads(out.stdout)
    assert [r["valid"] for r in report] == [True, False]
    assert report[1]["problems"] == [f"{tmp_path / 'missing.yaml'}: no such file"]


def test_prompt_json_on_a_function_model() -> None:
    out = run_cli("prompt", "--team", "configs/offline.yaml", "--model", "echo", "--json", "hello there")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["text"] == "echo: hello there"
    assert {"text", "tokens", "seconds", "tokens_per_s", "model"} <= set(data)
    assert data["model"] == "echo"


def test_prompt_reads_stdin() -> None:
    out = run_cli_stdin("from stdin", "prompt", "-t", "configs/offline.yaml", "-m", "echo", "-")
    assert out.returncode == 0 and "echo: from stdin" in out.stdout


def test_prompt_json_on_a_real_gguf(tmp_path: Path, tiny_gguf: Path) -> None:
    pytest.importorskip("llama_cpp")
    team = write_team(
        tmp_path / "team.yaml",
        {"tiny": {"backend": "llama_cpp", "path": str(tiny_gguf), "n_ctx": 512}},
    )
    out = run_cli("prompt", "--team", str(team), "--model", "tiny", "--max-tokens", "12", "--json", "hi")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert 1 <= data["tokens"] <= 12 and data["seconds"] > 0 and data["tokens_per_s"] > 0


def test_prompt_streams_text_without_json(tmp_path: Path, stories_gguf: Path) -> None:
    pytest.importorskip("llama_cpp")
    team = write_team(
        tmp_path / "team.yaml",
        {"s": {"backend": "llama_cpp", "path": str(stories_gguf), "n_ctx": 256}},
    )
    out = run_cli(
        "prompt",
        "-t",
        str(team),
        "-m",
        "s",
        "--max-tokens",
        "30",
        "--seed",
        "1",
        "Once upon a time",
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) >= 5
    assert "tokens/s" in out.stderr


# -- the error cases: one line, exit 2, within seconds, no traceback, no half-written files ------------


def gguf_team(tmp_path: Path, model_path: Path) -> Path:
    return write_team(tmp_path / "team.yaml", {"m": {"backend": "llama_cpp", "path": str(model_path)}})


def prompt_m(team: Path, env: dict[str, str] | None = None) -> object:
    started = time.monotonic()
    out = run_cli("prompt", "--team", str(team), "--model", "m", "hi", env=env, timeout=30)
    out.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    assert out.elapsed < 5, f"took {out.elapsed:.1f}s"  # type: ignore[attr-defined]
    return out


def test_missing_gguf(tmp_path: Path) -> None:
    out = prompt_m(gguf_team(tmp_path, tmp_path / "gone.gguf"))
    assert_one_line_error(out, "gone.gguf: no such file")


def test_random_bytes_are_not_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "noise.gguf"
    bad.write_bytes(bytes((i * 7919) % 256 for i in range(50_000)))
    assert_one_line_error(prompt_m(gguf_team(tmp_path, bad)), "noise.gguf: not a GGUF file")


def test_truncated_gguf(tmp_path: Path, tiny_gguf: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:300_000])
    assert_one_line_error(prompt_m(gguf_team(tmp_path, cut)), "cut.gguf: truncated GGUF file")


def test_unknown_backend(tmp_path: Path) -> None:
    team = write_team(tmp_path / "team.yaml", {"m": {"backend": "vllm_native", "model": "x"}})
    assert_one_line_error(prompt_m(team), str(team), "models.m.backend: unknown backend 'vllm_native'")
    assert_one_line_error(run_cli("validate", str(team)), "models.m.backend: unknown backend")


def test_unknown_model_name(tmp_path: Path) -> None:
    out = run_cli("prompt", "--team", "configs/offline.yaml", "--model", "nope", "hi")
    assert_one_line_error(out, "unknown model 'nope' (known: echo, planner)")


def test_hub_download_offline_fails_fast_and_leaves_no_partial_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    team = write_team(
        tmp_path / "team.yaml",
        {
            "m": {
                "backend": "llama_cpp",
                "repo": "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
                "file": "qwen2.5-0.5b-instruct-q4_k_m.gguf",
            }
        },
    )
    env = {
        "TESSERA_MODEL_CACHE": str(cache),
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HUB_OFFLINE": "0",
    }
    out = prompt_m(team, env=env)
    assert_one_line_error(
        out,
        "qwen2.5-0.5b-instruct-q4_k_m.gguf: cannot download",
        "set `path:` to a local GGUF file",
    )
    assert not [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else True


def test_hub_download_with_hf_hub_offline(tmp_path: Path) -> None:
    team = write_team(
        tmp_path / "team.yaml", {"m": {"backend": "llama_cpp", "repo": "org/r", "file": "m.gguf"}}
    )
    out = prompt_m(team, env={"TESSERA_MODEL_CACHE": str(tmp_path / "c"), "HF_HUB_OFFLINE": "1"})
    assert_one_line_error(out, "org/r/m.gguf: not downloaded yet and HF_HUB_OFFLINE is set")


def test_missing_team_file() -> None:
    assert_one_line_error(
        run_cli("prompt", "--team", "nope.yaml", "--model", "m", "hi"), "nope.yaml: no such file"
    )


def test_models_list(tmp_path: Path, tiny_gguf: Path) -> None:
    out = run_cli(
        "models",
        "list",
        "--team",
        "configs/default.yaml",
        "--json",
        env={"TESSERA_MODEL_CACHE": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"coder", "small"}
    assert rows["small"]["present"] is False and "Qwen2.5-Coder-0.5B-Instruct-GGUF" in rows["small"]["source"]


def test_models_list_has_a_header_and_function_models_have_nothing_to_download() -> None:
    out = run_cli("models", "list", "--team", "configs/offline.yaml")
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.split() == ["NAME", "BACKEND", "SIZE", "FILE", "SOURCE"]
    assert [r.split() for r in rows] == [
        ["planner", "function", "-", "-", "tessera.testing.demo:planner"],
        ["echo", "function", "-", "-", "tessera.testing.demo:echo"],
    ]
    assert "not downloaded" not in out.stdout


def test_help_text_shows_no_rst_markup() -> None:
    import click

    from tessera.cli import cli

    def helps(command: click.Command, path: str) -> Iterator[tuple[str, str]]:
        yield path, command.get_help(click.Context(command, info_name=path))
        for name, sub in getattr(command, "commands", {}).items():
            yield from helps(sub, f"{path} {name}")

    marked = [
        (path, line) for path, text in helps(cli, "tessera") for line in text.splitlines() if "``" in line
    ]
    assert marked == []


def test_a_second_run_recalls_one_memory_in_the_singular(tmp_path: Path) -> None:
    env = {"TESSERA_STATE_DIR": str(tmp_path)}
    assert run_cli("run", "-t", "configs/offline.yaml", "--json", "Greet the cat", env=env).returncode == 0
    out = run_cli("run", "-t", "configs/offline.yaml", "--json", "Greet the cat again", env=env)
    assert out.returncode == 0, out.stderr
    assert "recalled 1 memory" in json.loads(out.stdout)["notes"]


# -- output survives llama.cpp's redirect of fds 1 and 2 while it loads a model (issue 19, finding 13) ----

TWO_SUBTASKS = json.dumps(
    {
        "subtasks": [
            {"id": "s1", "specialist": "one", "instruction": "say hi"},
            {"id": "s2", "specialist": "two", "instruction": "say bye"},
        ]
    }
)

CHURN = """
import sys, threading
from llama_cpp import Llama
from tessera.cli import main

stop = threading.Event()
threads = [threading.Thread(target=lambda: None)]

def churn():
    while not stop.is_set():
        Llama(model_path=sys.argv[1], n_ctx=64, verbose=False).close()

def start():
    threads[:] = [threading.Thread(target=churn) for _ in range(2)]
    for thread in threads:
        thread.start()

timer = threading.Timer(0.5, start)  # once the command has started, as a model load would
timer.start()
try:
    main(sys.argv[2:])
finally:  # the loads stop before the interpreter does (a load cut by shutdown aborts the process)
    stop.set()
    timer.cancel()
    timer.join()
    for thread in threads:
        if thread.ident is not None:
            thread.join()
"""
"""``tessera ARGS`` while two threads load and free a llama.cpp model (``verbose=False``) in a loop."""


def llama_team(tmp_path: Path, model_path: Path) -> Path:
    """Two llama.cpp models (loaded at once, by the preloader and the subtasks) and a function planner."""
    local = {"backend": "llama_cpp", "path": str(model_path), "n_ctx": 512, "max_tokens": 16}
    return write_team(
        tmp_path / "team.yaml",
        {"plan": {"backend": "function", "callable": "tests.fakes:env_planner"}, "a": local, "b": local},
        specialists={"one": {"description": "d", "model": "a"}, "two": {"description": "d", "model": "b"}},
    )


def run_cli_while_models_load(model_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHURN, str(model_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TESSERA_TEST_PLAN": TWO_SUBTASKS},
        cwd=REPO,
    )


@pytest.mark.slow
def test_run_prints_its_full_result_every_time_while_models_load(tmp_path: Path, tiny_gguf: Path) -> None:
    pytest.importorskip("llama_cpp")
    team = llama_team(tmp_path, tiny_gguf)
    for attempt in range(1, 6):
        out = run_cli_while_models_load(tiny_gguf, "run", "-t", str(team), "--json", "hello")
        assert out.returncode == 0, (attempt, out.stdout, out.stderr)
        assert out.stdout.strip(), f"run {attempt} of 5 printed nothing: {out.stderr}"
        result = json.loads(out.stdout)
        assert [s["id"] for s in result["subtasks"]] == ["s1", "s2"] and result["status"] == "done", result
    out = run_cli_while_models_load(tiny_gguf, "run", "-t", str(team), "hello")
    assert out.returncode == 0, (out.stdout, out.stderr)
    lines = [line.split() for line in out.stderr.splitlines()]
    assert ["plan:", "s1:one,", "s2:two"] in lines, out.stderr
    assert {line[0] for line in lines if line[-1].endswith("s")} >= {"s1", "s2"}, out.stderr
    assert lines[-1][:2] == ["done:", "total"], out.stderr


@pytest.mark.slow
def test_bench_latency_json_prints_its_report_every_time() -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gguf")
    short = ("--prompt-tokens", "50", "--plan-seconds", "0", "--ttft-tokens", "100")
    for attempt in range(1, 6):
        out = run_cli("bench", "latency", "--json", *short, timeout=300)
        assert out.returncode == 0, (attempt, out.stderr)
        assert out.stdout.strip(), f"run {attempt} of 5 printed nothing"
        report = json.loads(out.stdout)
        assert set(report["modes"]) == {"sequential", "dag", "streamed"} and report["ttft_warm_s"] > 0


# -- a partly failed run says so (issue 19, finding 1) -------------------------------------------------


def echo_team(tmp_path: Path, planner: str = "env_planner") -> Path:
    """A function ``planner`` from tests.fakes (by default: it plans $TESSERA_TEST_PLAN), and a general
    specialist that echoes its instruction and fails the ones that say 'FAIL'."""
    return write_team(
        tmp_path / "team.yaml",
        {
            "plan": {"backend": "function", "callable": f"tests.fakes:{planner}"},
            "echo": {"backend": "function", "callable": "tests.fakes:echo"},
        },
        specialists={"general": {"description": "d", "model": "echo"}},
    )


ONE_FAILS = json.dumps(
    {
        "subtasks": [
            {"id": "s1", "specialist": "general", "instruction": "say hi"},
            {"id": "s2", "specialist": "general", "instruction": "FAIL now"},
        ]
    }
)


def test_a_run_with_one_failed_subtask_is_partial_and_names_it(tmp_path: Path) -> None:
    team = echo_team(tmp_path)
    env = {"TESSERA_TEST_PLAN": ONE_FAILS}
    out = run_cli("run", "-t", str(team), "--json", "two things", env=env)
    assert out.returncode == 3, (out.stdout, out.stderr)
    result = json.loads(out.stdout)
    assert result["status"] == "partial" and result["answer"]
    assert [(s["id"], s["status"]) for s in result["subtasks"]] == [("s1", "done"), ("s2", "failed")]
    text = run_cli("run", "-t", str(team), "two things", env=env)
    assert text.returncode == 3, text.stderr
    assert "  partial: total" in text.stderr
    assert "1 of 2 subtasks failed: s2 (general: RuntimeError: asked to fail)" in text.stderr


def test_a_run_whose_subtasks_all_fail_is_failed(tmp_path: Path) -> None:
    plan = {"subtasks": [{"id": "s1", "specialist": "general", "instruction": "FAIL"}]}
    out = run_cli("run", "-t", str(echo_team(tmp_path)), "x", env={"TESSERA_TEST_PLAN": json.dumps(plan)})
    assert out.returncode == 1, out.stderr
    assert "  failed: total" in out.stderr and "1 of 1 subtasks failed: s1 (general:" in out.stderr


# -- input rules: no empty task, - reads stdin, nothing cut to fit (issue 19, finding 5) -----------------


@pytest.mark.parametrize("task", ["", "  \n "])
def test_an_empty_task_is_bad_usage(task: str) -> None:
    out = run_cli("run", "-t", "configs/offline.yaml", "--json", task)
    assert_one_line_error(out, "task: empty")
    assert out.stdout == ""


def fallback_team(tmp_path: Path) -> Path:
    """A planner that always fails, so every task runs whole on the echoing general specialist."""
    return echo_team(tmp_path, planner="broken")


def test_run_dash_reads_the_task_from_stdin(tmp_path: Path) -> None:
    out = run_cli_stdin("the task from stdin\n", "run", "-t", str(fallback_team(tmp_path)), "--json", "-")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["answer"] == "did: the task from stdin"


def test_a_task_longer_than_a_plan_can_carry_is_refused_not_cut() -> None:
    task = ("Summarize this. " * 6250).strip()  # 100 KB
    out = run_cli_stdin(task + "\n", "run", "-t", "configs/offline.yaml", "-")
    assert_one_line_error(out, f"task: {len(task):,} characters, more than a task may have", "tessera ingest")


def test_a_task_larger_than_the_planners_context_is_refused(tmp_path: Path, tiny_gguf: Path) -> None:
    team = write_team(
        tmp_path / "team.yaml", {"m": {"backend": "llama_cpp", "path": str(tiny_gguf), "n_ctx": 512}}
    )
    out = run_cli("run", "-t", str(team), "Explain this. " * 300)
    assert_one_line_error(out, "task: about 1,050 tokens, more than planner model 'm' can read (n_ctx 512)")


def test_the_fallback_plan_carries_the_whole_task(tmp_path: Path) -> None:
    task = "Count the words of this text: " + "lorem ipsum " * 400  # 4,830 characters
    out = run_cli("run", "-t", str(fallback_team(tmp_path)), "--json", task)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["plan"]["subtasks"][0]["instruction"] == task
    assert result["answer"] == "did: " + task


# -- validate checks everything run would load (issue 19, finding 2) -------------------------------------


ECHO = {"backend": "function", "callable": "tessera.testing.demo:echo"}


@pytest.mark.parametrize(
    ("models", "sections", "field", "problem"),
    [
        (
            {"m": {"backend": "function", "callable": "tessera.testing.demo:ehco"}},
            {},
            "models.m.callable",
            "module 'tessera.testing.demo' has no attribute 'ehco'",
        ),
        (
            {"m": {"backend": "function", "callable": "nosuchmod_t19.fakes:fn"}},
            {},
            "models.m.callable",
            "cannot import module 'nosuchmod_t19.fakes'",
        ),
        ({"m": ECHO}, {"imports": ["nosuchmod_t19"]}, "imports.0", "cannot import 'nosuchmod_t19'"),
        (
            {"m": ECHO},
            {"specialists": {"g": {"description": "d", "model": "m", "tools": ["nosuchmod_t19:t"]}}},
            "specialists.g.tools.0",
            "cannot import module 'nosuchmod_t19'",
        ),
        (
            {"m": ECHO},
            {"specialists": {"g": {"description": "d", "model": "m", "kind": "nosuchmod_t19:K"}}},
            "specialists.g.kind",
            "cannot import 'nosuchmod_t19'",
        ),
        (
            {"m": ECHO, "local": {"backend": "llama_cpp", "path": "gone.gguf"}},
            {},
            "models.local.path",
            "gone.gguf: no such file",
        ),
    ],
    ids=["callable-typo", "callable-module", "imports", "tool", "kind", "model-path"],
)
def test_validate_imports_what_the_team_names(
    tmp_path: Path, models: dict[str, object], sections: dict[str, object], field: str, problem: str
) -> None:
    team = write_team(tmp_path / "team.yaml", models, **sections)
    out = run_cli("validate", str(team))
    assert_one_line_error(out, f"{team}: {field}: ", problem)
    assert "ok" not in out.stdout


def test_run_stops_on_a_config_error_with_exit_2_before_planning(tmp_path: Path) -> None:
    team = write_team(
        tmp_path / "team.yaml",
        {
            "plan": {"backend": "function", "callable": "tessera.testing.demo:planner"},
            "echo": {"backend": "function", "callable": "tessera.testing.demo:ehco"},
        },
        specialists={"general": {"description": "d", "model": "echo"}},
    )
    out = run_cli("run", "-t", str(team), "--json", "say hi")
    assert_one_line_error(out, f"{team}: models.echo.callable: ", "no attribute 'ehco'")
    assert out.stdout == ""


def test_a_callable_next_to_the_team_file_imports(tmp_path: Path) -> None:
    (tmp_path / "t19_neighbour.py").write_text("def shout(messages, **kw):\n    return 'NEIGHBOUR'\n")
    team = write_team(
        tmp_path / "team.yaml", {"m": {"backend": "function", "callable": "t19_neighbour:shout"}}
    )
    assert run_cli("validate", str(team)).returncode == 0
    out = run_cli("prompt", "-t", str(team), "-m", "m", "hi")
    assert out.returncode == 0, out.stderr
    assert "NEIGHBOUR" in out.stdout
