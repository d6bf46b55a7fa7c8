"""Who wrote an output object, and what it read first: S3 user metadata that loss forensics reads.

A lost update leaves no log line of its own: writer B read version 3, writer A wrote version
4, B wrote version 5 from what it read, and A's rows are gone. With the writer's invocation
request id, the version it read and its size stamped on every version it writes, the bucket's
own version history proves which writer dropped which rows, without the log groups
(:mod:`ops.forensics`). The stamp costs no API call: it travels in the ``PutObject`` itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

WRITER = "cidb-writer"  # the writing invocation's request id
READ_VERSION = "cidb-read-version"  # the version id the writer read and appended to ("none": nothing to read)
READ_BYTES = "cidb-read-bytes"  # how many bytes it read: the new version's first READ_BYTES bytes are that read
READ_AT = "cidb-read-at"  # when the read was sent, epoch milliseconds, the writer's clock
WRITE_AT = "cidb-write-at"  # when the write was sent, epoch milliseconds, the writer's clock
NOTHING_READ = "none"


@dataclass(frozen=True)
class WriterStamp:
    writer: str
    read_version: str | None = None
    read_bytes: int | None = None
    read_at_ms: int | None = None
    write_at_ms: int | None = None

    def to_metadata(self) -> dict[str, str]:
        fields = {
            WRITER: self.writer,
            READ_VERSION: self.read_version,
            READ_BYTES: self.read_bytes,
            READ_AT: self.read_at_ms,
            WRITE_AT: self.write_at_ms,
        }
        return {name: str(value) for name, value in fields.items() if value is not None and value != ""}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> WriterStamp | None:
        """The stamp of a version, or None for one written without it (by an older reporter, or by hand)."""
        if WRITER not in metadata:
            return None
        return cls(
            writer=metadata[WRITER],
            read_version=metadata.get(READ_VERSION),
            read_bytes=_int(metadata.get(READ_BYTES)),
            read_at_ms=_int(metadata.get(READ_AT)),
            write_at_ms=_int(metadata.get(WRITE_AT)),
        )


def now_ms() -> int:
    return int(time.time() * 1000)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
