"""``python -m loadtest.emulator.moto_main``: moto's server, with its SQS queue operations made atomic.

moto's threaded server runs each request in its own thread, and its SQS backend does not lock a
queue while it changes it. Two ReceiveMessage calls that meet a message due for the DLQ both try
to move it; the second fails with ``list.remove(x): x not in list`` and answers 500, after it has
already marked other messages as received. Those messages are never returned to anyone and stay
invisible for the queue's whole visibility timeout (5430 s in ``tuned``): on AWS they would come
back then, but a load test ends long before and counted them as lost. Concurrent receives could
also hand one message to two consumers.

The same holds for S3 versions: moto's PutObject reads a key's version list, appends the new version
and stores the list back, so of two PUTs of one key at once, one version vanishes from the history
(26 of 1500 in a seed run). On AWS every PUT leaves its version, and loss forensics reads that
history to name the writer of each lost update, so this entry point makes that append atomic too.

This entry point serialises the SQS backend's message operations under one lock. A long poll
waits outside the lock, as SQS's own does, so senders and other consumers are never blocked by
a waiting receiver. AWS itself is not modelled any differently: only moto's races are removed.

It also makes moto's identity-policy check (on when ``INITIAL_NO_AUTH_ACTION_COUNT`` is set, see
:class:`loadtest.emulator.moto_server.MotoServer`) judge our calls the way IAM does, where moto
differs: it names the request's resource for SNS, DynamoDB and ``GetQueueUrl`` (moto checks "*"
there, which no ARN-scoped statement matches), authorises the batch calls by the action IAM uses
(``PublishBatch`` by ``sns:Publish``; ``DeleteObjects`` by ``s3:DeleteObject`` on each key, where moto checks
the bucket's ARN and then fails every key), and answers a denied JSON-protocol call with a JSON
``AccessDenied`` error that botocore can parse (moto sends XML, which reads as error code "403").
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import xmltodict
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.responses import DynamoHandler
from moto.iam.access_control import IAMRequest, IAMRequestBase
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response
from moto.s3.utils import _VersionedKeyStore
from moto.server import main as moto_server_main
from moto.sns.responses import SNSResponse
from moto.sqs.models import SQSBackend
from moto.sqs.responses import SQSResponse

_LOCK = threading.RLock()
_VERSIONS_LOCK = threading.RLock()
_ATOMIC = (
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
)
# moto names the authorised action after the API call; IAM authorises these calls by another action.
IAM_ACTIONS = {
    "sns:PublishBatch": "sns:Publish",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sqs:SendMessageBatch": "sqs:SendMessage",
}
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


class _JsonAccessDenied(JsonRESTError):
    code = 403


def _request_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def init(self: IAMRequestBase, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._action = IAM_ACTIONS.get(self._action, self._action)

    return init


def _check_action_permitted(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def check(self: IAMRequestBase, resource: str) -> None:
        self.cidb_resource = resource
        original(self, resource)

    return check


def _raise_access_denied(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def deny(self: IAMRequest) -> None:
        if "amz-json" not in self._headers.get("Content-Type", ""):
            original(self)
        code = "AccessDenied" if self._action.startswith("sqs:") else "AccessDeniedException"
        resource = getattr(self, "cidb_resource", "*")
        message = f"User: {self._access_key.arn} is not authorized to perform: {self._action} on resource: {resource}"
        raise _JsonAccessDenied(code, message)

    return deny


def _sns_resource(self: SNSResponse) -> str:
    return self._get_param("TopicArn") or "*"


def _dynamodb_resource(self: DynamoHandler) -> str:
    table = getattr(self, "params", {}).get("TableName")
    return f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}" if table else "*"


def _sqs_resource(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def resource(self: SQSResponse) -> str:
        name = self._get_param("QueueName")
        if name and self._get_action() == "GetQueueUrl":
            return f"arn:aws:sqs:{self.region}:{self.current_account}:{name}"
        return original(self)

    return resource


def _authorize_s3(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def authorize(self: S3Response, bucket_name: str | None = None, key_name: str | None = None) -> None:
        if key_name is None and self.data.get("Action") == "DeleteObject" and self.is_delete_keys():
            objects = xmltodict.parse(self.body)["Delete"].get("Object", [])
            for obj in objects if isinstance(objects, list) else [objects]:
                original(self, bucket_name=bucket_name, key_name=obj["Key"])
            return
        original(self, bucket_name=bucket_name, key_name=key_name)

    return authorize


def _atomic_version(original: Callable[..., Any]) -> Callable[..., Any]:
    """A key's new version is appended to its history under a lock, so that no PUT's version is lost."""

    @functools.wraps(original)
    def store(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _VERSIONS_LOCK:
            return original(self, *args, **kwargs)

    return store


def install() -> None:
    """Make SQSBackend's message operations and S3's version history atomic, and moto's IAM check judge as
    IAM does (idempotent)."""
    if getattr(SQSBackend.receive_message, "cidb_atomic", False):
        return
    _VersionedKeyStore.__setitem__ = _atomic_version(_VersionedKeyStore.__setitem__)
    S3Backend.put_object = _atomic_version(S3Backend.put_object)
    for name in _ATOMIC:
        setattr(SQSBackend, name, _atomic(getattr(SQSBackend, name)))
    SQSBackend.receive_message = _receive(SQSBackend.receive_message)
    IAMRequestBase.__init__ = _request_init(IAMRequestBase.__init__)
    IAMRequestBase.check_action_permitted = _check_action_permitted(IAMRequestBase.check_action_permitted)
    IAMRequest._raise_access_denied = _raise_access_denied(IAMRequest._raise_access_denied)
    SNSResponse._determine_resource = _sns_resource
    DynamoHandler._determine_resource = _dynamodb_resource
    SQSResponse._determine_resource = _sqs_resource(SQSResponse._determine_resource)
    S3Response._authenticate_and_authorize_s3_action = _authorize_s3(S3Response._authenticate_and_authorize_s3_action)


if __name__ == "__main__":
    install()
    moto_server_main(sys.argv[1:])
