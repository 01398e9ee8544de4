"""Store maintenance over every protocol's sessions: the formats registry, doctor,
migrate and prune."""
