"""``sessionkeeper atproto``: login, sessions, whoami, logout."""
