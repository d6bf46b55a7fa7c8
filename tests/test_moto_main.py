"""The emulator's SQS shim: moto's queue operations run one at a time; a long poll waits outside the lock.

moto's server answers each request in its own thread and does not lock a queue while it changes it;
two receives that dead-letter the same message made one of them fail with a 500 after it had
marked other messages received, which stranded them in flight (seen in a 1500-policy poison run).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from loadtest.emulator import moto_main


class _Recorder:
    """A stand-in for moto's receive that records how many calls run inside it at once."""

    def __init__(self, result: list[str]) -> None:
        self.result, self.active, self.peak, self.calls = result, 0, 0, 0
        self._guard = threading.Lock()

    def __call__(self, _backend: Any, _queue: str, _count: int, wait: int, _visibility: int, _names: Any = None):
        assert wait == 0, "the shim must short-poll moto and wait outside the lock itself"
        with self._guard:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.005)
        with self._guard:
            self.active -= 1
        return self.result


def _hammer(receive: Any, threads: int = 8, calls: int = 5) -> None:
    workers = [
        threading.Thread(target=lambda: [receive(None, "q", 1, 0, 30) for _ in range(calls)]) for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_receives_never_overlap_inside_moto() -> None:
    bare, shimmed = _Recorder(["m"]), _Recorder(["m"])
    _hammer(lambda *a: bare(*a))  # control: without the shim, receives overlap
    _hammer(moto_main._receive(shimmed))
    assert bare.peak > 1, "the control run should overlap; the test would prove nothing"
    assert (shimmed.peak, shimmed.calls) == (1, 40)


class _Queue:
    def __init__(self) -> None:
        self.waited = 0.0

    def wait_for_messages(self, timeout: float) -> None:
        assert not moto_main._LOCK._is_owned(), "a long poll must not hold the lock while it waits"
        self.waited += timeout
        time.sleep(timeout)


class _Backend:
    def __init__(self) -> None:
        self.queue = _Queue()

    def get_queue(self, _name: str) -> _Queue:
        return self.queue


def test_a_long_poll_waits_outside_the_lock_until_its_time_is_up() -> None:
    backend, empty = _Backend(), _Recorder([])
    started = time.monotonic()
    assert moto_main._receive(empty)(backend, "q", 10, 1, 30) == []
    assert 0.9 <= time.monotonic() - started < 2.0 and empty.calls >= 2
    assert backend.queue.waited > 0


def test_the_server_entry_point_installs_the_shim_once() -> None:
    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message
    put_object, store = moto_main.S3Backend.put_object, moto_main._VersionedKeyStore.__setitem__
    try:
        moto_main.install()
        moto_main.install()
        assert getattr(SQSBackend.receive_message, "cidb_atomic", False)
        assert SQSBackend.receive_message.__wrapped__ is original
        assert moto_main.S3Backend.put_object.__wrapped__ is put_object
        assert moto_main._VersionedKeyStore.__setitem__.__wrapped__ is store
    finally:
        moto_main.S3Backend.put_object, moto_main._VersionedKeyStore.__setitem__ = put_object, store
        SQSBackend.receive_message = original
        for name in moto_main._ATOMIC:
            method = getattr(SQSBackend, name)
            setattr(SQSBackend, name, getattr(method, "__wrapped__", method))


class _SlowStoring(dict):  # type: ignore[type-arg]
    def __setitem__(self, key: str, value: Any) -> None:
        time.sleep(0.01)
        super().__setitem__(key, value)


# moto's own append, whether or not install() has run in this process
_STORE_SETITEM = moto_main._VersionedKeyStore.__setitem__
_MOTO_SETITEM = getattr(_STORE_SETITEM, "__wrapped__", _STORE_SETITEM)


class _SlowStore(moto_main._VersionedKeyStore, _SlowStoring):
    """moto's version history, with the gap between reading a key's list and storing it widened."""

    __setitem__ = _MOTO_SETITEM


class _ShimmedStore(_SlowStore):
    __setitem__ = moto_main._atomic_version(_MOTO_SETITEM)


def _first_puts(store: dict[str, Any], writers: int = 8) -> list[Any]:
    """``writers`` PUTs of a key that does not exist yet, all at once; the versions its history kept."""
    workers = [threading.Thread(target=store.__setitem__, args=("k", n)) for n in range(writers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return store.getlist("k")


def test_concurrent_first_puts_each_leave_their_version() -> None:
    bare = _first_puts(_SlowStore())
    assert len(bare) < 8, "the control run should lose versions; the test would prove nothing"
    assert sorted(_first_puts(_ShimmedStore())) == list(range(8))
