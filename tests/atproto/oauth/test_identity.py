"""Identity resolution and metadata validation, decided without a network (sans-I/O flows)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Generator
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import OAuthResolutionError
from sessionkeeper.atproto.identity import IdentityResolver, did_document_url
from sessionkeeper.atproto.oauth.discovery import TxtQuery
from sessionkeeper.atproto.oauth.metadata import AuthServerMetadata, fetch_issuer_of
from sessionkeeper.atproto.oauth.pkce import s256_challenge
from sessionkeeper.core.flow import Call, NetworkFailure, Send

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
PDS = "https://pds.example.com"


def document(did: str = DID, handle: str = "alice.example.com") -> dict[str, Any]:
    return {
        "id": did,
        "alsoKnownAs": [f"at://{handle}"],
        "service": [
            {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": PDS}
        ],
    }


def run(flow: Generator[Any, Any, Any], answers: dict[str, Any]) -> tuple[Any, list[str]]:
    """Drive ``flow``, answering each step from ``answers`` (a URL or DNS name -> reply)."""
    asked: list[str] = []
    reply: Any = None
    while True:
        try:
            step = flow.send(reply)
        except StopIteration as done:
            return done.value, asked
        if isinstance(step, Call):
            assert isinstance(step.function, TxtQuery)
            asked.append(step.function.name)
            reply = answers.get(step.function.name, [])
            continue
        assert isinstance(step, Send)
        asked.append(step.url)
        answer = answers.get(step.url)
        request = httpx.Request(step.method, step.url)
        if isinstance(answer, NetworkFailure):
            reply = answer
        elif answer is None:
            reply = httpx.Response(404, request=request)
        elif isinstance(answer, str):
            reply = httpx.Response(200, text=answer, request=request)
        else:
            reply = httpx.Response(200, content=json.dumps(answer).encode(), request=request)


PLC = f"https://plc.directory/{DID}"


def test_a_handle_resolves_by_dns_txt_first() -> None:
    answers = {"_atproto.alice.example.com": [f"did={DID}"], PLC: document()}
    identity, asked = run(IdentityResolver().resolve("@Alice.Example.com"), answers)
    assert (identity.did, identity.handle, identity.pds_url) == (DID, "alice.example.com", PDS)
    assert asked == ["_atproto.alice.example.com", PLC]


def test_a_handle_without_txt_resolves_by_https_well_known() -> None:
    well_known = "https://alice.example.com/.well-known/atproto-did"
    answers = {
        "_atproto.alice.example.com": [],
        well_known: f"{DID}\n",
        PLC: document(),
    }
    identity, asked = run(IdentityResolver().resolve("alice.example.com"), answers)
    assert identity.did == DID and asked == ["_atproto.alice.example.com", well_known, PLC]


def test_an_unreachable_well_known_names_the_handle() -> None:
    well_known = "https://alice.example.com/.well-known/atproto-did"
    with pytest.raises(OAuthResolutionError, match=r"alice\.example\.com.*unreachable"):
        run(IdentityResolver().resolve("alice.example.com"), {well_known: NetworkFailure("reset")})


def test_a_directory_that_does_not_answer_is_unavailable_not_an_unknown_account() -> None:
    plc = did_document_url(DID, "https://plc.directory")
    with pytest.raises(OAuthResolutionError, match="unreachable") as raised:
        run(IdentityResolver().resolve(DID), {plc: NetworkFailure("refused")})
    assert raised.value.unavailable  # worth trying again: nothing is known of the account
    with pytest.raises(OAuthResolutionError, match="HTTP 404") as missing:
        run(IdentityResolver().resolve(DID), {})
    assert not missing.value.unavailable


def test_conflicting_txt_records_are_not_trusted() -> None:
    answers = {"_atproto.alice.example.com": [f"did={DID}", "did=did:plc:other"]}
    with pytest.raises(OAuthResolutionError, match="no _atproto TXT record"):
        run(IdentityResolver().resolve("alice.example.com"), answers)


def test_a_document_that_does_not_claim_the_handle_is_refused() -> None:
    answers = {"_atproto.alice.example.com": [f"did={DID}"], PLC: document(handle="mallory.com")}
    with pytest.raises(OAuthResolutionError, match="does not claim it"):
        run(IdentityResolver().resolve("alice.example.com"), answers)


def test_a_document_without_a_pds_is_refused() -> None:
    answers = {PLC: {"id": DID, "alsoKnownAs": [], "service": []}}
    with pytest.raises(OAuthResolutionError, match="#atproto_pds"):
        run(IdentityResolver().resolve(DID), answers)


def test_a_did_whose_handle_does_not_point_back_has_no_handle() -> None:
    answers = {PLC: document(), "_atproto.alice.example.com": ["did=did:plc:someoneelse"]}
    identity, _ = run(IdentityResolver().resolve(DID), answers)
    assert identity.did == DID and identity.handle is None


def test_the_resolver_service_is_asked_when_configured() -> None:
    url = (
        "https://resolver.example/xrpc/com.atproto.identity.resolveHandle?handle=alice.example.com"
    )
    answers = {url: {"did": DID}, PLC: document()}
    identity, asked = run(
        IdentityResolver("https://resolver.example").resolve("alice.example.com"), answers
    )
    assert identity.did == DID and asked[0] == url


def test_did_web_documents_live_on_their_host() -> None:
    assert (
        did_document_url("did:web:example.com", "x") == "https://example.com/.well-known/did.json"
    )
    assert (
        did_document_url("did:web:localhost%3A2583", "x")
        == "http://localhost:2583/.well-known/did.json"
    )
    with pytest.raises(OAuthResolutionError, match="path"):
        did_document_url("did:web:example.com:user:alice", "x")
    with pytest.raises(OAuthResolutionError, match="did:plc and did:web"):
        did_document_url("did:key:zabc", "x")


def test_protected_resource_must_name_itself_and_one_server() -> None:
    url = f"{PDS}/.well-known/oauth-protected-resource"
    issuer, _ = run(
        fetch_issuer_of(PDS),
        {url: {"resource": PDS, "authorization_servers": ["https://as.example"]}},
    )
    assert issuer == "https://as.example"
    with pytest.raises(OAuthResolutionError, match="resource is"):
        run(
            fetch_issuer_of(PDS),
            {url: {"resource": "https://other", "authorization_servers": ["https://as.example"]}},
        )
    with pytest.raises(OAuthResolutionError, match="exactly one"):
        run(
            fetch_issuer_of(PDS),
            {url: {"resource": PDS, "authorization_servers": ["https://a", "https://b"]}},
        )


def server_metadata(issuer: str = "https://as.example", **changes: Any) -> dict[str, Any]:
    body = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "pushed_authorization_request_endpoint": f"{issuer}/oauth/par",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "scopes_supported": ["atproto", "transition:generic"],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "client_id_metadata_document_supported": True,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"issuer": "https://evil.example"}, "issuer is"),
        ({"client_id_metadata_document_supported": False}, "client_id_metadata"),
        ({"code_challenge_methods_supported": ["plain"]}, "S256"),
        ({"dpop_signing_alg_values_supported": ["RS256"]}, "DPoP"),
        ({"scopes_supported": ["openid"]}, "atproto scope"),
        ({"token_endpoint": "https://elsewhere.example/token"}, "not on the issuer"),
    ],
)
def test_authorization_server_metadata_is_checked(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(OAuthResolutionError, match=problem):
        AuthServerMetadata.parse(server_metadata(**changes), issuer="https://as.example")


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_importing_the_atproto_package_leaves_dnspython_for_the_first_txt_lookup() -> None:
    probe = "import sys, sessionkeeper.atproto; print('dns' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
