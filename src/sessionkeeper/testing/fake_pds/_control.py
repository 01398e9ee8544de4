"""The fake's control endpoints under ``/__fake__/`` (not XRPC, never counted)."""

from __future__ import annotations

from typing import Literal, Protocol, cast

from sessionkeeper.clock import Clock, ManualClock
from sessionkeeper.testing.fake_pds._errors import XrpcError, invalid_request
from sessionkeeper.testing.fake_pds._http import HttpRequest, HttpResponse, json_response
from sessionkeeper.testing.fake_pds._inputs import float_param, require_param

CONTROL_PREFIX = "/__fake__/"
FaultMode = Literal["500", "502", "drop", "429"]
"""The faults `FakePds.set_fault` can inject."""

FAULT_MODES: frozenset[str] = frozenset({"500", "502", "drop", "429"})


class ControlledFake(Protocol):
    """What the control endpoints drive: the fake's public test API (FakePds has it)."""

    clock: Clock
    latency: float

    def counters(self) -> dict[str, dict[str, int]]:
        """Both counters."""

    def reset_counts(self) -> None:
        """Forget every recorded call."""

    def takedown(self, did: str) -> None:
        """Take an account down."""

    def revoke_all(self, did: str) -> None:
        """Revoke an account's refresh tokens."""

    def create_account(
        self, handle: str, password: str, *, email: str | None = None, did: str | None = None
    ) -> str:
        """Add an account; return its DID."""

    def set_fault(
        self, mode: FaultMode | None, *, count: int | None = None, nsids: set[str] | None = None
    ) -> None:
        """Inject or clear a fault."""


def handle_control(fake: ControlledFake, request: HttpRequest) -> HttpResponse:
    """Answer a ``/__fake__/`` request: counters, faults, takedown, clock, accounts."""
    action = request.path[len(CONTROL_PREFIX) :]
    if action == "counts":
        _control_method(request, "GET")
        return json_response(200, fake.counters())
    _control_method(request, "POST")
    if action == "reset-counts":
        fake.reset_counts()
        return json_response(200, {"ok": True})
    if action == "fault":
        return _control_fault(fake, request)
    if action in ("takedown", "revoke-all"):
        did = require_param(request, "did")
        try:
            (fake.takedown if action == "takedown" else fake.revoke_all)(did)
        except KeyError:
            raise invalid_request(f"no account with DID {did}") from None
        return json_response(200, {"ok": True})
    if action == "advance":
        seconds = float_param(request, "seconds")
        if not isinstance(fake.clock, ManualClock):
            raise invalid_request("the fake's clock is not a ManualClock")
        fake.clock.advance(seconds)
        return json_response(200, {"now": fake.clock.time()})
    if action == "latency":
        fake.latency = float_param(request, "seconds")
        return json_response(200, {"latency": fake.latency})
    if action == "accounts":
        try:
            did = fake.create_account(
                require_param(request, "handle"),
                require_param(request, "password"),
                email=request.param("email"),
                did=request.param("did"),
            )
        except ValueError as exc:
            raise invalid_request(str(exc)) from None
        return json_response(200, {"did": did})
    raise XrpcError(404, "NotFound", f"no control endpoint {action!r}")


def _control_fault(fake: ControlledFake, request: HttpRequest) -> HttpResponse:
    mode = require_param(request, "mode")
    raw_count = request.param("count")
    raw_nsids = request.param("nsids")
    count = int(raw_count) if raw_count and raw_count.isdigit() else None
    if raw_count and count is None:
        raise invalid_request("count must be a positive integer")
    nsids = {n for n in raw_nsids.split(",") if n} if raw_nsids else None
    try:
        if mode in ("none", "clear", ""):
            fake.set_fault(None)
        elif mode in FAULT_MODES:
            fake.set_fault(cast(FaultMode, mode), count=count, nsids=nsids)
        else:
            raise ValueError(f"unknown fault mode {mode!r}")
    except ValueError as exc:
        raise invalid_request(str(exc)) from None
    return json_response(200, {"mode": mode, "count": count})


def _control_method(request: HttpRequest, expected: str) -> None:
    if request.method != expected:
        raise XrpcError(405, "MethodNotAllowed", f"use {expected} for this control endpoint")
