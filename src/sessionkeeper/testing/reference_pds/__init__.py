"""The reference ATProto PDS (``@atproto/pds``) on loopback, for tests and benchmarks.

``python -m sessionkeeper.testing.reference_pds install`` installs the PDS, an
in-memory PLC directory and, when the system node is too old, a node 22 into
``$PDS_TOOLS_DIR`` (default: ``reference-pds`` in the user cache directory); it
needs node, npm and a C++ toolchain. The launcher and the pinned package lists
ship inside this package, so an installed wheel can install and start it.
`ReferencePds` starts them in one node process on free ports of
127.0.0.1 with a throw-away data directory, waits for ``/xrpc/_health``, and
counts the requests the PDS saw by reading its JSON request log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any, NamedTuple, Self
from urllib.parse import urlsplit

import httpx
import jwt as pyjwt
import platformdirs

from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.lifecycle import Running

logger = logging.getLogger(__name__)

#: The launcher, the pinned package lists and the installer travel with the package.
_HERE = Path(__file__).resolve().parent
_LAUNCHER = _HERE / "run.mjs"
INSTALLER = _HERE / "install.sh"
_INSTALL_HINT = (
    "run `python -m sessionkeeper.testing.reference_pds install` (PDS_TOOLS_DIR picks the folder)"
)

#: Path prefix of every XRPC call; the NSID follows it.
_XRPC_PREFIX = "/xrpc/"
#: The request that marks "everything before me is logged" in `ReferencePds.count`.
_MARKER_NSID = "_health"

#: Environment variables of the caller that would change how the PDS behaves
#: (a PDS_* or LOG_* left over in a shell); they are dropped, then ours are set.
_INHERITED_PREFIXES = ("PDS_", "LOG_", "NODE_OPTIONS")


class ReferencePdsError(SessionkeeperError, RuntimeError):
    """The reference PDS refused or failed something the harness asked of it."""


class ReferencePdsUnavailable(ReferencePdsError):  # noqa: N818 - the name the suite uses
    """The reference PDS is not installed here, or it did not start."""


def default_tools_dir() -> Path:
    """Where the installer puts the PDS: ``$PDS_TOOLS_DIR``, else the user cache directory."""
    override = os.environ.get("PDS_TOOLS_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return platformdirs.user_cache_path("sessionkeeper") / "reference-pds"


def _node_binary(tools_dir: Path) -> Path | None:
    recorded = tools_dir / "node-bin"
    try:
        path = Path(recorded.read_text(encoding="utf-8").strip())
    except OSError:
        return None
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _launcher(tools_dir: Path) -> Path | None:
    # The packaged launcher first, so an edit to it needs no reinstall.
    for candidate in (_LAUNCHER, tools_dir / "run.mjs"):
        if candidate.is_file():
            return candidate
    return None


def _missing_parts(tools_dir: Path) -> list[str]:
    missing = []
    if _node_binary(tools_dir) is None:
        missing.append(f"{tools_dir / 'node-bin'} (the node binary to run the PDS on)")
    for package in ("@atproto/pds", "@did-plc/server", "better-sqlite3"):
        if not (tools_dir / "node_modules" / package / "package.json").is_file():
            missing.append(f"node package {package}")
    if _launcher(tools_dir) is None:
        missing.append("the launcher run.mjs")
    return missing


def is_installed(tools_dir: Path | str | None = None) -> bool:
    """Whether the reference PDS is installed in ``tools_dir`` (default: the install folder)."""
    folder = Path(tools_dir) if tools_dir is not None else default_tools_dir()
    return not _missing_parts(folder)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _nsid_of(url: str) -> str | None:
    path = urlsplit(url).path
    if not path.startswith(_XRPC_PREFIX):
        return None
    return path[len(_XRPC_PREFIX) :] or None


class LoggedRequest(NamedTuple):
    """One request the PDS answered, as its request log records it."""

    method: str
    url: str  #: path and query, e.g. ``/xrpc/com.atproto.server.getSession``
    status: int

    @property
    def nsid(self) -> str | None:
        """The XRPC method called, or ``None`` for a non-XRPC path."""
        return _nsid_of(self.url)


def _logged_request(record: dict[str, Any]) -> LoggedRequest | None:
    """The request of a pino-http completion record, else ``None``.

    Only the HTTP logger's record carries both ``req`` and ``res``; the XRPC
    layer logs each error answer once more with ``req`` alone, so counting
    every ``req`` would count a failed call twice.
    """
    request, response = record.get("req"), record.get("res")
    if not isinstance(request, dict) or not isinstance(response, dict):
        return None
    url, method, status = request.get("url"), request.get("method"), response.get("statusCode")
    if not isinstance(url, str) or not isinstance(method, str) or not isinstance(status, int):
        return None
    return LoggedRequest(method, url, status)


class ReferencePds(Running):
    """``@atproto/pds`` 0.5.35 with an in-memory PLC, on free loopback ports.

    Start it (``start()`` or ``with``), use [`url`][], make accounts with
    [`create_account`][], and ask [`count`][] how many calls of an NSID the
    PDS answered since [`reset_counts`][]. ``stop()`` sends SIGTERM, then
    SIGKILL, and removes the data directory.
    """

    def __init__(
        self,
        *,
        tools_dir: Path | str | None = None,
        rate_limits: bool = False,
        startup_timeout: float = 120.0,
    ) -> None:
        self._tools_dir = Path(tools_dir) if tools_dir is not None else default_tools_dir()
        self._rate_limits = rate_limits
        self._startup_timeout = startup_timeout
        self.admin_password = secrets.token_urlsafe(18)
        # The PDS signs its HS256 session tokens with these bytes (see mint_access_token).
        self._jwt_secret = secrets.token_hex(32)
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._log_file: IO[bytes] | None = None
        self._pds_port: int | None = None
        self._plc_port: int | None = None
        self._offset = 0
        self._marker_serial = 0
        #: Seconds from spawn to a healthy PDS, measured by the last `start`.
        self.startup_seconds: float | None = None

    def __repr__(self) -> str:
        state = f"url={self.url}" if self._pds_port is not None else "stopped"
        return f"<ReferencePds {state}>"

    # -- lifecycle -----------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the PDS (only while started)."""
        if self._pds_port is None:
            raise RuntimeError("the reference PDS is not started")
        return f"http://127.0.0.1:{self._pds_port}"

    @property
    def public_url(self) -> str:
        """``http://localhost:PORT``: the PDS's own name for itself, and its OAuth issuer.

        DID documents, OAuth metadata and DPoP ``htu`` checks use this origin
        (``PDS_HOSTNAME=localhost`` with ``PDS_DEV_MODE``); a DPoP proof for
        ``127.0.0.1`` is refused with "htu mismatch".
        """
        if self._pds_port is None:
            raise RuntimeError("the reference PDS is not started")
        return f"http://localhost:{self._pds_port}"

    @property
    def plc_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the in-memory PLC directory (only while started)."""
        if self._plc_port is None:
            raise RuntimeError("the reference PDS is not started")
        return f"http://127.0.0.1:{self._plc_port}"

    @property
    def pid(self) -> int | None:
        """Process id of the node process, while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        """The PDS's combined stdout/stderr: one JSON record per line (only while started)."""
        if self._workdir is None:
            raise RuntimeError("the reference PDS is not started")
        return self._workdir / "pds.log"

    def start(self) -> Self:
        """Spawn the PDS and wait until it answers ``/xrpc/_health``; return ``self``."""
        if self._process is not None:
            return self
        missing = _missing_parts(self._tools_dir)
        if missing:
            raise ReferencePdsUnavailable(
                f"the reference PDS is not installed in {self._tools_dir} "
                f"(missing: {'; '.join(missing)}); {_INSTALL_HINT}"
            )
        # A port picked free can be taken before node binds it; try again on new ports.
        for attempt in range(1, 4):
            try:
                self._spawn_and_wait()
                return self
            except ReferencePdsUnavailable as exc:
                self.stop()
                if "EADDRINUSE" not in str(exc) or attempt == 3:
                    raise
                logger.info("a picked port was taken meanwhile; starting again on new ports")
            except BaseException:
                self.stop()  # never leave a half-started server behind
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _environment(self, tools_dir: Path) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_INHERITED_PREFIXES)
        }
        assert self._workdir is not None
        data = self._workdir / "data"
        (data / "blobs").mkdir(parents=True)
        env.update(
            {
                "PDS_TOOLS_DIR": str(tools_dir),
                "PDS_PORT": str(self._pds_port),
                "PLC_PORT": str(self._plc_port),
                # localhost gives http:// service URLs, did:web:localhost and *.test handles.
                "PDS_HOSTNAME": "localhost",
                # Without dev mode the PDS insists on https resource URLs.
                "PDS_DEV_MODE": "true",
                # A host name, not an IP literal: the PDS's safe fetch refuses IP hosts.
                "PDS_DID_PLC_URL": f"http://localhost:{self._plc_port}",
                "PDS_CRAWLERS": "",
                "PDS_DATA_DIRECTORY": str(data),
                "PDS_BLOBSTORE_DISK_LOCATION": str(data / "blobs"),
                "PDS_INVITE_REQUIRED": "false",
                "PDS_RATE_LIMITS_ENABLED": "true" if self._rate_limits else "false",
                # A test run killed with SIGKILL must not leave a server behind.
                "PDS_EXIT_WITH_PARENT": "true",
                "PDS_ORPHAN_CLEANUP_DIR": str(self._workdir),
                "PDS_ADMIN_PASSWORD": self.admin_password,
                "PDS_JWT_SECRET": self._jwt_secret,
                "PDS_DPOP_SECRET": secrets.token_hex(32),
                "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": secrets.token_hex(32),
                "LOG_ENABLED": "true",
                "LOG_LEVEL": "info",
            }
        )
        return env

    def _spawn_and_wait(self) -> None:
        node = _node_binary(self._tools_dir)
        launcher = _launcher(self._tools_dir)
        assert node is not None and launcher is not None
        self._workdir = Path(tempfile.mkdtemp(prefix="reference-pds-"))
        self._pds_port = _free_port()
        self._plc_port = _free_port()
        while self._plc_port == self._pds_port:
            self._plc_port = _free_port()
        env = self._environment(self._tools_dir.resolve())
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        began = time.monotonic()
        self._process = subprocess.Popen(
            [str(node), str(launcher)],
            cwd=self._workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logger.info("reference PDS starting (pid %d) on %s", self._process.pid, self.url)
        deadline = began + self._startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self._process.poll() is not None:
                    raise ReferencePdsUnavailable(
                        f"the reference PDS exited with code {self._process.returncode} "
                        f"while starting:\n{self._log_tail()}"
                    )
                if self._healthy(client):
                    break
                if time.monotonic() > deadline:
                    raise ReferencePdsUnavailable(
                        f"the reference PDS did not become healthy within "
                        f"{self._startup_timeout:.0f} s:\n{self._log_tail()}"
                    )
                time.sleep(0.05)
        self.startup_seconds = time.monotonic() - began
        self._offset = self.log_path.stat().st_size
        logger.info("reference PDS healthy after %.2f s", self.startup_seconds)

    def _healthy(self, client: httpx.Client) -> bool:
        try:
            pds = client.get(f"{self.url}/xrpc/_health")
            plc = client.get(f"{self.plc_url}/_health")
        except httpx.TransportError:
            return False
        return pds.status_code == 200 and plc.status_code == 200

    def _log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (OSError, RuntimeError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the node process (SIGKILL after 10 s) and remove its data directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                logger.warning("reference PDS (pid %d) ignored SIGTERM; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._pds_port = self._plc_port = None

    # -- accounts ------------------------------------------------------------

    def create_account(
        self, handle: str, password: str, email: str | None = None
    ) -> tuple[str, str]:
        """Create an account via ``com.atproto.server.createAccount``; return ``(did, handle)``.

        Handles end in ``.test`` (``alice.test``). The PDS requires an email;
        without one, ``<handle>@example.com`` is used.
        """
        body = {
            "handle": handle,
            "password": password,
            "email": email if email is not None else f"{handle}@example.com",
        }
        response = httpx.post(
            f"{self.url}/xrpc/com.atproto.server.createAccount", json=body, timeout=30.0
        )
        if response.status_code != 200:
            raise ReferencePdsError(
                f"createAccount for {handle!r} answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        data = response.json()
        return str(data["did"]), str(data["handle"])

    def mint_access_token(self, did: str, *, expires_in: float = -60.0) -> str:
        """An access token for ``did`` that the PDS accepts as its own, expiring as asked.

        Signed with the PDS's own secret and claims like the ones it issues, so
        a negative ``expires_in`` gives a genuinely expired token: the PDS
        answers 400 ``ExpiredToken`` without a two-hour wait.
        """
        now = int(time.time())
        claims = {
            "scope": "com.atproto.access",
            "aud": "did:web:localhost",
            "sub": did,
            "iat": now,
            "exp": int(now + expires_in),
        }
        return pyjwt.encode(claims, self._jwt_secret, algorithm="HS256", headers={"typ": "at+jwt"})

    # -- what the PDS saw ----------------------------------------------------

    def reset_counts(self) -> None:
        """Count only requests made after this call (everything logged so far is skipped)."""
        self._settle()
        self._offset = self.log_path.stat().st_size

    def requests(self) -> list[LoggedRequest]:
        """Every request the PDS answered since start or [`reset_counts`][], in log order.

        The PDS logs a request when its response is finished, which can be a
        moment after the client has it; so first a marker request is sent and
        the log is read until the marker shows, which puts every earlier
        answered request in the log. Markers and health checks are left out.
        """
        marker = self._settle()
        return [
            logged
            for logged in self._logged_requests()
            if logged.url != marker and logged.nsid != _MARKER_NSID
        ]

    def counts(self) -> Counter[str]:
        """XRPC calls per NSID that the PDS answered since start or [`reset_counts`][]."""
        return Counter(logged.nsid for logged in self.requests() if logged.nsid is not None)

    def count(self, nsid: str, *, status: int | None = None) -> int:
        """How many ``nsid`` calls the PDS answered (with ``status``, if given) lately.

        "Lately" is since start or the last [`reset_counts`][].
        """
        return sum(
            1
            for logged in self.requests()
            if logged.nsid == nsid and (status is None or logged.status == status)
        )

    def _settle(self, timeout: float = 10.0) -> str:
        self._marker_serial += 1
        marker = f"{_XRPC_PREFIX}{_MARKER_NSID}?marker={self._marker_serial}-{secrets.token_hex(4)}"
        httpx.get(f"{self.url}{marker}", timeout=timeout)
        deadline = time.monotonic() + timeout
        while all(logged.url != marker for logged in self._logged_requests()):
            if time.monotonic() > deadline:
                raise ReferencePdsError(
                    f"the PDS request log ({self.log_path}) never showed the marker request; "
                    "is LOG_ENABLED honoured?"
                )
            time.sleep(0.02)
        return marker

    def _logged_requests(self) -> list[LoggedRequest]:
        found = []
        with open(self.log_path, "rb") as log:
            log.seek(self._offset)
            for raw in log:
                if not raw.endswith(b"\n"):
                    break  # a line still being written; the next read sees it whole
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # node warnings and other plain lines share the file
                if isinstance(record, dict):
                    logged = _logged_request(record)
                    if logged is not None:
                        found.append(logged)
        return found
