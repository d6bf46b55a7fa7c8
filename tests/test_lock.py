"""The S3 lease lock against a real moto S3 over HTTP.

Every S3 call the lock makes is recorded from the client's own ``before-parameter-build``
event, so the tests can say which conditional request was sent, not only what came out.
Expiry uses a 1 s lease and one real sleep per test that needs it: S3's LastModified and
Date headers have 1 s granularity, so 2.2 s guarantee an age of at least 2 s > 1 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from loadtest.emulator.aws_session import AwsSession
from loadtest.faults.injection import FaultRule, install_rules
from loadtest.faults.lock_release import LOCK_RELEASE_FAILURES
from pipeline.layout import LOCK_TAGGING, lock_key
from pipeline.lock import EndpointFacts, LockNotAcquired, S3Lock
from pipeline.settings import LockSettings

BUCKET = "cidb-test-locks"
TARGET = "reports/123456789012/run-1/_index.json"
LIVE = LockSettings(timeout_seconds=60, max_attempts=4, base_backoff_seconds=0.25, jitter_factor=1.0)
SHORT_LEASE = LockSettings(timeout_seconds=1, max_attempts=1, base_backoff_seconds=0, jitter_factor=0)
EXPIRY_SLEEP_S = 2.1  # >= 2 s: both timestamps are floored to whole seconds


class S3Calls:
    """Every S3 operation a client sends, with its parameters, in order."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("before-parameter-build.s3", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name != "GetObject" or params.get("Key", "").endswith(".lock"):
            self.calls.append((model.name, {k: v for k, v in params.items() if k != "Body"}))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def bucket(aws: AwsSession) -> str:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})  # as provisioned
    return BUCKET


def fresh_s3(aws: AwsSession) -> Any:
    """A separate client (own event hooks), as a separate Lambda instance would have."""
    return AwsSession(aws.endpoint_url).client("s3")


def lock_body(s3: Any) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=lock_key(TARGET))["Body"].read())


def lock_exists(s3: Any) -> bool:
    return s3.list_objects_v2(Bucket=BUCKET, Prefix=lock_key(TARGET)).get("KeyCount", 0) == 1


def test_acquire_creates_lock_object_with_json_record(aws: AwsSession, bucket: str) -> None:
    # GIVEN no lock
    s3 = aws.client("s3")
    calls = S3Calls(s3)
    lock = S3Lock(s3, bucket, TARGET, LIVE, owner="reporter/req-a")
    # WHEN acquired
    handle = lock.acquire()
    # THEN <target>.lock exists, created atomically with If-None-Match, holding id/owner/created/expires
    assert handle.key == f"{TARGET}.lock", "lock key is <target>.lock"
    expected = {"Bucket": bucket, "Key": handle.key, "IfNoneMatch": "*", "Tagging": LOCK_TAGGING}
    assert calls.calls[0] == ("PutObject", expected), calls.calls
    tags = s3.get_object_tagging(Bucket=bucket, Key=handle.key)["TagSet"]
    assert tags == [{"Key": "cidb-lock", "Value": "true"}], "lock objects carry the tag the lifecycle rule expires"
    body = lock_body(s3)
    assert body["id"] == handle.lock_id, "lock body id is the handle's lock id"
    assert body["owner"] == "reporter/req-a", "lock body names its owner"
    lease = datetime.fromisoformat(body["expires"]) - datetime.fromisoformat(body["created"])
    assert lease.total_seconds() == pytest.approx(LIVE.timeout_seconds), "expires = created + lease"
    assert not handle.took_over and lock.stats.acquired == 1, "a fresh lock is acquired, not taken over"


def test_release_deletes_own_lock_conditionally(aws: AwsSession, bucket: str) -> None:
    # GIVEN a held lock
    s3 = aws.client("s3")
    lock = S3Lock(s3, bucket, TARGET, LIVE, owner="reporter/req-a")
    handle = lock.acquire()
    calls = S3Calls(s3)
    # WHEN released
    released = lock.release(handle)
    # THEN the lock object is gone, deleted with If-Match on our own ETag
    assert released is True, "release of our own lock returns True"
    assert calls.calls == [("DeleteObject", {"Bucket": bucket, "Key": handle.key, "IfMatch": handle.etag})], calls.calls
    assert not lock_exists(s3), f"{handle.key} must be gone after release"


