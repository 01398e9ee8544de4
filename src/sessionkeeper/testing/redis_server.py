"""Real ``redis-server`` processes on free loopback ports, in private temp directories.

[`RedisServer`][] is one server; [`RedisClusterServers`][] a Redis
Cluster of three masters; [`RedisSentinelGroup`][] a master, a replica and
three Sentinels with quick failure detection. Used by RedisStore's tests, fleet
tests and benchmarks; shipped so users can test their own fleet code against
real servers the same way. They need the ``redis-server`` and ``redis-cli``
binaries (Debian: ``apt-get install redis-server``, or ``make redis-server``),
nothing else: readiness is checked with a raw PING and ``redis-cli``.
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
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import IO, Self
from urllib.parse import quote

from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.lifecycle import Closing

logger = logging.getLogger(__name__)

#: How long a start may take before it is declared failed.
START_TIMEOUT = 20.0
#: How long a graceful stop may take before the process is killed.
STOP_TIMEOUT = 10.0


class RedisServerError(SessionkeeperError, RuntimeError):
    """The redis-server binary is missing, or the server did not start or stop."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Managed(Closing, ABC):
    """Something started by ``with`` and closed when the block ends, even on failure."""

    @abstractmethod
    def start(self) -> Self:
        """Start; return ``self``."""

    @abstractmethod
    def close(self) -> None:
        """Stop and clean up."""

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()  # ``with`` never calls __exit__ after a failed __enter__
            raise


class RedisServer(_Managed):
    """Starts ``redis-server --bind 127.0.0.1 --port N --save "" --dir TMP``.

    ``appendonly=True`` turns the append-only file on with ``appendfsync
    always``, so data written before [`restart`][] or [`kill`][] survives
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
        extra_args: Sequence[str] = (),
    ) -> None:
        self.appendonly = appendonly
        self.extra_args = tuple(extra_args)
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
        return command + list(self.extra_args)

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


def redis_cli(
    port: int,
    *args: str,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
    password: str | None = None,
) -> str:
    """Run ``redis-cli -h HOST -p PORT ARGS...``; return its output (raise if it fails).

    A ``password`` goes through ``REDISCLI_AUTH``, never the command line.
    """
    binary = shutil.which("redis-cli")
    if binary is None:
        raise RedisServerError("redis-cli is not installed (it comes with redis-server)")
    env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
    if password is not None:
        env["REDISCLI_AUTH"] = password
    done = subprocess.run(
        [binary, "-h", host, "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    if done.returncode != 0:
        raise RedisServerError(f"redis-cli {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _wait(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        with contextlib.suppress(RedisServerError, subprocess.TimeoutExpired):
            if condition():
                return
        pause.wait(0.05)
    raise RedisServerError(f"gave up waiting for {what}")


def _cluster_ok(port: int) -> bool:
    return "cluster_state:ok" in redis_cli(port, "CLUSTER", "INFO")


def _replica_synced(port: int, password: str | None = None) -> bool:
    return "master_link_status:up" in redis_cli(port, "INFO", "replication", password=password)


class _Group(_Managed):
    """Servers started together and stopped together, as one ``with`` block."""

    servers: list[RedisServer]

    def close(self) -> None:
        """Kill every server (nothing of a test group must outlive it) and remove its files."""
        for server in self.servers:
            server.kill()
            server.close()


class RedisClusterServers(_Group):
    """A Redis Cluster of ``masters`` masters (no replicas) on free loopback ports.

    Each node is a [`RedisServer`][] with ``--cluster-enabled yes``; the
    slots are spread with ``redis-cli --cluster create``, and [`start`][]
    returns once every node reports ``cluster_state:ok``.
    """

    def __init__(self, masters: int = 3, *, node_timeout_ms: int = 2000) -> None:
        self.servers = [
            RedisServer(
                appendonly=False,
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(node_timeout_ms),
                ],
            )
            for _ in range(masters)
        ]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...``."""
        return "redis+cluster://" + ",".join(f"{s.host}:{s.port}" for s in self.servers)

    def start(self) -> Self:
        """Start the nodes, create the cluster, wait until it serves every slot."""
        for server in self.servers:
            server.start()
        nodes = [f"{s.host}:{s.port}" for s in self.servers]
        first = self.servers[0].port
        redis_cli(first, "--cluster", "create", *nodes, "--cluster-yes", timeout=60)
        for server in self.servers:
            _wait(
                partial(_cluster_ok, server.port),
                f"cluster node {server.port} to serve every slot",
            )
        return self


class SentinelServer(RedisServer):
    """A ``redis-server --sentinel`` watching one master as ``service``."""

    def __init__(
        self,
        master_port: int,
        *,
        service: str,
        quorum: int,
        down_after_ms: int,
        failover_timeout_ms: int,
        master_password: str | None = None,
    ) -> None:
        super().__init__(appendonly=False)
        self.service = service
        self._monitor = (master_port, quorum, down_after_ms, failover_timeout_ms)
        self._master_password = master_password

    def _command(self, binary: str) -> list[str]:
        master_port, quorum, down_after, failover = self._monitor
        config = self.directory / "sentinel.conf"
        if not config.exists():  # Sentinel rewrites its file: keep it across restarts
            config.write_text(
                f"bind {self.host}\nport {self.port}\ndir {self.directory}\n"
                "protected-mode no\n"
                f"sentinel monitor {self.service} {self.host} {master_port} {quorum}\n"
                f"sentinel down-after-milliseconds {self.service} {down_after}\n"
                f"sentinel failover-timeout {self.service} {failover}\n"
                f"sentinel parallel-syncs {self.service} 1\n" + self._auth_line()
            )
        return [binary, str(config), "--sentinel"]

    def _auth_line(self) -> str:
        if self._master_password is None:
            return ""
        quoted = self._master_password.replace("\\", "\\\\").replace('"', '\\"')
        return f'sentinel auth-pass {self.service} "{quoted}"\n'


