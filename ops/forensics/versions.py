"""Which write dropped a record: the output objects' S3 version history, read back.

The bucket is versioned, so every overwrite leaves the version it replaced. A seed-mode
writer stamps each version with the version it read and that read's size
(:mod:`pipeline.writer_metadata`): a version is then the version it read plus the rows after
that many bytes, so one ranged GET per version gives its new rows, and the versions' record
sets follow from their lineage without reading any version whole. A version without a stamp
(a fenced part, or an object written by hand) is read whole.

A record was overwritten when a version held it and a later version of the same object does
not: the later writer had read a version from before the record was appended.
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ops.forensics.causes import WriterCycle
from pipeline.record import CSV_COLUMNS
from pipeline.writer_metadata import NOTHING_READ, WriterStamp

READERS = 8


@dataclass
class ObjectVersion:
    object_key: str
    version_id: str
    last_modified: datetime
    size: int
    stamp: WriterStamp | None = None
    new_keys: list[str] = field(default_factory=list)  # rows this version added to what its writer read
    keys: frozenset[str] = frozenset()

    @property
    def writer(self) -> str | None:
        return self.stamp.writer if self.stamp else None

    def describe(self) -> dict[str, Any]:
        stamp = self.stamp
        return {
            "version_id": self.version_id,
            "time": self.last_modified.isoformat(),
            "writer": stamp.writer if stamp else None,
            "read_version": stamp.read_version if stamp else None,
            "read_at_ms": stamp.read_at_ms if stamp else None,
            "write_at_ms": stamp.write_at_ms if stamp else None,
        }


@dataclass
class Overwrite:
    object_key: str
    held_in: ObjectVersion
    dropped_by: ObjectVersion


@dataclass
class VersionHistory:
    objects: dict[str, list[ObjectVersion]]  # oldest first

    @property
    def versions(self) -> int:
        return sum(len(v) for v in self.objects.values())

    def overwrites(self, keys: set[str]) -> dict[str, Overwrite]:
        """For each key a version held and a later one dropped: the first such pair."""
        found: dict[str, Overwrite] = {}
        for object_key, versions in self.objects.items():
            for i, version in enumerate(versions):
                for key in keys.intersection(version.keys).difference(found):
                    later = next((v for v in versions[i + 1 :] if key not in v.keys), None)
                    if later is not None:
                        found[key] = Overwrite(object_key, version, later)
        return found

    def writer_cycles(self, overwrites: dict[str, Overwrite]) -> list[WriterCycle]:
        """Every stamped write of an object that lost rows, with what it dropped and what it lost."""
        lost_by_version: dict[str, int] = {}
        for hit in overwrites.values():
            lost_by_version[hit.held_in.version_id] = lost_by_version.get(hit.held_in.version_id, 0) + 1
        cycles = []
        for object_key in sorted({hit.object_key for hit in overwrites.values()}):
            versions = self.objects[object_key]
            for i, version in enumerate(versions):
                if version.stamp is None:
                    continue
                removed = (versions[i - 1].keys - version.keys) if i else frozenset()
                dropped = tuple(e.version_id for e in versions[:i] if removed.intersection(e.new_keys))
                cycles.append(
                    WriterCycle(
                        writer=version.stamp.writer,
                        object_key=object_key,
                        version_id=version.version_id,
                        read_version=version.stamp.read_version,
                        read_at_ms=version.stamp.read_at_ms,
                        write_at_ms=version.stamp.write_at_ms,
                        rows_appended=len(version.new_keys),
                        dropped_versions=dropped,
                        rows_lost=lost_by_version.get(version.version_id, 0),
                    )
                )
        return cycles


def load_history(s3: Any, bucket: str, prefix: str) -> VersionHistory:
    """Every version of every CSV under ``prefix``, with the record keys each one holds."""
    objects: dict[str, list[ObjectVersion]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Versions", []):
            if item["Key"].endswith(".csv"):
                # S3 lists a key's versions newest first.
                objects.setdefault(item["Key"], []).insert(
                    0, ObjectVersion(item["Key"], item["VersionId"], item["LastModified"], int(item["Size"]))
                )
    every = [v for versions in objects.values() for v in versions]
    with ThreadPoolExecutor(READERS) as pool:
        list(pool.map(lambda v: _read_stamp(s3, bucket, v), every))
        by_id = {v.version_id: v for v in every}
        list(pool.map(lambda v: _read_new_rows(s3, bucket, v, by_id), every))
    for versions in objects.values():
        _compose(versions)
    return VersionHistory(objects)


def _read_stamp(s3: Any, bucket: str, version: ObjectVersion) -> None:
    head = s3.head_object(Bucket=bucket, Key=version.object_key, VersionId=version.version_id)
    version.stamp = WriterStamp.from_metadata(head.get("Metadata", {}))


def _base(version: ObjectVersion, by_id: dict[str, ObjectVersion]) -> str | None:
    """The version this one was appended to: "" for none, None if unknown (then it is read whole)."""
    stamp = version.stamp
    if stamp is None or stamp.read_bytes is None or stamp.read_version is None:
        return None
    if stamp.read_version == NOTHING_READ:
        return ""
    base = by_id.get(stamp.read_version)
    return stamp.read_version if base is not None and base.object_key == version.object_key else None


def _read_new_rows(s3: Any, bucket: str, version: ObjectVersion, by_id: dict[str, ObjectVersion]) -> None:
    base = _base(version, by_id)
    start = version.stamp.read_bytes if base is not None and version.stamp and version.stamp.read_bytes else 0
    if start >= version.size:
        return
    request = {"Bucket": bucket, "Key": version.object_key, "VersionId": version.version_id}
    if start:
        request["Range"] = f"bytes={start}-"
    version.new_keys = _row_keys(s3.get_object(**request)["Body"].read().decode())


def _row_keys(text: str) -> list[str]:
    """Record keys of CSV rows; a header row, where the text starts at one, is skipped."""
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and tuple(row) != CSV_COLUMNS]


def _compose(versions: list[ObjectVersion]) -> None:
    """Each version's record set: the set of the version it read, plus its new rows."""
    by_id = {v.version_id: v for v in versions}
    for version in versions:
        base = _base(version, by_id)
        inherited = by_id[base].keys if base else frozenset()
        version.keys = inherited | frozenset(version.new_keys)
