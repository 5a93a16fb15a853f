"""The sandbox and the ``python`` tool, with real bubblewrap: each attack comes from generated code.

Every hostile program here is bounded (at most 200 short ``sleep`` children, one 8 GiB request): if a
limit failed, the test would fail without putting the machine at risk.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from tessera import TeamConfig
from tessera.config import SandboxConfig
from tessera.errors import UserError
from tessera.tools import sandbox
from tessera.tools.base import ToolEnv
from tessera.tools.python import args_from_instruction, make_tool
from tessera.tools.sandbox import SandboxResult, arun_python, run_python, sandbox_mode

LIMITS = SandboxConfig(wall_s=5, cpu_s=5, memory_mb=256, max_processes=16, max_output_kb=64)

needs_bwrap = pytest.mark.skipif(
    sandbox_mode() != "bubblewrap",
    reason=f"needs bubblewrap's namespaces; this machine runs the sandbox in {sandbox_mode()}",
)


def run(code: str, **kwargs: object) -> SandboxResult:
    limits = SandboxConfig(**{**LIMITS.model_dump(), **kwargs})
    return run_python(code, limits)


def pids_running(*argv: str) -> list[int]:
    """Processes on the host whose command line is exactly ``argv``."""
    wanted = b"".join(arg.encode() + b"\0" for arg in argv)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                if (entry / "cmdline").read_bytes() == wanted:
                    found.append(int(entry.name))
    return found


def gone(*argv: str, within_s: float = 3.0) -> bool:
    """Whether no process runs ``argv`` (waiting a little: a killed pid namespace empties asynchronously)."""
    end = time.monotonic() + within_s
    while pids_running(*argv):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def planted() -> Iterator[Path]:
    """A world-readable fake SSH key in a world-traversable dir under the home dir (/root here)."""
    base = Path(tempfile.mkdtemp(prefix=".tessera-sandbox-test-", dir=Path.home()))
    try:
        (base / ".ssh").mkdir()
        key = base / ".ssh" / "id_rsa"
        key.write_text("-----BEGIN FAKE KEY-----\nhunter2\n")
        for path in (base, base / ".ssh"):
            path.chmod(0o755)
        key.chmod(0o644)
        yield key
    finally:
        for path in sorted(base.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        base.rmdir()


# --- ordinary programs -------------------------------------------------------------------------------


def test_print_and_exit_zero() -> None:
    result = run("print('hello from the sandbox')")
    assert result.ok
    assert (result.exit_code, result.stdout, result.stderr) == (0, "hello from the sandbox\n", "")
    assert result.violation is None and not result.truncated
    assert 0 < result.duration_s < 5


def test_exit_code_and_stderr() -> None:
    result = run("import sys\nprint('out')\nprint('oops', file=sys.stderr)\nsys.exit(3)")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "oops\n")
    assert not result.ok and result.violation is None


def test_traceback_is_an_ordinary_failure() -> None:
    result = run("1 / 0")
    assert result.exit_code == 1 and result.violation is None
    assert "ZeroDivisionError" in result.stderr


def test_files_and_stdin() -> None:
    tests = "from main import add\nassert add(2, 3) == 5\nprint('tests passed')\n"
    code = "def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    import tests\n    print(input()[::-1])"
    result = run_python(code, LIMITS, files={"tests.py": tests, "data/words.txt": "x"}, stdin="olleh\n")
    assert result.ok, result.summary()
    assert result.stdout == "tests passed\nhello\n"


def test_files_must_stay_in_the_work_dir() -> None:
    for name in ("/etc/evil", "../evil", "a/../../evil", ""):
        with pytest.raises(UserError, match="relative path inside the work dir"):
            run_python("pass", LIMITS, files={name: "x"})


def test_numpy_imports_under_the_limits() -> None:
    pytest.importorskip("numpy")
    result = run("import numpy as np\nprint(int(np.arange(10).sum()))")
    assert result.ok, result.summary()
    assert result.stdout == "45\n"


def test_runs_as_an_unprivileged_user_without_capabilities() -> None:
    code = (
        "import os\n"
        "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "print(os.getuid(), os.getgid(), os.getgroups(), status['CapEff'].strip(), status['NoNewPrivs'].strip())"
    )
    result = run(code)
    assert result.ok, result.summary()
    uid, gid, groups, cap_eff, no_new_privs = result.stdout.split(" ", 4)
    assert int(uid) != 0 and int(gid) != 0
    assert groups == "[]" or os.geteuid() != 0
    assert int(cap_eff, 16) == 0
    assert no_new_privs.strip() == "1" or os.geteuid() != 0


# --- file system ------------------------------------------------------------------------------------


def test_cannot_write_outside_the_work_dir(tmp_path: Path) -> None:
    target = tmp_path / "written-by-sandbox"
    for path in (target, Path("/etc/tessera-sandbox-evil"), Path("/usr/tessera-sandbox-evil")):
        result = run(f"open({str(path)!r}, 'w').write('pwned')")
        assert result.exit_code == 1, result.summary()
        assert re.search(r"PermissionError|FileNotFoundError|Read-only file system", result.stderr)
        assert not path.exists()


def test_cannot_read_a_secret_under_home(planted: Path) -> None:
    result = run(f"print(open({str(planted)!r}).read())")
    assert result.exit_code == 1
    assert "hunter2" not in result.stdout
    assert "FileNotFoundError" in result.stderr or "PermissionError" in result.stderr


@needs_bwrap
def test_home_and_other_host_dirs_are_not_there(planted: Path) -> None:
    code = (
        "import os, sys\n"
        f"print(sorted(os.listdir({str(Path.home())!r})))\n"
        "for path in ('/work', '/home', '/var', '/opt', '/mnt', '/srv', '/boot'):\n"
        "    print(path, os.path.exists(path))\n"
    )
    result = run(code)
    assert result.ok, result.summary()
    visible_in_home = ast.literal_eval(result.stdout.splitlines()[0])
    assert planted.parents[1].name not in visible_in_home
    # the interpreter's own prefix is bound in read-only, so a venv under /work makes /work exist
    interpreter = {str(p) for p in Path(sys.prefix).parents} | {str(p) for p in Path(sys.executable).parents}
    for line in result.stdout.splitlines()[1:]:
        path, seen = line.rsplit(" ", 1)
        assert seen == "False" or path in interpreter, line


@needs_bwrap
def test_cannot_read_world_readable_files_outside(tmp_path: Path) -> None:
    outside = Path(tempfile.mkdtemp(prefix="tessera-sandbox-test-"))
    try:
        outside.chmod(0o755)
        secret = outside / "notes.txt"
        secret.write_text("world readable secret")
        secret.chmod(0o644)
        result = run(f"print(open({str(secret)!r}).read())")
        assert result.exit_code == 1 and "FileNotFoundError" in result.stderr
        assert "secret" not in result.stdout
    finally:
        secret.unlink()
        outside.rmdir()


def test_cannot_delete_files_outside(planted: Path) -> None:
    victim = Path(tempfile.mkdtemp(prefix="tessera-sandbox-test-"))
    try:
        victim.chmod(0o755)
        (victim / "keep.txt").write_text("keep me")
        for path in (victim / "keep.txt", planted):
            result = run(f"import os\nos.remove({str(path)!r})")
            assert result.exit_code == 1, result.summary()
            assert path.exists()
        result = run(f"import shutil\nshutil.rmtree({str(victim)!r})")
        assert result.exit_code == 1 and (victim / "keep.txt").read_text() == "keep me"
    finally:
        (victim / "keep.txt").unlink()
        victim.rmdir()


def test_fresh_work_dir_deleted_afterwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    first = run_python(
        "open('left-over.txt', 'w').write('x')\nimport os\nprint(sorted(os.listdir()))", LIMITS
    )
    assert first.ok and first.stdout == "['left-over.txt', 'main.py']\n"
    second = run_python("import os\nprint(sorted(os.listdir()), os.getcwd() == os.environ['HOME'])", LIMITS)
    assert second.stdout == "['main.py'] True\n"
    assert list(temp_root.iterdir()) == []


def test_file_size_is_capped() -> None:
    result = run("open('big.bin', 'wb').write(b'x' * (100 << 20))")
    assert result.exit_code == 1
    assert result.violation == "file-size limit of 64 MB exceeded"


@needs_bwrap
def test_files_written_in_a_loop_stop_at_the_work_dir_cap() -> None:
    """Up to 1 GB in 8 MB files: stopped at the 20 MB cap, and the host's disk never holds it."""
    code = (
        "block = b'x' * (8 << 20)\nfor i in range(128):\n"
        "    with open(f'blob{i}.bin', 'wb') as blob:\n        blob.write(block)\n    print(i)"
    )
    host = tempfile.gettempdir()
    free_before = shutil.disk_usage(host).free
    lowest = [free_before]
    done = threading.Event()

    def watch_disk() -> None:
        while not done.wait(0.01):
            lowest.append(shutil.disk_usage(host).free)

    watcher = threading.Thread(target=watch_disk)
    watcher.start()
    try:
        result = run(code, work_dir_mb=20, wall_s=10)
    finally:
        done.set()
        watcher.join()
    assert (result.exit_code, result.stdout) == (1, "0\n1\n"), result.summary()
    assert result.violation == "disk-space limit exceeded (work dir 20 MB, /tmp and /dev/shm 64 MB each)"
    assert "No space left on device" in result.stderr
    assert free_before - min(lowest) <= 20 << 20
    assert run("print('room again')").stdout == "room again\n"


