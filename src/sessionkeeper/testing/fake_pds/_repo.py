"""In-memory repository records, addressed like the reference's (TID keys, CIDv1)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

_SORTABLE_BASE32 = "234567abcdefghijklmnopqrstuvwxyz"


def _sortable_base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_SORTABLE_BASE32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _cid_string(codec: int, data: bytes) -> str:
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


def blob_cid(data: bytes) -> str:
    """A CIDv1 string (raw codec, sha-256) of blob bytes, as the reference computes it."""
    return _cid_string(0x55, data)


def record_cid(record: dict[str, Any]) -> str:
    """A CIDv1 string (dag-cbor codec, sha-256) over the record's canonical JSON.

    The digest is not the reference's (that hashes DAG-CBOR), but the string has
    the same shape, changes with the content and is stable for equal records.
    """
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return _cid_string(0x71, canonical)


@dataclass(frozen=True)
class StoredRecord:
    """One record as listRecords returns it."""

    uri: str
    cid: str
    rkey: str
    value: dict[str, Any]
    rev: str
    commit_cid: str

    def view(self) -> dict[str, Any]:
        """The ``{uri, cid, value}`` object of a listRecords answer."""
        return {"uri": self.uri, "cid": self.cid, "value": self.value}


class RecordStore:
    """Records per (DID, collection), keyed by record key.

    Not thread-safe by itself: the fake calls it under its state lock.
    """

    def __init__(self) -> None:
        self._collections: dict[tuple[str, str], dict[str, StoredRecord]] = {}
        self._last_tid_micros = 0
        self._clock_id = secrets.randbelow(1024)

    def next_tid(self, now: float) -> str:
        """A timestamp identifier: 53 bits of microseconds and 10 bits of clock id.

        Strictly increasing even when the clock stands still (a ManualClock).
        """
        micros = max(int(now * 1_000_000), self._last_tid_micros + 1)
        self._last_tid_micros = micros
        return _sortable_base32((micros << 10) | self._clock_id, 13)

    def create(
        self, did: str, collection: str, record: dict[str, Any], *, rkey: str | None, now: float
    ) -> StoredRecord | None:
        """Store ``record``; ``None`` when ``rkey`` is already taken."""
        records = self._collections.setdefault((did, collection), {})
        key = rkey or self.next_tid(now)
        if key in records:
            return None
        uri = f"at://{did}/{collection}/{key}"
        cid = record_cid(record)
        rev = self.next_tid(now)
        stored = StoredRecord(
            uri=uri,
            cid=cid,
            rkey=key,
            value=record,
            rev=rev,
            commit_cid=record_cid({"did": did, "rev": rev, "data": cid}),
        )
        records[key] = stored
        return stored

    def get(self, did: str, collection: str, rkey: str) -> StoredRecord | None:
        """The record at ``collection/rkey`` of ``did``, if there is one."""
        return self._collections.get((did, collection), {}).get(rkey)

    def delete(self, did: str, collection: str, rkey: str) -> bool:
        """Remove the record at ``collection/rkey`` of ``did``; whether it existed."""
        return self._collections.get((did, collection), {}).pop(rkey, None) is not None

    def count(self, did: str, collection: str) -> int:
        """How many records ``did`` holds in ``collection``."""
        return len(self._collections.get((did, collection), {}))

    def list(
        self, did: str, collection: str, *, limit: int, cursor: str | None, reverse: bool
    ) -> tuple[list[StoredRecord], str | None]:
        """A page of records, newest key first unless ``reverse``, and the next cursor.

        Like the reference, the cursor is the last record's key whenever the page
        is not empty (an empty page ends the listing).
        """
        records = self._collections.get((did, collection), {})
        keys = sorted(records, reverse=not reverse)
        if cursor is not None:
            keys = [k for k in keys if (k > cursor if reverse else k < cursor)]
        page = [records[k] for k in keys[:limit]]
        next_cursor = page[-1].rkey if page else None
        return page, next_cursor
