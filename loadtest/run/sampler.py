"""Sample queue depth, DLQ depth and instances in flight once a second while a run goes on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


@dataclass
class Sample:
    time: float
    visible: int
    not_visible: int
    dlq: int
    instances_in_flight: int
    oldest_age_s: float
    written: int


@dataclass
class QueueSampler:
    sqs: Any
    queue_url: str
    dlq_url: str
    written: Callable[[], int]
    in_flight: Callable[[], int] = lambda: 0
    oldest_age: Callable[[], float] = lambda: 0.0
    interval: float = 0.5
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)

    def start(self) -> QueueSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()

    @property
    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def sample(self) -> Sample:
        queue = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=ATTRIBUTES)["Attributes"]
        dlq = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=ATTRIBUTES)["Attributes"]
        sample = Sample(
            time=time.time(),
            visible=int(queue["ApproximateNumberOfMessages"]),
            not_visible=int(queue["ApproximateNumberOfMessagesNotVisible"]),
            dlq=int(dlq["ApproximateNumberOfMessages"]) + int(dlq["ApproximateNumberOfMessagesNotVisible"]),
            instances_in_flight=self.in_flight(),
            oldest_age_s=self.oldest_age(),
            written=self.written(),
        )
        self.samples.append(sample)
        return sample

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