@needs_bwrap
def test_input_files_do_not_count_against_the_work_dir_cap() -> None:
    code = "import os\nprint(os.path.getsize('data.txt'))\nopen('out.bin', 'wb').write(b'y' * (3 << 20))"
    limits = SandboxConfig(**{**LIMITS.model_dump(), "work_dir_mb": 4})
    result = run_python(code, limits, files={"data.txt": "x" * (6 << 20)})
    assert result.ok, result.summary()
    assert result.stdout == f"{6 << 20}\n"


# --- the interpreter in a virtualenv ------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
IN_VENV = """
import json, sys
from tessera.tools.sandbox import run_python, sandbox_mode
code = (
    "import sys\\nprint('hello from', sys.prefix)\\ntry:\\n    open(sys.prefix + '/written', 'w')\\n"
    "except OSError as error:\\n    print('read-only:', error.errno == 30)"
)
result = run_python(code)
print(json.dumps({"mode": sandbox_mode(), "stdout": result.stdout, "summary": result.summary()}))
"""


def make_venv(path: Path) -> Path:
    """A real venv at ``path`` (no pip); tessera and its dependencies come from PYTHONPATH."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    return path


def sandbox_from_venv(venv: Path) -> dict[str, str]:
    """Runs :data:`IN_VENV` with the venv's interpreter, as ``venv/bin/python`` (symlinks left as they are)."""
    pythonpath = os.pathsep.join([str(REPO), *(p for p in sys.path if p)])
    env = {"PATH": os.defpath, "PYTHONPATH": pythonpath, "HOME": str(Path.home())}
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", IN_VENV], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, str] = json.loads(done.stdout)
    return report


