"""Start programs, wait until they are ready, always stop them: for the demo and the tests.

Every process runs in a session of its own so that stopping it also stops its children
(ffmpeg under a node, a node under a shell). Output goes to a log file (kept for the
demo's run directory or a failed test's report); readiness is observed (a line in the
output, a port that accepts, an HTTP answer), never assumed after a fixed sleep.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from havatar_common.lifetime import preexec

POLL_INTERVAL = 0.02
STOP_TIMEOUT_S = 5.0  # per signal: SIGINT, then SIGTERM, then SIGKILL


class ProcessError(RuntimeError):
    """A managed process died or never became ready."""


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               interval: float = POLL_INTERVAL) -> object:
    """Poll ``predicate`` until it returns a truthy value; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f'timed out after {timeout:.1f} s waiting for {what}')
        time.sleep(interval)


def free_port(preferred: int = 0, host: str = '127.0.0.1', kind: int = socket.SOCK_STREAM) -> int:
    """``preferred`` if it is free on ``host`` now, else any free port (TCP by default,
    ``SOCK_DGRAM`` for UDP).
    """
    for port in dict.fromkeys((preferred, 0)):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError(f'no free port on {host}')


def port_is_open(port: int, host: str = '127.0.0.1') -> bool:
    """Return True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def find_program(name: str) -> Path:
    """``$HAVATAR_WORKSPACE/tools/bin/<name>`` if set up there (scripts/setup.sh), else
    ``name`` on PATH; FileNotFoundError otherwise.
    """
    workspace = os.environ.get('HAVATAR_WORKSPACE')
    if workspace:
        local = Path(workspace) / 'tools' / 'bin' / name
        if local.is_file() and os.access(local, os.X_OK):
            return local
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f'{name} not found in $HAVATAR_WORKSPACE/tools/bin or on PATH; '
                                'run scripts/setup.sh')
    return Path(found)


def http_answers(url: str, ok: Callable[[int], bool] = lambda status: status < 500) -> bool:
    """Whether ``url`` answers now with a status ``ok`` accepts (default: not a 5xx)."""
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return ok(response.status)
    except urllib.error.HTTPError as exc:
        return ok(exc.code)
    except (OSError, ValueError):
        return False


class ManagedProcess:
    """A subprocess with its own process group, a log file and readiness helpers.

    ``die_with_parent``: the kernel sends it SIGTERM when the thread that started it ends
    (``havatar_common.lifetime``), so start such processes from a thread that lives as
    long as they should. ``interrupt`` is called at every poll of a wait and may raise to
    abandon it (the demo's stop signals).
    """

    def __init__(self, name: str, argv: Sequence[object], log_path: Path,
                 env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
                 stdin: int | None = subprocess.DEVNULL, die_with_parent: bool = False,
                 interrupt: Callable[[], None] = lambda: None) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.interrupt = interrupt
        self._log = open(log_path, 'wb')
        self.popen = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=stdin,
            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
            preexec_fn=preexec(signal.SIGTERM) if die_with_parent else None)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        """Everything the process has written so far (stdout and stderr)."""
        if not self._log.closed:  # closed once stopped
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def _check_alive(self, what: str) -> None:
        if not self.running():
            raise ProcessError(
                f'{self.name} exited with code {self.popen.returncode} while waiting for '
                f'{what}; output:\n{self.tail()}')

    def tail(self, lines: int = 40) -> str:
        return '\n'.join(self.output().splitlines()[-lines:])

    def wait_for(self, predicate: Callable[[], object], timeout: float, what: str) -> object:
        """Poll ``predicate`` until truthy; fail early if the process dies meanwhile."""
        def check() -> object:
            self.interrupt()
            self._check_alive(what)
            return predicate()
        try:
            return wait_until(check, timeout, what)
        except TimeoutError as exc:
            raise TimeoutError(f'{self.name}: {exc}; output:\n{self.tail()}') from None

    def wait_for_output(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until the output matches the regular expression; return the match."""
        regex = re.compile(pattern, re.MULTILINE)
        return self.wait_for(lambda: regex.search(self.output()), timeout,
                             f'output matching {pattern!r}')  # type: ignore[return-value]

    def wait_for_port(self, port: int, timeout: float = 10.0, host: str = '127.0.0.1') -> None:
        self.wait_for(lambda: port_is_open(port, host), timeout, f'TCP port {host}:{port}')

    def wait_for_http(self, url: str, timeout: float = 10.0,
                      ok: Callable[[int], bool] = lambda status: status < 500) -> None:
        """Wait until ``url`` answers with a status ``ok`` accepts (default: not a 5xx)."""
        self.wait_for(lambda: http_answers(url, ok), timeout, f'HTTP answer from {url}')

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit by itself; return its exit code."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f'{self.name} still running after {timeout:.1f} s; output:\n'
                               f'{self.tail()}') from None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the whole process group."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Stop the process and its children: SIGINT, then SIGTERM, then SIGKILL.

        Returns the exit code of the main process. Children left in the group after the
        main process exits are killed too. A stopped (SIGSTOP) process is resumed first.
        """
        self.signal(signal.SIGCONT)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.popen.poll() is not None:
                break
            self.signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
        self.signal(signal.SIGKILL)  # stragglers in the group
        if self.popen.poll() is None:
            self.popen.wait()
        self._log.close()
        return self.popen.returncode


class ProcessManager:
    """Starts processes (for one test, or the demo) and stops all of them, newest first.

    ``die_with_parent`` and ``interrupt`` apply to every process: see ``ManagedProcess``.
    """

    def __init__(self, log_dir: Path, env: Mapping[str, str], die_with_parent: bool = False,
                 interrupt: Callable[[], None] = lambda: None) -> None:
        self.log_dir = log_dir
        self.env = dict(env)
        self.die_with_parent = die_with_parent
        self.interrupt = interrupt
        self.processes: list[ManagedProcess] = []

    def start(self, name: str, argv: Sequence[object], env: Mapping[str, str] | None = None,
              **kwargs: object) -> ManagedProcess:
        """Start ``argv`` with the manager's environment updated by ``env``."""
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        log_path = self.log_dir / f'{len(self.processes):02d}-{re.sub(r"[^A-Za-z0-9_.-]", "_", name)}.log'
        process = ManagedProcess(name, argv, log_path, env=full_env,  # type: ignore[arg-type]
                                 die_with_parent=self.die_with_parent, interrupt=self.interrupt,
                                 **kwargs)
        self.processes.append(process)
        return process

    def exited(self) -> Optional[ManagedProcess]:
        """The first process that has ended, if any."""
        return next((p for p in self.processes if not p.running()), None)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def report(self) -> str:
        """Tails of every process's log, for a failed test's report."""
        return '\n'.join(f'----- {p.name} (pid {p.pid}, {p.log_path}) -----\n{p.tail()}'
                         for p in self.processes)
