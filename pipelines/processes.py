"""Step processes: each step runs as `python -m <module> <args>` would, in a process of its own.

The processes are forked from a warm server that imports the libraries more than one step of the pipeline
imports, so five steps do not each pay pandas, scikit-learn and skops start-up (about 3.5 s) again. The step
still gets a fresh process: its own environment, working directory, arguments and log, and nothing it does
leaks into the next step.

The server is this module, `python -m pipelines.processes`, reading JSON lines on its stdin. The first says
what to import: one module at a time, whenever no step is asked for, so the first steps start at once and later
ones find the libraries loaded. Each next line is a step (id, module, args, env, cwd, log): the server forks a
child that becomes it, and answers on its stdout when the child started (id, pid) and when it ended (id, exit
code, and the largest resident memory it or a process it waited for had: what a step's chunk size must bound).
A step costs a fork, about 1 ms (multiprocessing's forkserver took about 10 ms: a pickled process object and a
socket per request, and in each child a re-import of the command's own main script). `pravah run` boots
the server before its own imports (`boot_server`), so that Python's start-up overlaps them, and a fully cached
run never sends it anything to import. The runner stops the server when its steps have ended; if the runner is
killed, the server's stdin closes, it ends, and its children are killed with it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import io
import json
import os
import re
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from foundation.processes import killed_with_parent

if TYPE_CHECKING:
    from concurrent.futures import Future

SERVER_GONE = -signal.SIGKILL  # what a step's exit code reads as when the server died under it
_BOOTED: list[subprocess.Popen] = []  # a server started ahead of need, for the next launcher


def boot_server() -> None:
    """Start a step server now, for the first launcher that needs one; unused, it is stopped at exit."""
    if not _BOOTED or _BOOTED[0].poll() is not None:
        _BOOTED[:] = [_start_server()]


@atexit.register
def _stop_unused() -> None:
    for server in _BOOTED:
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """Kill an idle server and reap it: it holds nothing, and a clean exit would cost its interpreter's teardown
    (about a second with torch loaded) for nothing."""
    server.kill()
    server.wait()


def _start_server() -> subprocess.Popen:
    """Its errors go to /dev/null: a caller reading the runner's output would otherwise wait for it to end (its
    interpreter's teardown takes about a second with torch loaded). Steps write to their own logs."""
    return subprocess.Popen(
        [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


class Ended(NamedTuple):
    code: int  # the exit code; negative: killed by that signal
    peak_mb: float | None  # the largest resident set of the step or of a process it waited for (None: unknown)


class StepLauncher:
    """The runner's side: starts the server on the first step that runs (a cached run never pays for its
    imports), sends it requests, and waits for their answers, from any number of threads at once."""

    def __init__(self, preload: Iterable[str] = ()):
        self._preload = sorted(set(preload))
        self._server: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._started: dict[int, Future[int]] = {}  # request id -> the step's pid
        self._ended: dict[int, Future[Ended]] = {}  # request id -> how it ended
        self._running: dict[int, int] = {}  # request id -> pid, for stop_all
        self._next_id = 0
        self._stopped = False  # stop_all was called: the run is being interrupted, start nothing more

    def _ensure_server(self) -> subprocess.Popen:
        """The booted server if there is one alive, else a new one; told first what to import."""
        if self._server is None:
            booted = _BOOTED.pop() if _BOOTED else None
            self._server = booted if booted is not None and booted.poll() is None else _start_server()
            threading.Thread(target=self._read_answers, args=(self._server,), daemon=True).start()
            self._send(self._server, {"import": self._preload})
        return self._server

    @staticmethod
    def _send(server: subprocess.Popen, request: dict) -> None:
        try:
            assert server.stdin is not None
            server.stdin.write(json.dumps(request).encode() + b"\n")
            server.stdin.flush()
        except OSError:  # the server died; its reader thread answers every request
            pass

    def _read_answers(self, server: subprocess.Popen) -> None:
        assert server.stdout is not None
        for line in server.stdout:
            answer = json.loads(line)
            with self._lock:
                if "pid" in answer:
                    self._running[answer["id"]] = answer["pid"]
                    self._started.pop(answer["id"]).set_result(answer["pid"])
                    if self._stopped:  # asked for before stop_all, started after it looked: stopped as it starts
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(answer["pid"], signal.SIGTERM)
                else:
                    self._running.pop(answer["id"], None)
                    self._ended.pop(answer["id"]).set_result(Ended(answer["exit"], answer.get("peak_mb")))
        with self._lock:  # the server died: every step still waiting has ended with it; a next one starts another
            if server is not self._server:  # closed after its steps ended
                return
            for future in self._started.values():
                future.set_result(SERVER_GONE)
            for future in self._ended.values():
                future.set_result(Ended(SERVER_GONE, None))
            self._started.clear()
            self._ended.clear()
            self._running.clear()
            self._server = None
        server.wait()

    def run(self, module: str, args: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> Ended:
        """Run a step to its end with the runner's environment plus `env`; return how it ended."""
        from concurrent.futures import Future  # the runner's side only: the server does not import it

        request = {"module": module, "args": args, "env": {**os.environ, **env}, "cwd": str(cwd), "log": str(log_path)}
        with self._lock:
            if self._stopped:  # a retry or a search's next trial after an interrupt
                return Ended(-signal.SIGTERM, None)
            server = self._ensure_server()
            request["id"] = request_id = self._next_id = self._next_id + 1
            started, ended = Future(), Future()
            self._started[request_id], self._ended[request_id] = started, ended
            self._send(server, request)
        result = ended.result()
        if result.code == SERVER_GONE and started.result() == SERVER_GONE:
            with log_path.open("a", encoding="utf-8") as log:
                log.write("the step server ended before the step could start\n")
        return result

    def stop_all(self, timeout: float = 10) -> None:
        """Stop every running step, and refuse to start any other (retries, a search's further trials)."""
        with self._lock:
            self._stopped = True
            running, waiting = list(self._running.values()), list(self._ended.values())
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for future in waiting:
            with contextlib.suppress(TimeoutError):
                future.result(timeout)
        with self._lock:
            for pid in self._running.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop the server once the run's steps have ended; a next run starts another."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            _stop(server)

    @property
    def stopped(self) -> bool:
        return self._stopped


def serve() -> None:
    """The server: import what it is asked to, and fork a child per step until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runner and the steps; the runner stops them
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through wake_w
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    children: dict[int, int] = {}  # pid -> request id
    pending, to_import = b"", []
    while True:
        events = selector.select(timeout=0 if to_import else None)
        if not events and to_import:  # idle: import the next library (a step asked for meanwhile waits one import)
            _import(to_import.pop(0))
        for key, _ in events:
            if key.fd == wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                _reap(children)
                continue
            chunk = os.read(0, 65536)
            if not chunk:  # the runner closed us or died: children are killed with this process
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                request = json.loads(line)
                if "import" in request:
                    to_import.extend(request["import"])
                    continue
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    _become_step(request, (wake_r, wake_w))
                children[pid] = request["id"]
                _answer({"id": request["id"], "pid": pid})


def _import(name: str) -> None:
    with contextlib.suppress(Exception):  # a library that fails to import fails in its step, with its traceback
        importlib.import_module(name)


def _reap(children: dict[int, int]) -> None:
    while children:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in children:
            # Linux's wait4 gives the larger of the child's own peak and its waited-for children's, in KiB
            peak_mb = round(usage.ru_maxrss / 1024, 1)
            _answer({"id": children.pop(pid), "exit": os.waitstatus_to_exitcode(status), "peak_mb": peak_mb})


def _answer(answer: dict) -> None:
    os.write(1, json.dumps(answer).encode() + b"\n")


def _become_step(request: dict, server_fds: Iterable[int]) -> None:
    """In the child: become `python -m module args` with the step's environment, writing to its log; never
    returns. The exit code is Python's: 0, SystemExit's code, 1 after an uncaught exception (its traceback in
    the log), and killed by SIGINT after Ctrl-C."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # heard, whatever was inherited
        for fd in server_fds:
            os.close(fd)
        killed_with_parent()  # with the server, which ends with the runner
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        null = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((null, 0), (log, 1), (log, 2)):
            os.dup2(source, target)
        os.close(log)
        os.close(null)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True)
        sys.argv = [request["module"], *request["args"]]
        sys.path.insert(0, request["cwd"])
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except KeyboardInterrupt:
            code = -signal.SIGINT
        except BaseException as exc:
            _print_step_traceback(exc)
        for thread in threading.enumerate():  # as the interpreter waits for them at exit
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    except BaseException:  # before the step's code ran (its folder is gone, its log cannot be opened)
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        if code == -signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)


def _print_step_traceback(exc: BaseException) -> None:
    """The traceback from the step's own code on: the server's and runpy's frames are not the user's."""
    frames = exc.__traceback__
    while frames and (
        frames.tb_frame.f_code.co_filename in {__file__, runpy.__file__}
        or frames.tb_frame.f_code.co_filename.startswith("<frozen")
    ):
        frames = frames.tb_next
    traceback.print_exception(type(exc), exc, frames or exc.__traceback__)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)  # sys.exit("message"), as Python prints it
    return 1


