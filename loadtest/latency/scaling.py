"""How many pollers an SQS event source mapping may run, as a function of time since it started.

Lambda's documentation ("Configuring scaling behavior for SQS event source mappings", see
docs/latency.md): for standard queues Lambda starts with five concurrent batches, adds up to 300
more instances per minute while messages are available, and runs at most 1,000 batches at once.
The ramp stops at the mapping's maximum concurrency when one is set; where none is set, the
emulator stops it at :data:`EMULATOR_CEILING`, because each instance here is a process of
60-100 MB on a 2-core machine.
"""

from __future__ import annotations

from dataclasses import dataclass

# The emulator's cap for a mapping with no maximum concurrency, under a latency profile that scales.
EMULATOR_CEILING = 50


@dataclass(frozen=True)
class PollerScaling:
    initial: int = 5  # concurrent batches when messages first become available
    per_minute: int = 300  # instances added per minute while messages remain
    aws_maximum: int = 1000  # the most batches one mapping processes at once

    def allowed(self, elapsed_seconds: float, cap: int) -> int:
        """Pollers allowed ``elapsed_seconds`` after the mapping started, never more than ``cap``."""
        ramped = self.initial + int(self.per_minute * max(0.0, elapsed_seconds) / 60)
        return min(cap, self.aws_maximum, ramped)

    def cap(self, max_concurrency: int | None) -> tuple[int, str]:
        """The pollers a mapping may reach, and what capped it: its own maximum, or the emulator's ceiling."""
        if max_concurrency is not None:
            return max_concurrency, "the mapping's maximum concurrency"
        ceiling = min(EMULATOR_CEILING, self.aws_maximum)
        return ceiling, f"the emulator's ceiling ({ceiling}; AWS would go on to {self.aws_maximum})"


SQS_STANDARD = PollerScaling()
