"""``python -m loadtest.emulator.moto_main``: moto's server, with its SQS queue operations made atomic.

moto's threaded server runs each request in its own thread, and its SQS backend does not lock a
queue while it changes it. Two ReceiveMessage calls that meet a message due for the DLQ both try
to move it; the second fails with ``list.remove(x): x not in list`` and answers 500, after it has
already marked other messages as received. Those messages are never returned to anyone and stay
invisible for the queue's whole visibility timeout (5430 s in ``tuned``): on AWS they would come
back then, but a load test ends long before and counted them as lost. Concurrent receives could
also hand one message to two consumers.

This entry point serialises the SQS backend's message operations under one lock. A long poll
waits outside the lock, as SQS's own does, so senders and other consumers are never blocked by
a waiting receiver. AWS itself is not modelled any differently: only moto's races are removed.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.server import main as moto_server_main
from moto.sqs.models import SQSBackend

_LOCK = threading.RLock()
_ATOMIC = (
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
)
# Between two empty short polls of a long poll, at most this long.
_POLL_PAUSE_SECONDS = 0.05


def _atomic(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    locked.cidb_atomic = True  # type: ignore[attr-defined]
    return locked


def _receive(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def receive_message(
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        end = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _LOCK:
                result = original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            left = end - time.monotonic()
            if result or left <= 0:
                return result
            self.get_queue(queue_name).wait_for_messages(min(1.0, left))
            time.sleep(min(_POLL_PAUSE_SECONDS, max(0.0, end - time.monotonic())))

    receive_message.cidb_atomic = True  # type: ignore[attr-defined]
    return receive_message


def install() -> None:
    """Make SQSBackend's message operations atomic (idempotent)."""
    if getattr(SQSBackend.receive_message, "cidb_atomic", False):
        return
    for name in _ATOMIC:
        setattr(SQSBackend, name, _atomic(getattr(SQSBackend, name)))
    SQSBackend.receive_message = _receive(SQSBackend.receive_message)


if __name__ == "__main__":
    install()
    moto_server_main(sys.argv[1:])