def test_release_on_error_inside_held(aws: AwsSession, bucket: str) -> None:
    # GIVEN a writer holding the lock
    s3 = aws.client("s3")
    lock = S3Lock(s3, bucket, TARGET, LIVE, owner="reporter/req-a")
    # WHEN its work raises inside `with lock.held()`
    with pytest.raises(ZeroDivisionError), lock.held():
        assert lock_exists(s3), "lock must exist inside held()"
        _ = 1 / 0
    # THEN the exception propagates and the lock is released anyway
    assert not lock_exists(s3), "lock must be released when the body raises"


@pytest.mark.parametrize(
    ("jitter", "rng_value", "expected_sleeps"),
    [
        pytest.param(1.0, 0.0, [0.25, 0.5, 1.0], id="full-jitter-draw-0-hits-ceilings"),
        pytest.param(1.0, 0.5, [0.125, 0.25, 0.5], id="full-jitter-draw-half"),
        pytest.param(0.0, 0.9, [0.25, 0.5, 1.0], id="no-jitter-plain-exponential"),
    ],
)
def test_contended_acquirer_backs_off_exponentially_then_gives_up(
    aws: AwsSession, bucket: str, jitter: float, rng_value: float, expected_sleeps: list[float]
) -> None:
    # GIVEN writer A holds a live lock
    holder = S3Lock(aws.client("s3"), bucket, TARGET, LIVE, owner="reporter/req-a")
    held = holder.acquire()
    # AND writer B (its own client) with 4 attempts, base 0.25 s, and recorded sleeps
    s3_b = fresh_s3(aws)
    calls = S3Calls(s3_b)
    sleeps: list[float] = []
    settings = LockSettings(timeout_seconds=60, max_attempts=4, base_backoff_seconds=0.25, jitter_factor=jitter)
    contender = S3Lock(
        s3_b, bucket, TARGET, settings, owner="reporter/req-b", sleep=sleeps.append, rng=lambda: rng_value
    )
    # WHEN B tries to acquire
    with pytest.raises(LockNotAcquired) as caught:
        contender.acquire()
    # THEN B slept between attempts with growing ceilings base * 2^(n-1), and gave up after 4 attempts
    assert sleeps == pytest.approx(expected_sleeps), "backoff sleeps between the 4 attempts"
    assert lock_key(TARGET) in str(caught.value) and "4 attempts" in str(caught.value), str(caught.value)
    assert contender.stats.contended == 4 and contender.stats.acquire_failed == 1, contender.stats
    assert calls.names() == ["PutObject", "GetObject"] * 4, f"B's calls: create, then look at the holder: {calls.calls}"
    assert all(params.get("IfNoneMatch") == "*" for name, params in calls.calls if name == "PutObject"), calls.calls
    # AND A's live lock was left alone
    assert lock_body(aws.client("s3"))["id"] == held.lock_id, "a live lock must never be taken over"


def test_backoff_ceiling_is_capped(aws: AwsSession, bucket: str) -> None:
    # GIVEN a live lock, and a contender whose backoff doubles from 0.25 s but is capped at 0.6 s
    S3Lock(aws.client("s3"), bucket, TARGET, LIVE, owner="reporter/req-a").acquire()
    sleeps: list[float] = []
    settings = LockSettings(
        timeout_seconds=60, max_attempts=5, base_backoff_seconds=0.25, jitter_factor=0, max_backoff_seconds=0.6
    )
    contender = S3Lock(fresh_s3(aws), bucket, TARGET, settings, owner="reporter/req-b", sleep=sleeps.append)
    # WHEN it tries and gives up
    with pytest.raises(LockNotAcquired):
        contender.acquire()
    # THEN the ceilings grow 0.25, 0.5 and then stay at the cap
    assert sleeps == pytest.approx([0.25, 0.5, 0.6, 0.6]), "capped exponential backoff"


def test_backoff_ceiling_bounds_every_jittered_draw(aws: AwsSession, bucket: str) -> None:
    # GIVEN full jitter WHEN drawing backoffs for attempts 1..6 THEN each is within [0, base * 2^(n-1)]
    lock = S3Lock(aws.client("s3"), bucket, TARGET, LIVE, owner="x", rng=lambda: 0.999)
    for attempt in range(1, 7):
        ceiling = LIVE.base_backoff_seconds * 2 ** (attempt - 1)
        assert 0 <= lock.backoff_seconds(attempt) <= ceiling, f"attempt {attempt}: backoff above ceiling {ceiling}"


