"""ATProto OAuth: sign-in (PAR, PKCE, DPoP), token refresh and revocation, the
OAuth session kind and its managers."""
