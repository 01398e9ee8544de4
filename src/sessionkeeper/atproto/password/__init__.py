"""App-password sessions: their kind, their login/refresh/logout flows and the managers."""