def test_lock_freed_during_backoff_is_acquired_on_next_attempt(aws: AwsSession, bucket: str) -> None:
    # GIVEN writer A holds the lock and releases it while B is backing off
    holder = S3Lock(aws.client("s3"), bucket, TARGET, LIVE, owner="reporter/req-a")
    held = holder.acquire()
    sleeps: list[float] = []

    def sleep_while_a_finishes(seconds: float) -> None:
        sleeps.append(seconds)
        holder.release(held)

    contender = S3Lock(
        fresh_s3(aws), bucket, TARGET, LIVE, owner="reporter/req-b", sleep=sleep_while_a_finishes, rng=lambda: 0.0
    )
    # WHEN B acquires
    handle = contender.acquire()
    # THEN B got it on attempt 2, after exactly one backoff, and owns the lock object
    assert sleeps == [0.25], "one backoff before the second attempt"
    assert (contender.stats.contended, contender.stats.acquired) == (1, 1), contender.stats
    assert lock_body(aws.client("s3"))["owner"] == "reporter/req-b", "B owns the lock after A released it"
    assert not handle.took_over, "a released lock is re-created, not taken over"


def test_stale_lock_taken_over_by_conditional_overwrite_and_old_owner_cannot_delete_it(
    aws: AwsSession, bucket: str
) -> None:
    # GIVEN writer A took the lock with a 1 s lease, then paused past it
    s3_a = aws.client("s3")
    owner_a = S3Lock(s3_a, bucket, TARGET, SHORT_LEASE, owner="reporter/req-a")
    handle_a = owner_a.acquire()
    time.sleep(EXPIRY_SLEEP_S)
    # WHEN writer B acquires
    s3_b = fresh_s3(aws)
    calls_b = S3Calls(s3_b)
    owner_b = S3Lock(s3_b, bucket, TARGET, SHORT_LEASE, owner="reporter/req-b")
    handle_b = owner_b.acquire()
    # THEN B took it over (counted), by one PUT conditional on A's ETag, never by delete-then-create
    assert handle_b.took_over and owner_b.stats.stale_broken == 1, f"took_over / LockStaleBroken: {owner_b.stats}"
    assert calls_b.names() == ["PutObject", "GetObject", "PutObject"], f"B's calls: {calls_b.calls}"
    assert calls_b.calls[2][1].get("IfMatch") == handle_a.etag, f"takeover must be If-Match A's ETag: {calls_b.calls}"
    versions = s3_a.list_object_versions(Bucket=bucket, Prefix=lock_key(TARGET))
    assert "DeleteMarkers" not in versions, "the stale lock must not be deleted on the way to the takeover"
    assert len(versions["Versions"]) == 2, "one overwrite of A's lock version by B's"
    # AND WHEN A comes back and releases
    released_a = owner_a.release(handle_a)
    # THEN A's release is refused and B's lock is still there, with B's id
    assert released_a is False, "the old owner's release must return False"
    body = lock_body(s3_a)
    assert (body["id"], body["owner"]) == (handle_b.lock_id, "reporter/req-b"), f"B's lock must survive: {body}"
    assert owner_b.release(handle_b) is True and not lock_exists(s3_a), "B can still release its own lock"


def test_two_writers_breaking_one_stale_lock_only_one_wins(aws: AwsSession, bucket: str) -> None:
    # GIVEN a lock whose owner died, and writers B and C that both find it stale
    S3Lock(aws.client("s3"), bucket, TARGET, SHORT_LEASE, owner="reporter/dead").acquire()
    time.sleep(EXPIRY_SLEEP_S)
    s3_b, s3_c = fresh_s3(aws), fresh_s3(aws)
    owner_b = S3Lock(s3_b, bucket, TARGET, SHORT_LEASE, owner="reporter/req-b")
    owner_c = S3Lock(s3_c, bucket, TARGET, SHORT_LEASE, owner="reporter/req-c")
    won: list[Any] = []

    def b_breaks_in_after_c_read_the_stale_lock(model: Any, **_: Any) -> None:
        if model.name == "GetObject" and not won:
            won.append(owner_b.acquire())

    s3_c.meta.events.register("after-call.s3.GetObject", b_breaks_in_after_c_read_the_stale_lock)
    # WHEN C reads the stale lock, B takes it over, and then C tries its own takeover
    with pytest.raises(LockNotAcquired):
        owner_c.acquire()
    # THEN only B holds the lock; C's conditional overwrite lost
    assert won and won[0].took_over, "B took the stale lock over"
    assert owner_c.stats.stale_broken == 0 and owner_c.stats.acquire_failed == 1, owner_c.stats
    assert lock_body(s3_b)["owner"] == "reporter/req-b", "B's lock must not be replaced by C's"


