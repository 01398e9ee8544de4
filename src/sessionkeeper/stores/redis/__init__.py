"""RedisStore and its parts: URL parsing, connecting (standalone, Cluster, Sentinel),
key layout and the fenced lock."""
