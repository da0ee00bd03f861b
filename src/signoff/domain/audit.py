"""The audit log's hash chain.

Each entry's hash covers its own content and the previous entry's hash, so editing or deleting
any row breaks every link after it; the store keeps the chain's head (last sequence number and
hash) in a row of its own, which catches deletion of the newest entries too. Sequence numbers
are assigned under that head's lock, so they have no gaps.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    client_addr: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold."""

    seq: int
    reason: str


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def hashed_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "request_id": entry.request_id,
        "client_addr": entry.client_addr,
    }


class ChainChecker:
    """Feeds entries in sequence order; remembers the first break."""

    def __init__(self) -> None:
        self.expected_seq = 1
        self.prev_hash = GENESIS
        self.checked = 0
        self.first_break: Break | None = None

    def feed(self, entry: AuditEntry) -> None:
        self.checked += 1
        if self.first_break is None:
            self.first_break = self._break_at(entry)
        self.expected_seq = entry.seq + 1
        self.prev_hash = entry.hash

    def finish(self, head_seq: int, head_hash: str) -> Break | None:
        if self.first_break is None and (head_seq, head_hash) != (
            self.expected_seq - 1,
            self.prev_hash,
        ):
            self.first_break = Break(
                self.expected_seq,
                f"the chain ends at entry {self.expected_seq - 1} but its head says {head_seq}: "
                "entries were removed from the end",
            )
        return self.first_break

    def _break_at(self, entry: AuditEntry) -> Break | None:
        if entry.seq != self.expected_seq:
            return Break(self.expected_seq, f"entry {self.expected_seq} is missing")
        if entry.prev_hash != self.prev_hash:
            return Break(entry.seq, "its link to the previous entry does not match")
        if entry_hash(entry.prev_hash, hashed_fields(entry)) != entry.hash:
            return Break(entry.seq, "its content does not match its hash (edited)")
        return None