# --------------------------------------------------------------------------- failed releases


@pytest.fixture(autouse=True)
def endpoint_supports_conditional_delete() -> Iterator[None]:
    """What a process learned about the endpoint must not leak from one test into the next."""
    EndpointFacts.conditional_delete = True
    yield
    EndpointFacts.conditional_delete = True


@pytest.mark.parametrize("code", ["AccessDenied", "503", "501"])
def test_a_release_whose_delete_fails_frees_the_lock_with_a_tombstone(aws: AwsSession, bucket: str, code: str) -> None:
    # GIVEN a held lock, and S3 refusing the lock's conditional delete
    s3 = aws.client("s3")
    install_rules(s3.meta.events, [LOCK_RELEASE_FAILURES[code]])
    lock = S3Lock(s3, bucket, TARGET, LIVE, owner="reporter/req-a")
    handle = lock.acquire()
    calls = S3Calls(s3)
    # WHEN released
    released = lock.release(handle)
    # THEN it does not raise, counts the failure, and overwrites the lock with a tombstone on our own ETag
    assert released is True and lock.stats.release_failed == 1, lock.stats
    assert [name for name, _ in calls.calls] == ["DeleteObject", "PutObject"], calls.calls
    assert calls.calls[1][1]["IfMatch"] == handle.etag, "the tombstone must be conditional on our ETag"
    assert "released" in lock_body(s3)
    # AND a second writer takes the tombstone over at once: no lease to wait out, no stale take-over
    rival = S3Lock(fresh_s3(aws), bucket, TARGET, SHORT_LEASE, owner="reporter/req-b")
    rival.acquire()
    assert (rival.stats.acquired, rival.stats.stale_broken) == (1, 0), rival.stats
    assert lock_body(s3)["owner"] == "reporter/req-b"


def test_an_endpoint_without_conditional_delete_is_learned_once(aws: AwsSession, bucket: str) -> None:
    s3 = aws.client("s3")
    install_rules(s3.meta.events, [LOCK_RELEASE_FAILURES["501"]])
    lock = S3Lock(s3, bucket, TARGET, LIVE, owner="reporter/req-a")
    lock.release(lock.acquire())
    calls = S3Calls(s3)
    # WHEN the same process releases again
    assert lock.release(lock.acquire()) is True
    # THEN it goes straight to the tombstone, and counts no second failure
    assert "DeleteObject" not in calls.names(), calls.calls
    assert lock.stats.release_failed == 1, lock.stats


def test_a_release_that_cannot_free_the_lock_leaves_it_to_the_lease_without_raising(
    aws: AwsSession, bucket: str
) -> None:
    # GIVEN S3 refusing both the delete and the tombstone overwrite
    s3 = aws.client("s3")
    refuse_put = FaultRule("s3.PutObject", "SlowDown", 503, key_suffix=".lock", when_param="IfMatch")
    install_rules(s3.meta.events, [LOCK_RELEASE_FAILURES["503"], refuse_put])
    lock = S3Lock(s3, bucket, TARGET, LIVE, owner="reporter/req-a")
    # WHEN the work inside held() raises
    with pytest.raises(ZeroDivisionError), lock.held():
        _ = 1 / 0
    # THEN the original error propagates, the failed release is counted, and the lock stays until its lease ends
    assert lock.stats.release_failed == 1, lock.stats
    assert lock_exists(s3) and "released" not in lock_body(s3)


def test_a_release_of_a_lock_taken_over_is_counted_and_left_alone(aws: AwsSession, bucket: str) -> None:
    # GIVEN our lease ran out and a rival took the lock over
    s3 = aws.client("s3")
    lock = S3Lock(s3, bucket, TARGET, SHORT_LEASE, owner="reporter/req-a")
    handle = lock.acquire()
    time.sleep(EXPIRY_SLEEP_S)
    S3Lock(fresh_s3(aws), bucket, TARGET, SHORT_LEASE, owner="reporter/req-b").acquire()
    # WHEN we release
    assert lock.release(handle) is False
    # THEN nothing of the rival's is touched, and the failure is counted
    assert lock.stats.release_failed == 1
    assert lock_body(s3)["owner"] == "reporter/req-b"