@needs_bwrap
@pytest.mark.parametrize("through_a_link", [False, True], ids=["venv-under-tmp", "venv-through-a-symlink"])
def test_a_venv_runs_the_code(through_a_link: bool) -> None:
    """Two CI layouts: a venv under /tmp, which the sandbox's own /tmp must not hide; and
    ``project/.venv -> venvs/x`` outside /tmp, run as ``project/.venv/bin/python`` (not the resolved path).
    """
    parent = Path.home() if through_a_link else Path("/tmp")
    base = Path(tempfile.mkdtemp(prefix=".tessera-venv-test-", dir=parent))
    try:
        venv = make_venv(base / "venvs" / "x")
        if through_a_link:
            (base / "project").mkdir()
            (base / "project" / ".venv").symlink_to(venv)
            venv = base / "project" / ".venv"
        report = sandbox_from_venv(venv)
        assert report["mode"] == "bubblewrap", report["mode"]
        assert report["stdout"] == f"hello from {venv}\nread-only: True\n", report["summary"]
    finally:
        shutil.rmtree(base)


# --- network -----------------------------------------------------------------------------------------


@needs_bwrap
def test_cannot_connect_to_the_host() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        code = (
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
        )
        result = run(code)
        assert result.exit_code == 1, result.summary()
        assert "connected" not in result.stdout
        assert "ConnectionRefusedError" in result.stderr or "OSError" in result.stderr
        with pytest.raises(BlockingIOError):
            server.accept()


# --- processes ---------------------------------------------------------------------------------------


def test_spawning_stops_at_max_processes() -> None:
    code = "import subprocess\nchildren = [subprocess.Popen(['sleep', '7.25']) for _ in range(200)]"
    result = run(code)
    assert result.exit_code == 1
    assert result.violation == "process limit of 16 reached"
    assert "Resource temporarily unavailable" in result.stderr
    assert gone("sleep", "7.25")


def test_the_process_limit_counts_the_main_process() -> None:
    code = (
        "import subprocess\nchildren = []\ntry:\n"
        "    for _ in range(200):\n        children.append(subprocess.Popen(['sleep', '7.5']))\n"
        "except OSError:\n    pass\nprint(len(children))"
    )
    result = run(code, max_processes=6)
    assert result.ok, result.summary()
    assert result.stdout == "5\n"
    assert gone("sleep", "7.5")


def test_forking_stops_at_max_processes() -> None:
    code = (
        "import os, time\nfor _ in range(200):\n"
        "    if os.fork() == 0:\n        time.sleep(5)\n        os._exit(0)\n"
    )
    result = run(code)
    assert result.exit_code == 1
    assert result.violation == "process limit of 16 reached"


