"""The one engine both protocols run on: sans-I/O flows and their two drivers, the
single-flight refresh, the call loop and the in-memory session state."""
