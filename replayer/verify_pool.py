"""The verify workers: one fork server per ``PYTHONHASHSEED``, kept for the life of the process.

A hash seed is fixed when an interpreter starts, so each seed needs its own process; starting
one costs about 0.7 s (mostly importing the store). :func:`run_workers` therefore keeps, per
seed (and working directory and environment), a ``python -m replayer.verify_runner --serve``
process that has imported everything but the reducer. Each request is carried out in a fresh
``fork()`` of it: the reducer is imported anew, its module-level state starts empty, the guards
are installed in the child only, and ``random`` reseeds itself after the fork. All requests of
one round are sent before any answer is read, so the workers run at once, one per core. The
server is picked by the ``PYTHON*`` variables (what an interpreter reads as it starts); the
child takes the caller's whole environment and working directory from the request.

Where ``fork`` does not exist, each request gets its own ``python -m replayer.verify_runner``.

:class:`PoolExecutor` is the executor :func:`replayer.verify.verify_log` hands the planner's
requests to: a run configuration's ``seed`` becomes ``PYTHONHASHSEED``, its ``warmup`` is done
by the worker, and JSON exists only between here and the worker.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devtools.jsonutil import dumps, loads
from replayer.verify_messages import Crash, RunRequest, RunResult, Subject

__all__ = ["PoolExecutor", "run_workers", "shutdown"]

MAX_IDLE = 8
"""Idle servers kept; the least recently used beyond this are stopped."""

_LOCK = threading.Lock()
_IDLE: dict[tuple[Any, ...], list[_Server]] = {}
"""Idle servers by key, in the order they were last used (oldest first)."""


def _pythonpath() -> str:
    entries = [os.getcwd()]
    for entry in sys.path:
        if entry and os.path.isdir(entry) and entry not in entries:
            entries.append(entry)
    extra = os.environ.get("PYTHONPATH")
    if extra:
        entries.append(extra)
    return os.pathsep.join(entries)


def _environment(seed: int) -> dict[str, str]:
    return {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": _pythonpath()}


class _Server:
    """One fork server: requests in on stdin, a child's exit code out on stdout, per line."""

    def __init__(self, env: dict[str, str], folder: str) -> None:
        self.log = Path(folder) / f"server-{os.getpid()}-{id(self)}.err"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "replayer.verify_runner", "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )

    def send(self, job: dict[str, Any]) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(dumps(job) + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def answer(self) -> int | None:
        """The child's exit code, or ``None`` when the server itself is gone."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        return int(line) if line.strip() else None

    def stderr_tail(self) -> str:
        try:
            return self.log.read_bytes()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


_FOLDER: str | None = None


def _folder() -> str:
    global _FOLDER
    if _FOLDER is None or not os.path.isdir(_FOLDER):
        _FOLDER = tempfile.mkdtemp(prefix="rdt-verify-servers-")
    return _FOLDER


def _acquire(key: tuple[Any, ...], env: dict[str, str]) -> _Server:
    idle = _IDLE.get(key)
    while idle:
        server = idle.pop()
        if server.proc.poll() is None:
            return server
        server.close()
    return _Server(env, _folder())


def _release(key: tuple[Any, ...], server: _Server) -> None:
    _IDLE.setdefault(key, []).append(server)
    _IDLE[key] = _IDLE.pop(key)  # most recently used last
    while sum(len(v) for v in _IDLE.values()) > MAX_IDLE:
        oldest = next(iter(_IDLE))
        _IDLE[oldest].pop(0).close()
        if not _IDLE[oldest]:
            del _IDLE[oldest]


def shutdown() -> None:
    """Stop every idle server (also run at exit)."""
    with _LOCK:
        for servers in _IDLE.values():
            for server in servers:
                server.close()
        _IDLE.clear()


atexit.register(shutdown)


def _result(out: Path, err_text: str, code: int | None) -> dict[str, Any]:
    if out.exists() and out.stat().st_size:
        return loads(out.read_bytes())
    return {"crash": {"returncode": code, "stderr": err_text[-2000:]}}


def run_workers(requests: Sequence[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Carry out each ``(seed, request)`` in a worker with that ``PYTHONHASHSEED``, all at once.

    Returns one result per request; a worker that died without a result gives
    ``{"crash": {"returncode", "stderr"}}``.
    """
    if not hasattr(os, "fork"):
        return _spawn_each(requests)
    with _LOCK, tempfile.TemporaryDirectory(prefix="rdt-verify-") as folder:
        cwd = os.getcwd()
        jobs = []
        for i, (seed, request) in enumerate(requests):
            env = _environment(seed)
            # what an interpreter reads when it starts picks the server; the child takes the
            # rest of the environment (and the working directory) from the job
            key = tuple(sorted((k, v) for k, v in env.items() if k.startswith("PYTHON")))
            out, err = Path(folder) / f"result-{i}.json", Path(folder) / f"result-{i}.err"
            job = {
                "out": str(out),
                "err": str(err),
                "cwd": cwd,
                "env": env,
                "caller": os.getpid(),
                "request": request,
            }
            server = _acquire(key, env)
            if not server.send(job):  # an idle server that died meanwhile: one fresh try
                server.close()
                server = _Server(env, _folder())
                server.send(job)
            jobs.append((key, server, out, err))
        results = []
        try:
            while jobs:
                key, server, out, err = jobs[0]
                code = server.answer()
                jobs.pop(0)
                if code is None:  # the server itself died
                    text = server.stderr_tail()
                    server.close()
                else:
                    text = err.read_bytes().decode("utf-8", "replace") if err.exists() else ""
                    _release(key, server)
                results.append(_result(out, text, code))
        finally:
            for _key, server, _out, _err in jobs:  # interrupted: busy servers go, their
                server.proc.kill()  # children notice and stop at their next chunk
                server.close()
        return results


def _spawn_each(requests: Sequence[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One ``python -m replayer.verify_runner RESULT_FILE`` per request (no ``fork``)."""
    with tempfile.TemporaryDirectory(prefix="rdt-verify-") as folder:
        procs = []
        for i, (seed, request) in enumerate(requests):
            out = Path(folder) / f"result-{i}.json"
            proc = subprocess.Popen(
                [sys.executable, "-m", "replayer.verify_runner", str(out)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=_environment(seed),
            )
            assert proc.stdin is not None
            proc.stdin.write(dumps(request))
            proc.stdin.close()
            procs.append((proc, out))
        results = []
        for proc, out in procs:
            assert proc.stderr is not None
            stderr = proc.stderr.read()
            proc.stderr.close()
            code = proc.wait()
            results.append(_result(out, stderr.decode("utf-8", "replace"), code))
        return results


class PoolExecutor:
    """Runs the planner's requests for one subject on fork-server workers, all at once.

    Args:
        subject: the log, recording and reducer every request replays.
    """

    def __init__(self, subject: Subject) -> None:
        self.subject = subject

    def run(self, requests: Sequence[RunRequest]) -> list[RunResult]:
        """One result per request, in order; a worker that died gives ``RunResult(crash=…)``."""
        subject = self.subject.to_json()
        docs = run_workers(
            [(r.run.seed, {"subject": subject, "request": r.to_json()}) for r in requests]
        )
        return [_to_result(doc) for doc in docs]


def _to_result(doc: dict[str, Any]) -> RunResult:
    crash = doc.get("crash")
    if crash is not None:
        return RunResult(crash=Crash(crash.get("returncode"), str(crash.get("stderr") or "")))
    return RunResult.from_json(doc)
