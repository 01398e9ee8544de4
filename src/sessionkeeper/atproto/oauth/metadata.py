"""Protected-resource and authorization-server metadata of ATProto OAuth, validated.

A PDS names its one authorization server in
``/.well-known/oauth-protected-resource``; that server describes itself in
``/.well-known/oauth-authorization-server``. Each document is checked as the
ATProto profile requires before anything is sent to the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessionkeeper.atproto.errors import OAuthResolutionError
from sessionkeeper.atproto.oauth.discovery import fetch_json
from sessionkeeper.core.flow import Flow
from sessionkeeper.redaction import origin


@dataclass(frozen=True, slots=True)
class AuthServerMetadata:
    """The endpoints and capabilities of an authorization server, checked."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    pushed_authorization_request_endpoint: str
    revocation_endpoint: str | None
    auth_methods: tuple[str, ...]
    scopes: tuple[str, ...]

    @classmethod
    def parse(cls, body: dict[str, Any], *, issuer: str) -> AuthServerMetadata:
        """Validate ``body`` as the metadata of ``issuer``; each refusal names its field."""
        where = f"authorization server metadata of {issuer}"

        def need(condition: bool, problem: str) -> None:
            if not condition:
                raise OAuthResolutionError(f"{where}: {problem}")

        need(body.get("issuer") == issuer, f"issuer is {body.get('issuer')!r}, not {issuer!r}")
        need(
            body.get("client_id_metadata_document_supported") is True,
            "client_id_metadata_document_supported is not true",
        )
        methods = body.get("code_challenge_methods_supported")
        need(isinstance(methods, list) and "S256" in methods, "PKCE S256 is not supported")
        algs = body.get("dpop_signing_alg_values_supported")
        need(isinstance(algs, list) and "ES256" in algs, "DPoP with ES256 is not supported")
        scopes = body.get("scopes_supported")
        need(isinstance(scopes, list) and "atproto" in scopes, "the atproto scope is missing")
        endpoints: dict[str, str | None] = {}
        for key in (
            "authorization_endpoint",
            "token_endpoint",
            "pushed_authorization_request_endpoint",
            "revocation_endpoint",
        ):
            value = body.get(key)
            if value is None and key == "revocation_endpoint":
                endpoints[key] = None
                continue
            need(isinstance(value, str) and value.startswith(("https://", "http://")), f"{key}")
            assert isinstance(value, str)
            need(
                origin(value) == issuer or key == "authorization_endpoint",
                f"{key} {value} is not on the issuer's origin",
            )
            endpoints[key] = value
        auth_methods = body.get("token_endpoint_auth_methods_supported")
        return cls(
            issuer=issuer,
            authorization_endpoint=str(endpoints["authorization_endpoint"]),
            token_endpoint=str(endpoints["token_endpoint"]),
            pushed_authorization_request_endpoint=str(
                endpoints["pushed_authorization_request_endpoint"]
            ),
            revocation_endpoint=endpoints["revocation_endpoint"],
            auth_methods=tuple(str(m) for m in auth_methods)
            if isinstance(auth_methods, list)
            else ("none",),
            scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else (),
        )


def fetch_issuer_of(pds_url: str) -> Flow[str]:
    """The one authorization server a PDS names in its protected-resource metadata."""
    pds = origin(pds_url)
    body = yield from fetch_json(
        f"{pds}/.well-known/oauth-protected-resource", f"protected resource metadata of {pds}"
    )
    where = f"protected resource metadata of {pds}"
    if body.get("resource") != pds:
        raise OAuthResolutionError(f"{where}: resource is {body.get('resource')!r}, not {pds!r}")
    servers = body.get("authorization_servers")
    if not isinstance(servers, list) or len(servers) != 1 or not isinstance(servers[0], str):
        raise OAuthResolutionError(f"{where}: expected exactly one authorization server")
    issuer = servers[0]
    if origin(issuer) != issuer:
        raise OAuthResolutionError(f"{where}: authorization server {issuer!r} is not an origin")
    return issuer


def fetch_auth_server(issuer: str) -> Flow[AuthServerMetadata]:
    """The validated metadata of ``issuer``."""
    body = yield from fetch_json(
        f"{issuer}/.well-known/oauth-authorization-server",
        f"authorization server metadata of {issuer}",
    )
    return AuthServerMetadata.parse(body, issuer=issuer)
