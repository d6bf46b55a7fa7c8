"""Delay each AWS call as AWS would, with a botocore hook; the pipeline code is untouched.

A :class:`LatencyProfile` gives each ``service.Operation`` (falling back to the service, then to
``*``) a lognormal distribution fixed by two published percentiles, p50 and p99, plus the
cold-start (init) distribution of a new function instance. Where every figure comes from is in
``docs/latency.md``.

:class:`LatencyHook` sleeps a sampled time on botocore's ``before-send`` event, once per HTTP
attempt (so a retried call waits again, as a real one does), and counts what it delayed: API
calls by operation (their first attempt), attempts, and seconds. The counts are what tests
compare with :class:`loadtest.emulator.apicalls.ApiCallCounter`: every call must pass through.

This module imports only the standard library, because a function instance loads it from its
file (see :mod:`loadtest.emulator.lambda_bootstrap`), as it does the fault rules.

Example::

    profile = LatencyProfile("demo", {"*": Percentiles(16, 105)}, Percentiles(300, 700))
    hook = LatencyHook(Sampler(profile, seed="run-1:instance-a")).install(session.events)
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The standard normal quantile of 0.99: a lognormal's p99 is exp(mu + Z99 * sigma).
Z99 = 2.3263478740408408
DEFAULT_KEY = "*"
_OPERATION = "cidb_latency_operation"


@dataclass(frozen=True)
class Percentiles:
    """A lognormal latency given by its median and its 99th percentile, in milliseconds."""

    p50_ms: float
    p99_ms: float

    def draw(self, rng: random.Random) -> float:
        """One sample, in seconds."""
        sigma = math.log(self.p99_ms / self.p50_ms) / Z99
        return rng.lognormvariate(math.log(self.p50_ms), sigma) / 1000


@dataclass(frozen=True)
class LatencyProfile:
    """Per-call distributions (``service.Operation``, then ``service``, then ``*``) and the cold start."""

    name: str
    calls: dict[str, Percentiles]
    cold_start: Percentiles

    def distribution(self, operation: str) -> Percentiles:
        service = operation.partition(".")[0]
        return self.calls.get(operation) or self.calls.get(service) or self.calls[DEFAULT_KEY]

    def to_dict(self) -> dict[str, Any]:
        """Plain data, to hand to a function instance."""
        return {
            "name": self.name,
            "calls": {key: [p.p50_ms, p.p99_ms] for key, p in self.calls.items()},
            "cold_start": [self.cold_start.p50_ms, self.cold_start.p99_ms],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyProfile:
        calls = {key: Percentiles(*values) for key, values in data["calls"].items()}
        return cls(data["name"], calls, Percentiles(*data["cold_start"]))


class Sampler:
    """Seeded draws from a profile: the same seed gives the same delays, call after call."""

    def __init__(self, profile: LatencyProfile, seed: str) -> None:
        self.profile = profile
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def call_seconds(self, operation: str) -> float:
        with self._lock:
            return self.profile.distribution(operation).draw(self._rng)

    def cold_start_seconds(self) -> float:
        with self._lock:
            return self.profile.cold_start.draw(self._rng)


class LatencyHook:
    """Sleeps before each HTTP attempt of an AWS call, and counts what it delayed."""

    def __init__(self, sampler: Sampler, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sampler, self._sleep = sampler, sleep
        self.calls: Counter[str] = Counter()  # service.Operation -> API calls delayed (first attempts)
        self.attempts = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def install(self, events: Any) -> LatencyHook:
        """Register on a botocore event emitter (``session.events``): clients made from it are delayed."""
        events.register("before-call", _tag_operation)
        events.register("before-send", self.before_send)
        return self

    def before_send(self, request: Any = None, **_: Any) -> None:
        context = getattr(request, "context", None) or {}
        operation = context.get(_OPERATION, DEFAULT_KEY)
        first = context.get("retries", {}).get("attempt", 1) == 1
        seconds = self.sampler.call_seconds(operation)
        with self._lock:
            self.calls[operation] += first
            self.attempts += 1
            self.seconds += seconds
        self._sleep(seconds)

    def cold_start(self) -> float:
        """Wait a sampled init time, as a new Lambda execution environment does; the milliseconds waited."""
        seconds = self.sampler.cold_start_seconds()
        self._sleep(seconds)
        return seconds * 1000

    def take(self) -> dict[str, Any]:
        """What was delayed since the last take (calls by operation, attempts, seconds), then reset."""
        with self._lock:
            taken = {"calls": dict(self.calls), "attempts": self.attempts, "seconds": round(self.seconds, 3)}
            self.calls.clear()
            self.attempts, self.seconds = 0, 0.0
        return taken


def _tag_operation(model: Any = None, context: dict[str, Any] | None = None, **_: Any) -> None:
    """``before-send`` sees only the request: carry the operation's name there in its context."""
    if context is not None and model is not None:
        context[_OPERATION] = f"{model.service_model.service_name}.{model.name}"
