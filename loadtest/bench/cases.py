"""The runs a benchmark makes: a fixed matrix, and a smoke case small enough for the test suite."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchCase:
    profile: str
    policies: int

    @property
    def name(self) -> str:
        return f"{self.profile}-{self.policies}"


MATRIX = (BenchCase("tuned", 1500), BenchCase("seed", 1500), BenchCase("tuned", 5000), BenchCase("tuned", 15000))
SMOKE = (BenchCase("tuned", 300),)
MATRICES = {"full": MATRIX, "smoke": SMOKE}
