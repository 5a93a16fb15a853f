"""Run untrusted, model-generated Python with limits: ``run_python(code)`` -> :class:`SandboxResult`.

The code runs as ``python3 main.py`` in a fresh work dir, deleted afterwards. What protects a run
(:func:`sandbox_mode` says which applies on this machine):

- **bubblewrap** (``bwrap`` >= 0.8): the code sees a root file system built for it: ``/usr`` (with the
  ``/bin`` and ``/lib`` links), the interpreter's prefix and a few ``/etc`` files, all read-only; a fresh
  ``/proc`` and ``/dev``; ``/tmp`` and ``/dev/shm`` as small tmpfs; the work dir read-write at
  ``/sandbox``. Nothing else of the host (``/home``, ``/root``, ``/work``, ...) exists in there. New
  network (loopback only), pid, IPC and UTS namespaces: no sockets to the host, no host processes, and
  when the run ends, every process it started dies with the pid namespace.
- **an unprivileged uid**: run as root, each run gets a uid of its own (random, from 10**9 up) with no
  groups, no capabilities and ``no_new_privs``. Root ignores ``RLIMIT_NPROC``, and bubblewrap's own
  ``--uid`` would map back to root, so the drop happens inside the sandbox with ``setpriv``. Run as
  another user, bubblewrap maps that user to uid 65534 in a new user namespace. Either way the process
  limit counts this run's processes only (unless a container maps too few uids: then root's runs share
  ``nobody``, and its process count).
- **rlimits** (``prlimit``): address space (``memory_mb``, per process), CPU seconds (``cpu_s``),
  processes and threads (``max_processes``), 64 MB per written file, no core files.
- **the caller**: the wall-clock limit (``wall_s``) kills the whole sandbox; stdout and stderr are read in
  chunks and the run is killed once either passes ``max_output_kb``; the environment is rebuilt from
  scratch (no API keys or tokens from ours).

Without a working bubblewrap (not installed, or user namespaces disabled) the fallback keeps the uid
(when root), the rlimits and the caller-side limits, but has no network isolation, and the file system is
protected by Unix permissions only: world-readable host files are readable. As root it refuses to run an
interpreter the unprivileged uid cannot reach (e.g. one under ``/root``) rather than run the code as root.
Not root and without bubblewrap, the code runs as the caller's user and the process limit is not applied.

Disk: under bubblewrap nothing the code writes reaches the host's disk. The work dir holds at most
``work_dir_mb`` besides its input files, ``/tmp`` and ``/dev/shm`` :data:`TMPFS_MB` each; a full one is
reported as a violation. These are tmpfs, so a run may hold that much RAM (or swap) until it ends. The
fallback caps single files only (64 MB): the code can write to its work dir and to any world-writable
host dir (``/tmp``, ``/var/tmp``, ``/dev/shm``) until the wall-clock limit ends the run, so a cap on the
work dir alone would claim more than it holds.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tessera.config import SandboxConfig
from tessera.errors import MissingDependencyError, UserError

__all__ = ["SandboxResult", "arun_python", "run_python", "sandbox_mode"]

WORK_DIR = "/sandbox"
"""Where the work dir appears inside bubblewrap."""
FILE_SIZE_MB = 64
"""The largest file the code may write."""
TMPFS_MB = 64
"""Size of the sandbox's ``/tmp`` and ``/dev/shm`` (bubblewrap only)."""

_UID_BASE, _UID_SPAN = 1_000_000_000, 1 << 24
_NOBODY = 65534
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "nsswitch.conf")
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_EXIT_GRACE_S = 0.5
"""How long output is still read after the main process exits (fallback: children may hold the pipes)."""


