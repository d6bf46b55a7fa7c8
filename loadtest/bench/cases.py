"""The runs a benchmark makes: a fixed matrix, and a smoke case small enough for the test suite."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchCase:
    profile: str
    policies: int
    latency: str = "none"  # a loadtest.latency profile; its name ends the case's (tuned-1500-aws)

    @property
    def name(self) -> str:
        suffix = "" if self.latency == "none" else f"-{self.latency}"
        return f"{self.profile}-{self.policies}{suffix}"


# tuned and seed at 1500 run twice: on the emulator as it is, and under the AWS latency profile.
MATRIX = (
    BenchCase("tuned", 1500),
    BenchCase("seed", 1500),
    BenchCase("tuned", 1500, "aws"),
    BenchCase("seed", 1500, "aws"),
    BenchCase("tuned", 5000),
    BenchCase("tuned", 15000),
)
SMOKE = (BenchCase("tuned", 300),)
MATRICES = {"full": MATRIX, "smoke": SMOKE}