def test_threads_count_as_processes() -> None:
    code = "import threading, time\nfor _ in range(50):\n    threading.Thread(target=time.sleep, args=(5,), daemon=True).start()"
    result = run(code, max_processes=4)
    assert result.violation == "process limit of 4 reached"
    assert "can't start new thread" in result.stderr


def test_no_stray_processes_after_a_run() -> None:
    code = (
        "import subprocess\nfor _ in range(3):\n"
        "    subprocess.Popen(['sleep', '31.25'], start_new_session=True)\nprint('bye')"
    )
    result = run(code)
    assert result.ok, result.summary()
    assert gone("sleep", "31.25", within_s=0.5 if sandbox_mode() == "bubblewrap" else 3.0)


def test_no_stray_processes_after_a_timeout() -> None:
    code = (
        "import subprocess, time\nsubprocess.Popen(['sleep', '32.5'], start_new_session=True)\ntime.sleep(60)"
    )
    result = run(code, wall_s=1)
    assert result.violation == "wall-time limit of 1s exceeded"
    assert gone("sleep", "32.5")


async def test_concurrent_runs_have_their_own_process_limits() -> None:
    code = "import subprocess\nchildren = [subprocess.Popen(['sleep', '1']) for _ in range(6)]\nprint('ok')"
    limits = SandboxConfig(**{**LIMITS.model_dump(), "max_processes": 8})
    results = await asyncio.gather(*(arun_python(code, limits) for _ in range(3)))
    assert [r.stdout for r in results] == ["ok\n"] * 3, [r.summary() for r in results]


# --- memory, time, output --------------------------------------------------------------------------


def test_allocating_8_gib_hits_the_memory_limit() -> None:
    result = run("block = bytearray(8 << 30)\nprint('allocated')")
    assert result.exit_code == 1
    assert result.violation == "memory limit of 256 MB exceeded"
    assert "allocated" not in result.stdout and "MemoryError" in result.stderr
    assert run("print('still fine')").stdout == "still fine\n"


def test_busy_loop_hits_the_cpu_limit() -> None:
    result = run("print('spinning')\nwhile True:\n    pass", cpu_s=1, wall_s=30)
    assert result.exit_code is None
    assert result.violation == "CPU-time limit of 1s exceeded"
    assert result.stdout == "spinning\n"


def test_sleeping_hits_the_wall_time_limit() -> None:
    started = time.monotonic()
    result = run("import time\nprint('waiting')\ntime.sleep(60)", wall_s=1)
    assert result.exit_code is None
    assert result.violation == "wall-time limit of 1s exceeded"
    assert result.stdout == "waiting\n"
    assert time.monotonic() - started < 4


def test_100_mb_of_stdout_is_cut() -> None:
    code = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)"
    started = time.monotonic()
    result = run(code)
    assert time.monotonic() - started < 4
    assert result.exit_code is None and result.truncated and not result.ok
    assert result.violation == "stdout cut at 64 KB"
    assert result.stdout == "x" * (64 << 10)


def test_stderr_is_cut_too() -> None:
    result = run("import sys\nwhile True:\n    sys.stderr.write('e' * 4096)")
    assert result.violation == "stderr cut at 64 KB" and len(result.stderr) == 64 << 10


def test_exactly_the_cap_is_not_cut() -> None:
    result = run("import sys\nsys.stdout.write('y' * (64 << 10))")
    assert result.ok and not result.truncated and len(result.stdout) == 64 << 10


# --- environment ------------------------------------------------------------------------------------


