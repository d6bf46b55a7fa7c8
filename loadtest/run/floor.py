"""The emulator's floor: the time the unavoidable calls alone take on this machine.

ceil(N/10) PublishBatch calls, and receiving and deleting N messages, against a scratch
topic and queue, with as many consumers as the run has reporters draining while the
producer publishes (as the pipeline does: moto's ReceiveMessage cost grows with queue depth,
so publish-all-then-drain would overstate the floor, and one consumer would understate the
parallelism the pipeline has). Pipeline time minus this floor is what the pipeline costs.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from pipeline.publisher import BatchPublisher, pack_batches
from pipeline.record import PolicyRecord


def measure_floor(session: Any, records: list[PolicyRecord], consumers: int = 1) -> dict[str, float]:
    sns, sqs = session.client("sns"), session.client("sqs")
    name = f"cidb-floor-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = sns.create_topic(Name=name)["TopicArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    entries = [BatchPublisher.make_entry(r) for r in records]
    try:
        started = time.perf_counter()
        remaining = _Countdown(len(records))
        threads = [
            threading.Thread(target=_drain, args=(session.client("sqs"), queue_url, remaining))
            for _ in range(consumers)
        ]
        for thread in threads:
            thread.start()
        batches = pack_batches(entries)
        for batch in batches:
            sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=batch)
        published = time.perf_counter()
        for thread in threads:
            thread.join()
        ended = time.perf_counter()
    finally:
        sns.delete_topic(TopicArn=topic_arn)
        sqs.delete_queue(QueueUrl=queue_url)
    return {
        "emulator_floor_seconds": round(ended - started, 3),
        "floor_publish_seconds": round(published - started, 3),
        "floor_drain_after_publish_seconds": round(ended - published, 3),
        "floor_publish_calls": len(batches),
        "floor_messages_received": len(records) - remaining.left,
        "floor_consumers": consumers,
    }


class _Countdown:
    """Messages still to drain, shared by the consumers."""

    def __init__(self, count: int) -> None:
        self.left = count
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            self.left -= n


def _drain(sqs: Any, queue_url: str, remaining: _Countdown) -> None:
    idle_polls = 0
    while remaining.left > 0 and idle_polls < 5:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        idle_polls = 0 if got else idle_polls + 1
        if got:
            remaining.take(len(got))
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )
