"""A real ``redis-server`` on a free loopback port, in a private temp directory.

Used by RedisStore's tests, fleet tests and benchmarks; shipped so users can
test their own fleet code against a real server the same way. It needs the
``redis-server`` binary (Debian: ``apt-get install redis-server``, or
``make redis-server``), nothing else: readiness is checked with a raw PING.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import quote

logger = logging.getLogger(__name__)

#: How long a start may take before it is declared failed.
START_TIMEOUT = 20.0
#: How long a graceful stop may take before the process is killed.
STOP_TIMEOUT = 10.0


class RedisServerError(RuntimeError):
    """The redis-server binary is missing, or the server did not start or stop."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """Starts ``redis-server --bind 127.0.0.1 --port N --save "" --dir TMP``.

    ``appendonly=True`` turns the append-only file on with ``appendfsync
    always``, so data written before :meth:`restart` or :meth:`kill` survives
    it. The port and the directory are kept across restarts, so clients can
    reconnect to the same URL.
    """

    def __init__(
        self,
        *,
        appendonly: bool = True,
        password: str | None = None,
        binary: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self.appendonly = appendonly
        self.host = host
        self._password = password
        self._binary = binary
        self._requested_port = port
        self._port: int | None = port
        self._owns_dir = directory is None
        self._dir: Path | None = Path(directory) if directory is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started_once = False

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RedisServer({self.host}:{self._port}, {state})"

    @staticmethod
    def find_binary() -> str | None:
        """Return the path of ``redis-server`` on PATH, or ``None``."""
        return shutil.which("redis-server")

    @property
    def port(self) -> int:
        """The TCP port (fixed at the first start)."""
        if self._port is None:
            raise RedisServerError("redis-server has not been started yet")
        return self._port

    @property
    def directory(self) -> Path:
        """The server's working directory (append-only files live here)."""
        if self._dir is None:
            raise RedisServerError("redis-server has not been started yet")
        return self._dir

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0`` (the password percent-encoded)."""
        auth = f":{quote(self._password, safe='')}@" if self._password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def _command(self, binary: str) -> list[str]:
        command = [
            binary,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ]
        if self.appendonly:
            command += ["--appendfsync", "always"]
        if self._password:
            command += ["--requirepass", self._password]
        return command

    def start(self) -> Self:
        """Start the server and wait until it answers PING; return ``self``."""
        if self.running:
            return self
        binary = self._binary or self.find_binary()
        if binary is None:
            raise RedisServerError(
                "redis-server is not installed: run `make redis-server` "
                "(or `apt-get install redis-server`)"
            )
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise RedisServerError(f"redis-server binary {binary!r} is not executable")
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="sessionkeeper-redis-"))
        attempts = 1 if self._requested_port is not None else 5
        last_error = ""
        for _ in range(attempts):
            if self._port is None:
                self._port = _free_port(self.host)
            self._log = (self.directory / "redis.log").open("ab")
            self._process = subprocess.Popen(
                self._command(binary),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
            )
            if self._wait_ready():
                logger.info("redis-server pid %s listening on %s", self.pid, self.port)
                return self
            last_error = self._tail_log()
            self._reap()
            if self._requested_port is None and not self._started_once:
                self._port = None  # the port was taken meanwhile: pick another one
        raise RedisServerError(f"redis-server did not start on port {self._port}: {last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            if self.ping():
                self._started_once = True
                return True
            time.sleep(0.02)
        return False

    def ping(self) -> bool:
        """Send a raw PING; return whether the server answered it (or asked for auth)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        # ``-NOAUTH`` still proves the server is up and serving commands.
        return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")

    def _tail_log(self) -> str:
        try:
            lines = (self.directory / "redis.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) or "(empty log)"

    def _reap(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM, so it flushes its append-only file)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("redis-server pid %s ignored SIGTERM; killing it", process.pid)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server: what a crash looks like to its clients."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self._reap()

    def restart(self) -> Self:
        """Stop and start again on the same port and directory."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its temp directory (if this object created it)."""
        self.stop()
        if self._owns_dir and self._dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._dir)
            self._dir = None

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()  # ``with`` never calls __exit__ after a failed __enter__
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["RedisServer", "RedisServerError"]