class RedisSentinelGroup(_Group):
    """A master, ``replicas`` replicas and ``sentinels`` Sentinels on loopback.

    Failure detection is quick (``down_after_ms``, ``failover_timeout_ms``) so
    tests can kill the master and see a replica promoted within seconds.
    [`start`][] returns once every Sentinel knows the replicas and the other
    Sentinels, so a failover can be agreed on at once. ``password`` protects
    the data servers (the Sentinels themselves ask for none).
    """

    def __init__(
        self,
        *,
        service: str = "sessionkeeper",
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 2000,
        password: str | None = None,
    ) -> None:
        self.service = service
        self.password = password
        # A replica syncs at once, not after the default 5 s wait for more replicas;
        # every data server may become a replica, so each knows the password.
        self._quick_sync: tuple[str, ...] = ("--repl-diskless-sync-delay", "0")
        if password is not None:
            self._quick_sync += ("--masterauth", password)
        self.master = RedisServer(appendonly=True, password=password, extra_args=self._quick_sync)
        self._replica_count = replicas
        self._sentinel_count = sentinels
        self._timing = (down_after_ms, failover_timeout_ms)
        self.replicas: list[RedisServer] = []
        self.sentinels: list[SentinelServer] = []
        self.servers = [self.master]

    @property
    def url(self) -> str:
        """``redis+sentinel://[:PASSWORD@]127.0.0.1:S1,...,127.0.0.1:Sn/SERVICE/0``."""
        hosts = ",".join(f"{s.host}:{s.port}" for s in self.sentinels)
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis+sentinel://{auth}{hosts}/{self.service}/0"

    def start(self) -> Self:
        """Start the master, its replicas and the Sentinels; wait until all are linked."""
        self.master.start()
        for _ in range(self._replica_count):
            replica = RedisServer(
                appendonly=True,
                password=self.password,
                extra_args=[
                    *self._quick_sync,
                    "--replicaof",
                    self.master.host,
                    str(self.master.port),
                ],
            )
            self.replicas.append(replica)
            self.servers.append(replica)
            replica.start()
        for replica in self.replicas:
            _wait(
                partial(_replica_synced, replica.port, self.password),
                f"replica {replica.port} to sync",
            )
        down_after, failover = self._timing
        quorum = self._sentinel_count // 2 + 1
        for _ in range(self._sentinel_count):
            sentinel = SentinelServer(
                self.master.port,
                service=self.service,
                quorum=quorum,
                down_after_ms=down_after,
                failover_timeout_ms=failover,
                master_password=self.password,
            )
            self.sentinels.append(sentinel)
            self.servers.append(sentinel)
            sentinel.start()
        for sentinel in self.sentinels:
            _wait(
                partial(self._linked, sentinel.port),
                f"sentinel {sentinel.port} to find the replicas and the other sentinels",
            )
        return self

    def _linked(self, sentinel_port: int) -> bool:
        lines = redis_cli(sentinel_port, "SENTINEL", "MASTER", self.service).split()
        fields = dict(zip(lines[::2], lines[1::2], strict=False))
        return (
            int(fields.get("num-slaves", 0)) >= self._replica_count
            and int(fields.get("num-other-sentinels", 0)) >= self._sentinel_count - 1
        )

    def master_port(self) -> int | None:
        """The master's port as the first answering Sentinel names it."""
        for sentinel in self.sentinels:
            with contextlib.suppress(RedisServerError, subprocess.TimeoutExpired):
                answer = redis_cli(
                    sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
                ).split()
                if len(answer) == 2:
                    return int(answer[1])
        return None

    def wait_for_master(self, port: int, timeout: float = 30.0) -> None:
        """Block until the Sentinels name ``port`` as the master."""
        _wait(lambda: self.master_port() == port, f"the sentinels to promote {port}", timeout)

    def rejoin_as_replica(self, server: RedisServer, timeout: float = 30.0) -> None:
        """Start ``server`` again as a replica of the current master; wait until it syncs.

        What an operator does with a failed master that comes back: it must
        not serve its old data as a second master.
        """
        master = self.master_port()
        if master is None:
            raise RedisServerError("no sentinel names a master to rejoin")
        server.extra_args = (*self._quick_sync, "--replicaof", server.host, str(master))
        server.start()
        _wait(
            partial(_replica_synced, server.port, self.password),
            f"{server.port} to sync as a replica",
            timeout,
        )


__all__ = [
    "RedisClusterServers",
    "RedisSentinelGroup",
    "RedisServer",
    "RedisServerError",
    "SentinelServer",
    "redis_cli",
]