LOG_TAIL_LINES = 25  # a failed step's last log lines, shown with its failure


def describe_exit(returncode: int, log_path: Path) -> str:
    """How a step process ended, with the last lines of its latest attempt's log."""
    how = f"killed by signal {signal.Signals(-returncode).name}" if returncode < 0 else f"exit code {returncode}"
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    last_attempt = max((i for i, line in enumerate(lines) if line.startswith("=== ")), default=-1)
    tail = [line for line in lines[last_attempt + 1 :] if line.strip()][-LOG_TAIL_LINES:]
    shown = "\n    ".join(tail) if tail else "(no output)"
    return f"{how}{_raised_where(tail)}; log {log_path}:\n    {shown}"


def _raised_where(tail: list[str]) -> str:
    """': FILE:LINE: Error: message' for a log that ends with a traceback (its innermost frame), else ''."""
    frames = [m for line in tail if (m := re.match(r'\s*File "(.+)", line (\d+)', line))]
    if not frames or not any(line.startswith("Traceback (most recent call last)") for line in tail):
        return ""
    from foundation.yamlfile import display_path

    path, line = frames[-1].groups()
    return f": {display_path(Path(path))}:{line}: {tail[-1].strip()}"


def main(argv: Sequence[str] | None = None) -> None:
    argparse.ArgumentParser(
        description="The step server: started by the runner, it reads requests on stdin."
    ).parse_args(argv)
    serve()


if __name__ == "__main__":
    main()
