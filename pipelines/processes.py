"""Step processes: each step runs as `python -m <module> <args>` would, in a process of its own.

The processes are forked from a warm server (multiprocessing's forkserver) that has already imported the
libraries more than one step of the pipeline imports, so five steps do not each pay pandas, scikit-learn
and skops start-up (about 3.5 s) again. The step still gets a fresh process: its own environment,
working directory, arguments and log, and nothing it does leaks into the next step.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import runpy
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from foundation.processes import killed_with_parent

# What every step process needs before its own code: this module (the child's entry) and what it imports, kept
# light (no pydantic, no records), and imported once in the server, so that a fork costs what a process costs.
STEP_ENTRY = __name__


class StepLauncher:
    def __init__(self, preload: Iterable[str] = ()):
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(sorted({*preload, STEP_ENTRY}))  # takes effect when the server starts
        self._running: set[multiprocessing.process.BaseProcess] = set()
        self._lock = threading.Lock()
        self._server_started = False
        self._stopped = False  # stop_all was called: the run is being interrupted, start nothing more

    def _start_server(self) -> None:
        """Start the server with /dev/null for output: it outlives the runner by its interpreter's teardown
        (about a second with torch loaded), and a caller reading the runner's output would otherwise wait
        for it. Steps write to their own logs. Started on the first step that runs, so a cached run never
        pays for its imports; the terminal lock keeps other threads' lines from the swapped descriptors."""
        from multiprocessing import forkserver

        from pipelines.progress import TERMINAL_LOCK

        with self._lock, TERMINAL_LOCK:
            if self._server_started:
                return
            self._server_started = True
            self._with_output_to_devnull(forkserver.ensure_running)

    @staticmethod
    def _with_output_to_devnull(function) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            function()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, devnull):
                os.close(fd)

    def run(self, module: str, args: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> int:
        """Run a step to its end with the runner's environment plus `env`; return its exit code
        (negative: killed by that signal)."""
        if self._stopped:  # a retry or a search's next trial after an interrupt
            return -signal.SIGTERM
        self._start_server()
        full_env = {**os.environ, **env}  # the server's own environment is a snapshot from its start
        process = self._context.Process(
            target=_step_main, args=(module, args, full_env, str(cwd), str(log_path)), name=module, daemon=False
        )
        process.start()
        with self._lock:
            self._running.add(process)
            if self._stopped:  # stop_all ran while this one started
                process.terminate()
        try:
            process.join()
            return process.exitcode if process.exitcode is not None else -signal.SIGKILL
        finally:
            with self._lock:
                self._running.discard(process)
            process.close()

    def stop_all(self, timeout: float = 10) -> None:
        """Stop every running step, and refuse to start any other (retries, a search's further trials)."""
        with self._lock:
            self._stopped = True
            running = list(self._running)
        for process in running:
            with contextlib.suppress(ValueError):  # ended, and closed by its thread, meanwhile
                process.terminate()
        for process in running:
            with contextlib.suppress(ValueError):
                process.join(timeout)
                if process.is_alive():
                    process.kill()

    @property
    def stopped(self) -> bool:
        return self._stopped


def _step_main(module: str, args: list[str], env: dict[str, str], cwd: str, log_path: str) -> None:
    """In the child: become `python -m module args` with the step's environment, writing to its log."""
    _die_with_parent()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True)
    sys.argv = [module, *args]
    sys.path.insert(0, cwd)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _die_with_parent() -> None:
    """Be killed when the server dies, and let it die with the runner: a `kill -9` leaves no orphan step.

    The server stops when no process holds the write end of its "alive" pipe any more; every forked child
    inherits one, which would keep the server, and so the step, alive after the runner is gone.
    """
    from multiprocessing import forkserver

    server = forkserver._forkserver
    if server._forkserver_alive_fd is not None:
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
    killed_with_parent()


LOG_TAIL_LINES = 25  # a failed step's last log lines, shown with its failure


def describe_exit(returncode: int, log_path: Path) -> str:
    """How a step process ended, with the last lines of its latest attempt's log."""
    how = f"killed by signal {signal.Signals(-returncode).name}" if returncode < 0 else f"exit code {returncode}"
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    last_attempt = max((i for i, line in enumerate(lines) if line.startswith("=== ")), default=-1)
    tail = [line for line in lines[last_attempt + 1 :] if line.strip()][-LOG_TAIL_LINES:]
    shown = "\n    ".join(tail) if tail else "(no output)"
    return f"{how}; log {log_path}:\n    {shown}"
