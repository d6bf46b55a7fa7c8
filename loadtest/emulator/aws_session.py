"""boto3 clients for the harness, pointed at the emulator or at real AWS."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import boto3

from loadtest.emulator.apicalls import ApiCallCounter
from loadtest.emulator.moto_server import CREDENTIALS, REGION
from loadtest.latency.delays import LatencyHook, LatencyProfile, Sampler
from pipeline.aws import RETRY_CONFIG

CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class AwsSession:
    """A boto3 session whose clients share an endpoint and an API-call counter.

    On the emulator, ``credentials`` (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, optionally
    ``AWS_SESSION_TOKEN``) sign the calls; without them, the emulator's unchecked test credentials do.
    With ``delays`` (a latency profile), every call of its clients waits as it would on AWS (``latency``
    counts them), drawn from a sampler seeded with ``seed``.
    """

    def __init__(
        self,
        endpoint_url: str | None,
        *,
        region: str | None = None,
        credentials: Mapping[str, str] | None = None,
        delays: LatencyProfile | None = None,
        seed: str = "",
    ) -> None:
        self.endpoint_url = endpoint_url
        self.credentials = dict(credentials or {k: CREDENTIALS[k] for k in CREDENTIAL_KEYS})
        if endpoint_url:
            self._session = boto3.Session(
                aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=self.credentials.get("AWS_SESSION_TOKEN"),
                region_name=region or REGION,
            )
        else:
            self._session = boto3.Session(region_name=region)
        self.region = self._session.region_name or REGION
        self.counter = ApiCallCounter().install(self._session)
        self.latency = LatencyHook(Sampler(delays, seed)).install(self._session.events) if delays else None

    @functools.cache  # noqa: B019 - one client per service for the session's lifetime
    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.endpoint_url, config=RETRY_CONFIG)

    def function_environment(self) -> dict[str, str]:
        """What a Lambda process needs to reach the same endpoint."""
        if not self.endpoint_url:
            return {"AWS_DEFAULT_REGION": self.region}
        return {**self.credentials, "AWS_DEFAULT_REGION": self.region, "AWS_ENDPOINT_URL": self.endpoint_url}
