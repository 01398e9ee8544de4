"""System update (platform/init) of the fake HAC: data, pending patches, a growing log."""

from __future__ import annotations

import logging
import threading
from html import escape
from typing import Any

logger = logging.getLogger(__name__)

PROJECT_DATAS: list[dict[str, Any]] = [
    {
        "name": "cchpatches",
        "description": "Patches of the CCH project",
        "parameter": [
            {
                "name": "cchpatches_Patch_MVP",
                "label": "Patch MVP",
                "values": {"yes": True, "no": False},
                "multiSelect": False,
                "default": "no",
                "legacy": False,
            },
            {
                "name": "cchpatches_Patch_Release2",
                "label": "Patch Release 2",
                "values": {"yes": True, "no": False},
                "multiSelect": False,
                "default": "yes",
                "legacy": False,
            },
        ],
    },
    {
        "name": "electronicsstore",
        "description": "Sample data of the Electronics store",
        "parameter": [
            {
                "name": "electronicsstore_importCoreData",
                "label": "Import Core Data",
                "values": {"yes": True, "no": False},
                "multiSelect": False,
                "default": "yes",
                "legacy": False,
            }
        ],
    },
    {"name": "solrfacetsearch", "description": "Solr facet search", "parameter": []},
]

PENDING_PATCHES: dict[str, list[dict[str, Any]]] = {
    "validation": [
        {
            "hash": "6f1ed002ab5595859014ebf0951522d9",
            "name": "Validation constraints",
            "description": "Reload the validation engine constraints",
            "required": True,
            "process": True,
        }
    ],
    "cchpatches": [
        {
            "hash": "0b2c5b7e1f4d4a7c9e8d3f6a1b2c3d4e",
            "name": "Patch_MVP",
            "description": "MVP data patch",
            "required": False,
            "process": False,
        }
    ],
}

_UPDATE_STEPS = [
    "Starting system update",
    "Updating the type system (schema)",
    "Creating essential data",
    "Running patches",
    "Update finished",
]


class InitLog:
    """The platform init log; an update appends its lines from a timer thread."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._guard = threading.Lock()
        self._running = False
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_initializing(self) -> bool:
        """True while an update is appending lines."""
        with self._guard:
            return self._running

    def html(self) -> str:
        """The log as HAC renders it: lines joined by ``<br/>``."""
        with self._guard:
            return "".join(f"{escape(line)}<br/>" for line in self._lines)

    def append(self, line: str) -> None:
        """Add one line."""
        with self._guard:
            self._lines.append(line)

    def start(self, request: dict[str, Any], step: float) -> bool:
        """Begin an update from ``request``; False when one is already running.

        With ``initMethod`` null HAC skips the schema step silently; the log says so.
        """
        with self._guard:
            if self._running:
                return False
            self._lines = []
            self._running = True
        self._stopped.clear()
        init_method = request.get("initMethod")
        if init_method is None:
            self.append("initMethod is null: the schema update (DDL) was skipped")
            steps = [s for s in _UPDATE_STEPS if "schema" not in s]
        else:
            steps = list(_UPDATE_STEPS)
        patches = request.get("patches") or {}
        if isinstance(patches, dict) and patches:
            self.append("Patches requested: " + ", ".join(sorted(str(k) for k in patches)))
        self.append(steps[0])
        self._thread = threading.Thread(
            target=self._run, args=(steps[1:], step), name="FakeHacUpdate", daemon=True
        )
        self._thread.start()
        return True

    def _run(self, steps: list[str], step: float) -> None:
        for line in steps:
            if self._stopped.wait(step):
                break
            self.append(line)
        with self._guard:
            self._running = False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running update to finish; True when none is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def stop(self) -> None:
        """End a running update early (server shutdown)."""
        self._stopped.set()
        self.wait(5)
