"""Count AWS API calls by service and operation, and bytes written to S3.

Counting happens in the client (botocore's ``before-call`` event), so it sees exactly the
calls our code makes, in whichever process makes them, whatever the endpoint.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class ApiCallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.s3_bytes_written = 0

    def install(self, session: Any) -> ApiCallCounter:
        """Register on a boto3 Session; clients made from it afterwards are counted."""
        session.events.register("before-call", self._before_call)
        return self

    def _before_call(self, model: Any = None, params: dict[str, Any] | None = None, **_: Any) -> None:
        service = model.service_model.service_name
        self.calls[f"{service}.{model.name}"] += 1
        if service == "s3" and model.name == "PutObject" and params:
            self.s3_bytes_written += _body_size(params.get("body"))

    def take(self) -> tuple[dict[str, int], int]:
        """Counts since the last take, then reset."""
        calls, written = dict(self.calls), self.s3_bytes_written
        self.calls.clear()
        self.s3_bytes_written = 0
        return calls, written


def _body_size(body: Any) -> int:
    """Size of a request body, which botocore has usually wrapped in a BytesIO by now."""
    if isinstance(body, bytes | bytearray):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    if hasattr(body, "getbuffer"):
        return body.getbuffer().nbytes
    return 0
