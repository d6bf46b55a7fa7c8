"""CSV part files in S3 with fenced, exactly-once appends.

Layout per (account, run): ``policies-partNNNNN.csv`` files of at most ``rows_per_file``
rows, each with a header, plus ``_index.json`` caching which record keys each part holds.

Why it is safe without trusting the lock:

- The part files are the truth and the commit point. Every part write is conditional:
  ``IfMatch`` on the ETag that was read, or ``IfNoneMatch="*"`` for a new part. A writer
  whose view is stale gets ``412 PreconditionFailed``, re-reads and retries.
- The index is only a cache. Each write lists the parts and re-reads any part whose ETag
  differs from the index, so a crash between a part write and the index write (or an
  index write lost to a race) heals on the next write.
- Rows are deduplicated on the record key, so redelivery after a crash, or a duplicate
  SNS/SQS delivery, never produces a second row.

:class:`SeedCsvStore` keeps the seed's unsafe behaviour (read, append, blind overwrite of a
single CSV) so the load test can show what it loses under concurrency.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import error_code
from pipeline.layout import index_key, part_key, report_prefix, seed_csv_key
from pipeline.lock import CONFLICT_CODES, MISSING_CODES
from pipeline.record import CSV_COLUMNS, PolicyRecord, key_digest
from pipeline.writer_metadata import NOTHING_READ, WriterStamp, now_ms

INDEX_VERSION = 1
MAX_WRITE_ATTEMPTS = 5
# Policy documents reach 135 KB (and offloaded ones are larger); the csv module's default
# field limit of 128 KiB would make such a part unreadable for every later writer.
csv.field_size_limit(2**31 - 1)


class WriteConflictError(RuntimeError):
    """Conditional part writes kept losing to other writers; the segments wait for the next compaction."""


@dataclass(frozen=True)
class CsvRow:
    """A row read back from a CSV (a segment), written on as it is."""

    row: dict[str, str]

    @property
    def key(self) -> str:
        return self.row["record_key"]

    def to_row(self) -> dict[str, str]:
        return self.row


def csv_rows(text: str) -> list[CsvRow]:
    return [CsvRow(row) for row in csv.DictReader(io.StringIO(text))]


@dataclass
class WriteResult:
    written: int = 0
    duplicates: int = 0
    conflicts: int = 0
    write_ms: list[float] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    index_error: str | None = None  # the index is a cache: a failed index write is reported, not raised
    present: set[str] = field(default_factory=set)  # digests of every record in the parts after the write


@dataclass
class _Part:
    number: int
    key: str
    etag: str | None
    rows: int
    digests: set[str]
    text: str | None = None


def rows_to_csv(rows: list[dict[str, str]], *, header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def csv_record_keys(text: str) -> list[str]:
    return [row["record_key"] for row in csv.DictReader(io.StringIO(text))]


class FencedCsvStore:
    """Append records to a run's part files; call it while holding the run's S3 lock."""

    def __init__(
        self, s3: Any, bucket: str, account_id: str, run_id: str, rows_per_file: int, *, writer: str = ""
    ) -> None:
        self.s3, self.bucket, self.rows_per_file, self.writer = s3, bucket, rows_per_file, writer
        self.account_id, self.run_id = account_id, run_id
        self.index_key = index_key(account_id, run_id)

    @property
    def lock_target(self) -> str:
        return self.index_key

    def write(self, records: list[PolicyRecord] | list[CsvRow], *, complete_parts_only: bool = False) -> WriteResult:
        """Append the records not yet in the parts.

        With ``complete_parts_only`` only as many records are written as fill the last part and
        then whole parts; the rest waits (in its segments) for more, or for the run's final flush,
        so that a part is written about once instead of once per batch.
        """
        result = WriteResult()
        committed: set[str] = set()
        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                self._write_once(records, result, committed, complete_parts_only)
                result.written, result.duplicates = len(committed), len(records) - len(committed)
                return result
            except ClientError as exc:
                if error_code(exc) not in CONFLICT_CODES:
                    raise
                result.conflicts += 1
        raise WriteConflictError(
            f"s3://{self.bucket}/{report_prefix(self.account_id, self.run_id)}: {MAX_WRITE_ATTEMPTS} conditional "
            "writes in a row lost to other writers"
        )

    def _write_once(
        self, records: list[Any], result: WriteResult, committed: set[str], complete_parts_only: bool
    ) -> None:
        """One optimistic attempt; ``committed`` collects the digests this call has written so far."""
        index, index_etag = self._read_index()
        parts = self._current_parts(index)
        known = set().union(*(p.digests for p in parts)) if parts else set()
        result.present = known | committed
        fresh: dict[str, Any] = {}
        for record in records:
            digest = key_digest(record.key)
            if digest not in known and digest not in fresh:
                fresh[digest] = record
        pending = list(fresh.items())
        last = parts[-1] if parts else None
        if complete_parts_only:
            room = self.rows_per_file - last.rows if last and last.rows < self.rows_per_file else 0
            whole = max(0, len(pending) - room) // self.rows_per_file * self.rows_per_file
            pending = pending[: room + whole] if len(pending) >= room else []
        if not pending:
            return
        if last is None or last.rows >= self.rows_per_file:
            number = last.number + 1 if last else 1
            last = _Part(number, part_key(self.account_id, self.run_id, number), None, 0, set(), "")
            parts.append(last)
        while pending:
            room = self.rows_per_file - last.rows
            chunk, pending = pending[:room], pending[room:]
            self._append(last, chunk, result)
            committed.update(digest for digest, _ in chunk)
            result.present.update(digest for digest, _ in chunk)
            if pending:
                number = last.number + 1
                last = _Part(number, part_key(self.account_id, self.run_id, number), None, 0, set(), "")
                parts.append(last)
        result.index_error = self._write_index(parts, index_etag)

    def _append(self, part: _Part, chunk: list[tuple[str, PolicyRecord]], result: WriteResult) -> None:
        if part.text is None:
            part.text = self._get_text(part.key)
        body = (part.text or rows_to_csv([], header=True)) + rows_to_csv([r.to_row() for _, r in chunk], header=False)
        condition = {"IfMatch": part.etag} if part.etag else {"IfNoneMatch": "*"}
        started = time.monotonic()
        stamp = WriterStamp(self.writer, write_at_ms=now_ms()).to_metadata() if self.writer else {}
        resp = self.s3.put_object(
            Bucket=self.bucket, Key=part.key, Body=body.encode(), ContentType="text/csv", Metadata=stamp, **condition
        )
        result.write_ms.append((time.monotonic() - started) * 1000)
        result.objects.append(part.key)
        part.etag, part.text = resp["ETag"], body
        part.rows += len(chunk)
        part.digests.update(d for d, _ in chunk)

    def _read_index(self) -> tuple[dict[str, Any], str | None]:
        try:
            resp = self.s3.get_object(Bucket=self.bucket, Key=self.index_key)
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
                return {"version": INDEX_VERSION, "parts": []}, None
            raise
        return json.loads(resp["Body"].read()), resp["ETag"]

    def _current_parts(self, index: dict[str, Any]) -> list[_Part]:
        """Parts as S3 lists them; re-read any the index does not describe exactly."""
        cached = {p["key"]: p for p in index.get("parts", [])}
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=report_prefix(self.account_id, self.run_id)
        )
        parts = []
        for obj in (o for page in pages for o in page.get("Contents", [])):
            key = obj["Key"]
            if not key.endswith(".csv") or "-part" not in key:
                continue
            number = int(key.rsplit("-part", 1)[1].removesuffix(".csv"))
            entry = cached.get(key)
            if entry and entry["etag"] == obj["ETag"]:
                parts.append(_Part(number, key, obj["ETag"], entry["rows"], set(entry["digests"])))
                continue
            resp = self.s3.get_object(Bucket=self.bucket, Key=key)
            text = resp["Body"].read().decode()
            keys = csv_record_keys(text)
            parts.append(_Part(number, key, resp["ETag"], len(keys), {key_digest(k) for k in keys}, text))
        parts.sort(key=lambda p: p.number)
        return parts

    def _get_text(self, key: str) -> str:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
                return ""
            raise

    def _write_index(self, parts: list[_Part], etag: str | None) -> str | None:
        """Best effort, after the parts committed: returns the error code instead of raising."""
        body = json.dumps(
            {
                "version": INDEX_VERSION,
                "parts": [
                    {"key": p.key, "etag": p.etag, "rows": p.rows, "digests": sorted(p.digests)}
                    for p in parts
                    if p.etag
                ],
            },
            separators=(",", ":"),
        )
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=self.index_key, Body=body.encode(), ContentType="application/json", **condition
            )
        except (ClientError, BotoCoreError) as exc:
            # The parts are already committed; a newer index (or the next writer) covers them.
            return None if error_code(exc) in CONFLICT_CODES else error_code(exc)
        return None


class SeedCsvStore:
    """The seed's single CSV: read, append, unconditional overwrite. Loses rows under concurrency.

    Each version it writes is stamped with the writer and the version it read
    (:mod:`pipeline.writer_metadata`), so that forensics can name the lost updates.
    """

    def __init__(self, s3: Any, bucket: str, account_id: str, run_id: str, *, writer: str = "") -> None:
        self.s3, self.bucket, self.writer = s3, bucket, writer
        self.key = seed_csv_key(account_id, run_id)

    def write(self, records: list[PolicyRecord]) -> WriteResult:
        result = WriteResult()
        read_at = now_ms()
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=self.key)
            raw = got["Body"].read()
            text, read_version, read_bytes = raw.decode(), got.get("VersionId") or "null", len(raw)
        except ClientError as exc:
            if error_code(exc) not in MISSING_CODES:
                raise
            text, read_version, read_bytes = rows_to_csv([], header=True), NOTHING_READ, 0
        body = text + rows_to_csv([r.to_row() for r in records], header=False)
        stamp = WriterStamp(self.writer, read_version, read_bytes, read_at, now_ms())
        started = time.monotonic()
        self.s3.put_object(
            Bucket=self.bucket, Key=self.key, Body=body.encode(), ContentType="text/csv", Metadata=stamp.to_metadata()
        )
        result.write_ms.append((time.monotonic() - started) * 1000)
        result.written, result.objects = len(records), [self.key]
        return result
