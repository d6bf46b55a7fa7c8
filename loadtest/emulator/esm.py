"""An SQS event source mapping for the embedded emulator, behaving as Lambda's does.

- Each concurrency slot polls, gathers up to ``batch_size`` messages within the batching
  window (or 6 MB of payload), and invokes its own function instance (a process).
- At most ``max_concurrency`` invocations run at once.
- Messages that the partial batch response does not name are deleted. Named ones keep the
  visibility they have, as on Lambda: the reporter itself gives them a short, growing one.
  Every message of a failed or timed-out invocation goes back to the queue.
- Redrive to the DLQ after maxReceiveCount is left to SQS itself.
- Every ``DeleteMessageBatch`` and ``ChangeMessageVisibilityBatch`` answer is checked: a
  ``Failed`` entry that SQS blames on itself is retried, and whatever still failed is kept in
  ``MappingState.unsettled`` (with its body), so that reconciliation reports such a message
  as in flight, not as lost.
- Under a latency profile that scales (``--latency aws``), pollers start as Lambda's do: a few at
  first, more each second, up to the mapping's maximum (:mod:`loadtest.latency.scaling`); without
  one, every slot polls from the start.
- Faults of the mapping itself (:class:`MappingFaults`): duplicate deliveries and throttled
  invocations, injected here because on AWS they happen here. A throttled Invoke is retried
  with the same batch after a growing backoff, as Lambda's pollers do while the messages are
  still invisible (the reason AWS asks for a visibility timeout of six times the function
  timeout): a throttle costs time, not a receive, so it never pushes records to the DLQ.

One deliberate difference: after a failed or timed-out invocation, Lambda leaves its
messages invisible until the queue's visibility timeout ends (5430 s for the tuned profile).
The emulator instead makes them visible again after ``retry_delay_seconds`` so a run
finishes in minutes. Every retry still counts as a receive, so redrive to the DLQ happens
exactly as on AWS.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadtest.emulator.apicalls import ApiCallCounter
from loadtest.emulator.lambda_runtime import FunctionConfig, FunctionInstance, InvocationResult
from loadtest.latency.scaling import PollerScaling
from pipeline.spec import DeploymentSpec

PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
# Within a batching window, a poller that got fewer messages than it asked for waits this long
# before asking again, instead of re-polling at once. moto scans the queue and deep-copies
# every message it returns on each ReceiveMessage, all in one process, so back-to-back polls
# from many pollers starve the publisher; waiting changes no batch, only how it is gathered.
WINDOW_POLL_PAUSE_SECONDS = 0.25
# A throttled Invoke is retried after this, doubling up to the cap.
THROTTLE_BACKOFF_SECONDS = 0.5
THROTTLE_BACKOFF_MAX_SECONDS = 4.0
# A slot that the scaling rule does not allow yet looks again after this.
SCALING_CHECK_SECONDS = 0.1


@dataclass
class Invocation:
    result: InvocationResult
    batch_size: int
    failed: int
    oldest_age_s: float


@dataclass(frozen=True)
class MappingFaults:
    """Faults of the mapping: every Nth message delivered twice, every Nth invocation throttled."""

    duplicate_every: int = 0  # deliver every Nth message again, at once and after duplicate_delay_seconds
    duplicate_delay_seconds: float = 5.0
    throttle_every: int = 0  # refuse every Nth invocation (TooManyRequestsException)
    throttle_limit: int = 0  # refuse at most this many (0: no limit)


@dataclass
class MappingState:
    in_flight: int = 0
    invocations: list[Invocation] = field(default_factory=list)
    last_activity: float = field(default_factory=time.monotonic)
    max_age_since_sample: float = 0.0
    received: int = 0
    attempts: int = 0
    duplicates_delivered: int = 0
    refused: list[InvocationResult] = field(default_factory=list)  # throttled Invokes (no instance ran)
    # Messages whose delete or visibility change SQS refused even after a retry: message id -> detail.
    unsettled: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Messages received and not yet deleted: message id -> body. At the end of a run, whatever of
    # them is neither visible in the queue nor in the DLQ is in flight (invisible), not lost.
    outstanding: dict[str, str] = field(default_factory=dict)
    batch_failures: list[dict[str, Any]] = field(default_factory=list)
    polled_slots: set[int] = field(default_factory=set)  # slots that have polled at least once
    full_after_seconds: float | None = None  # when every slot was allowed to poll (scaling mappings)


def to_lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """The shape Lambda passes for one SQS message."""
    attributes = {
        name: {
            "stringValue": attr.get("StringValue"),
            "dataType": attr["DataType"],
            "stringListValues": [],
            "binaryListValues": [],
        }
        for name, attr in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


# The emulator needs a finite number of instances where the spec sets no cap (Lambda scales to 1250 on AWS).
UNCAPPED_EMULATOR_CONCURRENCY = 5
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


@dataclass(frozen=True)
class MappingSettings:
    """The event source mapping as the stack configures it, read from the same spec fields."""

    batch_size: int
    window_seconds: float
    max_concurrency: int
    report_batch_item_failures: bool
    scaling: PollerScaling | None = None  # None: every slot polls from the start
    capped_by: str = ""  # what set max_concurrency, for the summary

    @classmethod
    def from_spec(
        cls, spec: DeploymentSpec, concurrency: int | None = None, scaling: PollerScaling | None = None
    ) -> MappingSettings:
        """``concurrency`` (the load test's ``--concurrency``) replaces the spec's cap; ``scaling`` ramps
        the pollers up to the cap, and lifts an uncapped mapping to the emulator's ceiling."""
        q = spec.queue
        if concurrency:
            cap, capped_by = concurrency, "--concurrency"
        elif scaling is not None:
            cap, capped_by = scaling.cap(q.max_concurrency)
        elif q.max_concurrency:
            cap, capped_by = q.max_concurrency, "the mapping's maximum concurrency"
        else:
            cap, capped_by = UNCAPPED_EMULATOR_CONCURRENCY, f"the emulator's fixed {UNCAPPED_EMULATOR_CONCURRENCY}"
        return cls(
            batch_size=q.batch_size,
            window_seconds=q.batching_window_seconds,
            max_concurrency=cap,
            report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES in q.function_response_types,
            scaling=scaling,
            capped_by=capped_by,
        )


class EventSourceMapping:
    def __init__(
        self,
        sqs: Any,
        api_counter: ApiCallCounter,
        *,
        queue_url: str,
        queue_arn: str,
        function: FunctionConfig,
        settings: MappingSettings,
        retry_delay_seconds: int = 1,
        faults: MappingFaults | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sqs, self.api_counter = sqs, api_counter
        self.queue_url, self.queue_arn, self.function = queue_url, queue_arn, function
        self.settings = settings
        self.batch_size, self.window_seconds = settings.batch_size, settings.window_seconds
        self.max_concurrency, self.retry_delay_seconds = settings.max_concurrency, retry_delay_seconds
        self.state = MappingState()
        self.faults = faults or MappingFaults()
        self._replays: list[tuple[float, dict[str, Any]]] = []  # (due, message) of duplicate deliveries
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._clock, self._started_at = clock, 0.0
        self._threads = [
            threading.Thread(target=self._slot, args=(i,), name=f"esm-slot-{i}", daemon=True)
            for i in range(settings.max_concurrency)
        ]

    def start(self) -> EventSourceMapping:
        self._started_at = self._clock()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, *, wait: bool = True) -> None:
        """Stop polling; with ``wait``, also wait for the invocations in flight to finish."""
        self._stop.set()
        if wait:
            for thread in self._threads:
                thread.join(timeout=self.function.timeout_seconds + 30)

    @property
    def in_flight(self) -> int:
        return self.state.in_flight

    def idle_seconds(self) -> float:
        with self._lock:
            return 0.0 if self.state.in_flight else time.monotonic() - self.state.last_activity

    def take_max_age(self) -> float:
        with self._lock:
            age, self.state.max_age_since_sample = self.state.max_age_since_sample, 0.0
            return age

    def _may_poll(self, slot: int) -> bool:
        """Whether this slot is among the pollers the scaling rule allows by now."""
        scaling = self.settings.scaling
        if scaling is not None:
            elapsed = self._clock() - self._started_at
            allowed = scaling.allowed(elapsed, self.max_concurrency)
            if allowed >= self.max_concurrency and self.state.full_after_seconds is None:
                self.state.full_after_seconds = round(elapsed, 1)
            if slot >= allowed:
                return False
        with self._lock:
            self.state.polled_slots.add(slot)
        return True

    def _slot(self, slot: int) -> None:
        instance = FunctionInstance(self.function)
        try:
            while not self._stop.is_set():
                if not self._may_poll(slot):
                    self._stop.wait(SCALING_CHECK_SECONDS)
                    continue
                messages = self._gather()
                if messages:
                    self._invoke(instance, messages)
        finally:
            instance.close()

    def _due_replays(self) -> list[dict[str, Any]]:
        """Duplicate deliveries that are due, at most a batch, one copy of a message per batch."""
        now, taken, ids = time.monotonic(), [], set()
        with self._lock:
            for item in sorted(self._replays, key=lambda r: r[0]):
                due, message = item
                if due <= now and len(taken) < self.batch_size and message["MessageId"] not in ids:
                    taken.append(message)
                    ids.add(message["MessageId"])
                    self._replays.remove(item)
            self.state.duplicates_delivered += len(taken)
        return taken

    def _plan_duplicates(self, messages: list[dict[str, Any]]) -> None:
        every = self.faults.duplicate_every
        with self._lock:
            for message in messages:
                self.state.received += 1
                self.state.outstanding[message["MessageId"]] = message["Body"]
                if every and self.state.received % every == 0:
                    now = time.monotonic()
                    self._replays += [(now, message), (now + self.faults.duplicate_delay_seconds, message)]

    def _gather(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self._due_replays()
        if messages:
            return messages
        payload, first_at = 0, None
        while len(messages) < self.batch_size and not self._stop.is_set():
            if first_at is not None:
                remaining = self.window_seconds - (time.monotonic() - first_at)
                if remaining <= 0:
                    break
            wait = 1 if first_at is None else max(0, min(1, int(remaining)))
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for message in got:
                size = len(message["Body"].encode())
                if messages and payload + size > PAYLOAD_LIMIT_BYTES:
                    self._release([message], 0)
                    continue
                messages.append(message)
                payload += size
            if messages and first_at is None:
                first_at = time.monotonic()
            if messages and self.window_seconds == 0:
                break
            if messages and len(got) < 10 and len(messages) < self.batch_size:
                left = self.window_seconds - (time.monotonic() - first_at)
                self._stop.wait(max(0.0, min(WINDOW_POLL_PAUSE_SECONDS, left)))
        if messages and self._stop.is_set():
            self._release(messages, 0)
            return []
        self._plan_duplicates(messages)
        return messages

    def _throttled(self) -> bool:
        """Whether this Invoke attempt is refused; a refusal is recorded as a throttled result."""
        every, limit = self.faults.throttle_every, self.faults.throttle_limit
        if not every:
            return False
        with self._lock:
            self.state.attempts += 1
            if self.state.attempts % every or (limit and len(self.state.refused) >= limit):
                return False
            self.state.refused.append(self._refused())
            return True

    def _invoke(self, instance: FunctionInstance, messages: list[dict[str, Any]]) -> None:
        now_ms = time.time() * 1000
        oldest = max((now_ms - int(m["Attributes"].get("SentTimestamp", now_ms))) / 1000 for m in messages)
        with self._lock:
            self.state.in_flight += 1
            self.state.max_age_since_sample = max(self.state.max_age_since_sample, oldest)
        event = {"Records": [to_lambda_record(m, self.queue_arn, self.function.region) for m in messages]}
        try:
            result = self._invoke_through_throttles(instance, event)
        finally:
            with self._lock:
                self.state.in_flight -= 1
                self.state.last_activity = time.monotonic()
        by_id = {m["MessageId"]: m for m in messages}
        if result.outcome == "ok" and not self.settings.report_batch_item_failures:
            failed_ids = set()  # as Lambda does: a successful invocation deletes its whole batch
        elif result.outcome == "ok" and isinstance(result.response, dict):
            failed_ids = {f["itemIdentifier"] for f in result.response.get("batchItemFailures", [])}
        else:
            failed_ids = set(by_id)
            self._release(messages, self.retry_delay_seconds)
        self._delete([m for mid, m in by_id.items() if mid not in failed_ids])
        with self._lock:
            self.state.invocations.append(Invocation(result, len(messages), len(failed_ids), oldest))

    def _invoke_through_throttles(self, instance: FunctionInstance, event: dict[str, Any]) -> InvocationResult:
        """Invoke; while the Invoke is throttled, retry with the same batch after a growing backoff."""
        delay = THROTTLE_BACKOFF_SECONDS
        while self._throttled() and not self._stop.is_set():
            self._stop.wait(delay)
            delay = min(delay * 2, THROTTLE_BACKOFF_MAX_SECONDS)
        return instance.invoke(event)

    def _refused(self) -> InvocationResult:
        """What the mapping gets from a throttled Invoke: no instance ran."""
        now = time.time()
        error = "TooManyRequestsException: Rate Exceeded (injected by the load test)"
        return InvocationResult(self.function.name, "", "", False, now, now, "throttled", error=error)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for i in range(0, len(messages), 10):
            self._settle("delete", messages[i : i + 10], None)

    def _release(self, messages: list[dict[str, Any]], delay: int) -> None:
        for i in range(0, len(messages), 10):
            self._settle("release", messages[i : i + 10], delay)

    def _settle(self, action: str, chunk: list[dict[str, Any]], delay: int | None, attempts: int = 3) -> None:
        """Delete or release a chunk; retry the entries SQS failed on its side, keep the rest as unsettled."""
        pending = dict(enumerate(chunk))
        for attempt in range(attempts):
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in pending.items()]
            if action == "delete":
                response = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            else:
                for entry in entries:
                    entry["VisibilityTimeout"] = delay
                response = self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = response.get("Failed", [])
            if action == "delete":
                failed_ids = {int(f["Id"]) for f in failed}
                with self._lock:
                    for n in set(pending) - failed_ids:
                        self.state.outstanding.pop(pending[n]["MessageId"], None)
            retry = {int(f["Id"]) for f in failed if not f.get("SenderFault") and attempt + 1 < attempts}
            for f in failed:
                if int(f["Id"]) in retry:
                    continue
                message = pending[int(f["Id"])]
                detail = {"action": action, "code": f.get("Code"), "message": f.get("Message")}
                with self._lock:
                    self.state.batch_failures.append({"message_id": message["MessageId"], **detail})
                    self.state.unsettled[message["MessageId"]] = {**detail, "body": message["Body"]}
            pending = {n: m for n, m in pending.items() if n in retry}
            if not pending:
                return