def test_environment_is_stripped_of_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-openai")
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-aws")
    result = run("import os, json\nprint(json.dumps(dict(os.environ)))")
    assert result.ok, result.summary()
    for secret in ("OPENAI_API_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "sk-fake", "hf_fake", "fake-aws"):
        assert secret not in result.stdout
    env = json.loads(result.stdout)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["LANG"] == "C.UTF-8"
    assert env["HOME"] == ("/sandbox" if sandbox_mode() == "bubblewrap" else env["PWD"])


# --- the fallback, without bubblewrap ---------------------------------------------------------------

SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs as if bubblewrap were missing, with the system Python (an unprivileged uid can reach it)."""
    if os.geteuid() != 0:
        pytest.skip("the fallback drops to an unprivileged uid only when run as root")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"{SYSTEM_PYTHON} is missing")
    monkeypatch.setattr(sandbox, "sandbox_mode", lambda: "fallback (forced by the test)")
    monkeypatch.setattr(sys, "executable", str(SYSTEM_PYTHON))


@pytest.mark.usefixtures("fallback")
def test_fallback_keeps_uid_rlimits_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-openai")
    code = "import os\nprint(os.getuid(), os.getgroups(), 'OPENAI_API_KEY' in os.environ, os.getcwd() == os.environ['HOME'])"
    result = run(code)
    assert result.ok, result.summary()
    uid, rest = result.stdout.split(" ", 1)
    assert int(uid) != 0 and rest == "[] False True\n"
    assert run("block = bytearray(8 << 30)").violation == "memory limit of 256 MB exceeded"
    assert run("import subprocess\n[subprocess.Popen(['sleep', '7.75']) for _ in range(200)]").violation == (
        "process limit of 16 reached"
    )
    assert gone("sleep", "7.75")


@pytest.mark.usefixtures("fallback")
def test_fallback_kills_what_the_run_left_behind() -> None:
    code = "import subprocess\nfor _ in range(3):\n    subprocess.Popen(['sleep', '33.75'], start_new_session=True)"
    assert run(code).ok
    assert gone("sleep", "33.75", within_s=0.5)


def test_fallback_refuses_an_interpreter_the_sandbox_user_cannot_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = Path(os.path.realpath(sys.executable))
    if os.geteuid() != 0 or all(os.stat(p).st_mode & 0o001 for p in (*real.parents, real)):
        pytest.skip("needs root and an interpreter in a private directory (e.g. under /root)")
    monkeypatch.setattr(sandbox, "sandbox_mode", lambda: "fallback (forced by the test)")
    with pytest.raises(UserError, match="cannot sandbox Python: bubblewrap does not work here"):
        run("print('never runs as root')")


# --- results and the tool ---------------------------------------------------------------------------


def test_summary_shares_its_budget_between_the_tails() -> None:
    result = SandboxResult(exit_code=None, stdout="a" * 5000, stderr="b" * 10, duration_s=1.0, violation="v")
    text = result.summary(limit=100)
    assert text.startswith("exit code: none (killed)\nviolation: v\nstdout:\n[4910 earlier characters cut]\n")
    assert text.endswith("a" * 90 + "\nstderr:\n" + "b" * 10)
    assert "stdout:\n(empty)" in SandboxResult(0, "", "x", 0.1).summary()


async def test_arun_python_does_not_block_the_event_loop() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    result = await arun_python("import time\ntime.sleep(0.5)\nprint('done')", LIMITS)
    ticker.cancel()
    assert result.stdout == "done\n"
    assert ticks >= 20


def team_config(**python_limits: object) -> TeamConfig:
    return TeamConfig.from_dict(
        {
            "name": "t",
            "models": {"m": {"backend": "function", "callable": "tests.fakes:echo"}},
            "planner": {"model": "m"},
            "specialists": {"general": {"description": "does anything", "model": "m"}},
            "tools": {"python": python_limits},
        }
    )


async def test_the_python_tool(tmp_path: Path) -> None:
    tool = make_tool(ToolEnv(team_config(wall_s=5, memory_mb=256), tmp_path))
    assert tool.name == "python" and "sandbox" in tool.description
    assert list(tool.args) == ["code"]
    text = await tool.ainvoke({"code": "print(6 * 7)"})
    assert text == "42"  # a clean run is its output alone (see tessera.tools.python.report)
    text = await tool.ainvoke({"code": "block = bytearray(8 << 30)"})
    assert text.startswith("exit code: 1\nviolation: memory limit of 256 MB exceeded\n")
    assert tool.invoke({"code": "print('sync too')"}) == "sync too"


async def test_the_python_tool_reports_a_timeout(tmp_path: Path) -> None:
    tool = make_tool(ToolEnv(team_config(wall_s=1), tmp_path))
    text = await tool.ainvoke({"code": "while True:\n    pass"})
    assert text.startswith("exit code: none (killed)\nviolation: wall-time limit of 1s exceeded")


def test_args_from_instruction() -> None:
    fenced = "Compute it:\n```python\nprint(1 + 1)\n```\nthen\n```python\nprint(2)\n```"
    assert args_from_instruction(fenced) == {"code": "print(1 + 1)\n"}
    assert args_from_instruction("print('plain')") == {"code": "print('plain')"}
    assert args_from_instruction("```py\nx = 1\n") == {"code": "x = 1\n"}
    for empty in ("", "  \n", "```python\n```"):
        with pytest.raises(ValueError, match="no Python code"):
            args_from_instruction(empty)


def test_sandbox_mode_says_what_protects_runs() -> None:
    mode = sandbox_mode()
    assert mode == "bubblewrap" or mode.startswith("fallback (")
    if shutil.which("bwrap") is None:
        assert "not installed" in mode