@dataclass
class SandboxResult:
    """What one sandboxed run did.

    A run that passes ``max_output_kb`` is killed, so a cut output is also a violation and never ``ok``.
    """

    exit_code: int | None
    """The exit status (128 + N when killed by signal N); None when killed for breaking a limit."""
    stdout: str
    stderr: str
    duration_s: float
    violation: str | None = None
    """The limit the code broke, in one line (e.g. ``wall-time limit of 10s exceeded``)."""
    truncated: bool = False
    """stdout or stderr was cut at ``max_output_kb``."""

    @property
    def ok(self) -> bool:
        """The code exited 0 within every limit."""
        return self.exit_code == 0 and self.violation is None

    def summary(self, limit: int = 2000) -> str:
        """Text for a model: exit code, violation, and the tails of stdout and stderr.

        The tails share ``limit`` characters: half each, or more for one when the other is shorter.
        """
        err_budget = min(len(self.stderr), max(limit // 2, limit - len(self.stdout)))
        lines = [f"exit code: {'none (killed)' if self.exit_code is None else self.exit_code}"]
        if self.violation:
            lines.append(f"violation: {self.violation}")
        lines.append(f"stdout:\n{_tail(self.stdout, limit - err_budget)}")
        lines.append(f"stderr:\n{_tail(self.stderr, err_budget)}")
        return "\n".join(lines)


def run_python(
    code: str,
    limits: SandboxConfig | None = None,
    *,
    files: dict[str, str] | None = None,
    stdin: str | None = None,
) -> SandboxResult:
    """Run ``code`` as ``python3 main.py`` in a fresh sandbox; a broken limit is reported, never raised.

    Args:
        code: The program.
        limits: Time, memory, process and output limits; the defaults of :class:`SandboxConfig` if None.
        files: Extra files for the work dir, by relative path (e.g. ``{"tests.py": ...}``); ``main.py``
            is always ``code``.
        stdin: The program's standard input (empty if None).

    Raises:
        UserError: a name in ``files`` is not a relative path inside the work dir.
        MissingDependencyError: ``prlimit`` or ``setpriv`` (util-linux) is missing.
    """
    limits = limits or SandboxConfig()
    bwrap = shutil.which("bwrap") if sandbox_mode() == "bubblewrap" else None
    uid = _run_uid()
    if bwrap is None and uid is not None:
        _check_reachable(Path(sys.executable))
    with tempfile.TemporaryDirectory(prefix="tessera-sandbox-") as tmp, ExitStack() as opened:
        root = Path(tmp)
        work = _prepare(root, code, files or {}, stdin or "", uid)
        inputs = _open_inputs(work, opened) if bwrap else {}
        command = _command(bwrap, root, limits, uid, inputs)
        return _execute(command, root, work, limits, uid, inputs)


async def arun_python(
    code: str,
    limits: SandboxConfig | None = None,
    *,
    files: dict[str, str] | None = None,
    stdin: str | None = None,
) -> SandboxResult:
    """:func:`run_python` in a worker thread, so the event loop goes on meanwhile."""
    return await asyncio.to_thread(run_python, code, limits, files=files, stdin=stdin)


@functools.cache
def sandbox_mode() -> str:
    """What protects runs on this machine: ``bubblewrap``, or ``fallback (<why>; <what is lost>)``.

    Found once per process by running an empty program under bubblewrap.
    """
    lost = "no network or file system isolation"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return f"fallback (bubblewrap is not installed: apt-get install bubblewrap; {lost})"
    uid = _run_uid()
    with tempfile.TemporaryDirectory(prefix="tessera-sandbox-") as tmp, ExitStack() as opened:
        root = Path(tmp)
        inputs = _open_inputs(_prepare(root, "", {}, "", uid), opened)
        command = _command(bwrap, root, SandboxConfig(), uid, inputs)
        env = {"PATH": os.defpath}
        try:
            probe = subprocess.run(
                command, cwd=root, env=env, capture_output=True, timeout=60, pass_fds=tuple(inputs.values())
            )
        except subprocess.TimeoutExpired:
            return f"fallback (bubblewrap hangs here; {lost})"
    if probe.returncode == 0:
        return "bubblewrap"
    reason = (probe.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
    return f"fallback (bubblewrap fails here: {reason}; {lost})"


def _tail(text: str, budget: int) -> str:
    if not text:
        return "(empty)"
    if len(text) <= budget:
        return text
    return f"[{len(text) - budget} earlier characters cut]\n{text[len(text) - budget :]}"


def _run_uid() -> int | None:
    """A fresh uid for one run when we are root (the shared ``nobody`` if ours is not mapped), else None."""
    if os.geteuid() != 0:
        return None
    return _UID_BASE + secrets.randbelow(_UID_SPAN) if _uid_range_mapped() else _NOBODY


@functools.cache
def _uid_range_mapped() -> bool:
    """Whether this user namespace maps every uid and gid the runs may get (containers may map fewer)."""
    for table in ("uid_map", "gid_map"):
        try:
            rows = [line.split() for line in Path(f"/proc/self/{table}").read_text().splitlines()]
        except OSError:
            return False
        if not any(int(r[0]) <= _UID_BASE and _UID_BASE + _UID_SPAN <= int(r[0]) + int(r[2]) for r in rows):
            return False
    return True


def _prepare(root: Path, code: str, files: dict[str, str], stdin: str, uid: int | None) -> Path:
    """Write the work dir (``main.py`` and ``files``), stdin and the sandbox's passwd/group files."""
    work = root / "work"
    work.mkdir()
    for name, text in {**files, "main.py": code}.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise UserError(f"sandbox file {name!r}: expected a relative path inside the work dir")
        path = work.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "stdin").write_text(stdin, encoding="utf-8")
    inside = uid if uid is not None else _NOBODY
    etc = root / "etc"
    etc.mkdir()
    passwd = f"root:x:0:0::/root:/bin/sh\nsandbox:x:{inside}:{inside}::{WORK_DIR}:/bin/sh\n"
    (etc / "passwd").write_text(passwd)
    (etc / "group").write_text(f"root:x:0:\nsandbox:x:{inside}:\n")
    if uid is not None:
        root.chmod(0o711)
        for path in [work, *work.rglob("*")]:
            os.chown(path, uid, uid, follow_symlinks=False)
    return work


def _open_inputs(work: Path, opened: ExitStack) -> dict[PurePosixPath, int]:
    """The work dir's files, open for bubblewrap to copy into the sandbox's own work dir."""
    inputs: dict[PurePosixPath, int] = {}
    for path in sorted(work.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            opened.callback(os.close, fd)
            inputs[PurePosixPath(path.relative_to(work).as_posix())] = fd
    return inputs


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MissingDependencyError(f"the python sandbox needs {name}: apt-get install util-linux")
    return found


def _command(
    bwrap: str | None, root: Path, limits: SandboxConfig, uid: int | None, inputs: dict[PurePosixPath, int]
) -> list[str]:
    """The command line: [bwrap ... --] [setpriv ... --] prlimit ... -- python3 main.py."""
    command: list[str] = []
    if uid is not None:
        command += [_tool("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        command += ["--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
    command += [_tool("prlimit"), f"--as={limits.memory_mb << 20}", f"--fsize={FILE_SIZE_MB << 20}"]
    command += [f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}", "--core=0"]
    if uid is not None:
        command.append(f"--nproc={limits.max_processes}")
    elif bwrap is not None:
        command.append(f"--nproc={limits.max_processes + 1}")  # + bubblewrap's init, in the same namespace
    command += ["--", sys.executable, "main.py"]
    if bwrap is None:
        return command
    return [bwrap, *_bwrap_options(root, uid, limits, inputs), "--", *command]


def _bwrap_options(
    root: Path, uid: int | None, limits: SandboxConfig, inputs: dict[PurePosixPath, int]
) -> list[str]:
    options = ["--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net"]
    options += ["--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if uid is not None:
        options += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        options += ["--unshare-user", "--uid", str(_NOBODY), "--gid", str(_NOBODY)]
    options += ["--ro-bind", "/usr", "/usr"]
    for name in _ROOT_LINKS:
        host = Path("/", name)
        if host.is_symlink():
            options += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            options += ["--ro-bind", str(host), str(host)]
    options += ["--perms", "0755", "--dir", "/etc"]
    for name in _ETC_FILES:
        options += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for name in ("passwd", "group"):
        options += ["--ro-bind", str(root / "etc" / name), f"/etc/{name}"]
    options += ["--proc", "/proc", "--dev", "/dev"]
    for tmpfs in ("/tmp", "/dev/shm"):
        options += ["--perms", "1777", "--size", str(TMPFS_MB << 20), "--tmpfs", tmpfs]
    options += _work_dir_options(limits, inputs)
    made = {Path(p) for p in ("/", "/usr", "/etc", "/proc", "/dev", "/tmp", "/dev/shm", WORK_DIR)}
    for source, prefix in _interpreter_binds():
        for parent in reversed(prefix.parents):
            if parent not in made:
                options += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        options += ["--ro-bind", str(source), str(prefix)]
    options += ["--chdir", WORK_DIR, "--clearenv"]
    for key, value in _environment(WORK_DIR, "/tmp").items():
        options += ["--setenv", key, value]
    return options


def _work_dir_options(limits: SandboxConfig, inputs: dict[PurePosixPath, int]) -> list[str]:
    """The work dir: a tmpfs with room for the inputs plus ``work_dir_mb``, the inputs copied in."""
    page = os.sysconf("SC_PAGE_SIZE")
    size = (limits.work_dir_mb << 20) + sum(-(-os.fstat(fd).st_size // page) * page for fd in inputs.values())
    options = ["--perms", "0777", "--size", str(size), "--tmpfs", WORK_DIR]
    made = {PurePosixPath(".")}
    for relative, fd in inputs.items():
        for parent in reversed(relative.parents):
            if parent not in made:
                options += ["--perms", "0777", "--dir", f"{WORK_DIR}/{parent}"]
                made.add(parent)
        options += ["--perms", "0666", "--file", str(fd), f"{WORK_DIR}/{relative}"]
    return options


@functools.cache
def _interpreter_binds() -> tuple[tuple[Path, Path], ...]:
    """(host dir, path inside) for the interpreter's prefixes (a venv's and its base's) outside ``/usr``.

    Each prefix is bound at its resolved path and at the path Python was started from: a venv reached
    through a symlink (``.venv -> /opt/venvs/x``) runs as ``.venv/bin/python``, not as the resolved path.
    """
    covered = [Path("/usr"), *(Path("/", name) for name in _ROOT_LINKS)]
    executables = (sys.executable, os.path.realpath(sys.executable))
    seen = [sys.base_prefix, sys.prefix, *(os.path.dirname(os.path.dirname(e)) for e in executables)]
    binds: dict[Path, Path] = {}
    for path in (Path(os.path.abspath(p)) for p in seen):
        source = Path(os.path.realpath(path))
        for inside in (path, source):
            if inside == Path("/") or any(inside.is_relative_to(p) for p in [*covered, *binds]):
                continue
            binds = {p: s for p, s in binds.items() if not p.is_relative_to(inside)} | {inside: source}
    return tuple((source, inside) for inside, source in binds.items())


def _environment(home: str, tmp: str) -> dict[str, str]:
    """The sandbox's whole environment: nothing is inherited from ours (no keys, no tokens).

    One thread per numeric library: each thread counts against ``max_processes``.
    """
    path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    env = {"PATH": path, "HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8", "USER": "sandbox"}
    env |= {"LOGNAME": "sandbox", "MPLBACKEND": "Agg"}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
    env |= {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return env


def _execute(
    command: list[str],
    root: Path,
    work: Path,
    limits: SandboxConfig,
    uid: int | None,
    inputs: dict[PurePosixPath, int],
) -> SandboxResult:
    fallback = not inputs  # bubblewrap always gets main.py to copy in
    started = time.monotonic()
    deadline = started + limits.wall_s
    env = _environment(str(work), str(work)) if fallback else {"PATH": os.defpath}
    with (root / "stdin").open("rb") as stdin:
        proc = subprocess.Popen(
            command,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=work if fallback else root,
            env=env,
            start_new_session=True,
            pass_fds=tuple(inputs.values()),
        )
    output = _Output(limits.max_output_kb << 10)
    wall = f"wall-time limit of {limits.wall_s:g}s exceeded"
    try:
        killed = output.collect(proc, deadline, wall)
        if killed is None and proc.returncode is None:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(max(deadline - time.monotonic(), 0))
            killed = wall if proc.returncode is None else None
    finally:
        if proc.returncode is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        elif fallback:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # children left in the run's process group
        if fallback and uid is not None:
            _kill_uid(uid)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    duration_s = time.monotonic() - started
    status = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    if killed is None and _cpu_exceeded(limits, status, duration_s):
        killed = f"CPU-time limit of {limits.cpu_s}s exceeded"
    return SandboxResult(
        exit_code=None if killed else status,
        stdout=output.text("stdout"),
        stderr=output.text("stderr"),
        duration_s=duration_s,
        violation=killed or _violation(limits, status, output.text("stderr"), fallback),
        truncated=output.truncated,
    )


class _Output:
    """stdout and stderr, read in chunks as they come; nothing past ``cap`` bytes is kept."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = {"stdout": bytearray(), "stderr": bytearray()}
        self.truncated = False

    def text(self, name: str) -> str:
        return self.data[name].decode("utf-8", errors="replace")

    def collect(self, proc: subprocess.Popen[bytes], deadline: float, wall: str) -> str | None:
        """Read until both pipes close; why the run must be killed, or None."""
        exited_at: float | None = None
        with selectors.DefaultSelector() as selector:
            for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
                if pipe is not None:
                    selector.register(pipe, selectors.EVENT_READ, name)
            while selector.get_map():
                now = time.monotonic()
                if now >= deadline:
                    return wall
                if exited_at is not None and now >= exited_at + _EXIT_GRACE_S:
                    break
                for key, _ in selector.select(min(deadline - now, 0.05)):
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    kept = self.data[key.data]
                    room = self.cap - len(kept)
                    kept += chunk[:room]
                    if len(chunk) > room:
                        self.truncated = True
                        return f"{key.data} cut at {self.cap >> 10} KB"
                if exited_at is None and proc.poll() is not None:
                    exited_at = time.monotonic()
        return None


def _kill_uid(uid: int) -> None:
    """Kill whatever still runs as ``uid`` (fallback: no pid namespace takes the run's children down)."""
    kill = [sys.executable, "-S", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"]  # all but itself
    subprocess.run(kill, user=uid, group=uid, extra_groups=[], env={}, capture_output=True, timeout=10)


def _check_reachable(path: Path) -> None:
    """Fallback as root: the unprivileged uid must be able to run the interpreter, or nothing runs."""
    real = Path(os.path.realpath(path))
    for step in (*reversed(real.parents), real):
        if not os.stat(step).st_mode & stat.S_IXOTH:
            raise UserError(
                f"cannot sandbox Python: bubblewrap does not work here ({sandbox_mode()}), and the"
                f" unprivileged user the code would run as cannot reach {real} ({step} is private)."
                " Install bubblewrap, or run Tessera with a Python outside private directories."
            )


def _cpu_exceeded(limits: SandboxConfig, status: int, duration_s: float) -> bool:
    """Killed by the kernel at the CPU limit: SIGXCPU at ``cpu_s``, SIGKILL a second later if ignored.

    Best effort: bubblewrap reports the signal as exit status 128 + N, and hides the CPU time used.
    """
    if status == 128 + signal.SIGXCPU:
        return True
    return status == 128 + signal.SIGKILL and duration_s >= limits.cpu_s


def _violation(limits: SandboxConfig, status: int, stderr: str, fallback: bool) -> str | None:
    """Which limit stopped the code, read from how it ended (best effort: the code may catch the error)."""
    if status == 0:
        return None
    last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
    if "MemoryError" in last:
        return f"memory limit of {limits.memory_mb} MB exceeded"
    if "Resource temporarily unavailable" in last or "can't start new thread" in last:
        return f"process limit of {limits.max_processes} reached"
    if "File too large" in last or status == 128 + signal.SIGXFSZ:
        return f"file-size limit of {FILE_SIZE_MB} MB exceeded"
    if "No space left on device" in last and not fallback:
        caps = f"work dir {limits.work_dir_mb} MB, /tmp and /dev/shm {TMPFS_MB} MB each"
        return f"disk-space limit exceeded ({caps})"
    return None
