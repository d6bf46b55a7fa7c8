"""Loss forensics: why each expected record is not in the output, with the evidence for it."""

from ops.forensics.causes import LOSS_CAUSES, Cause, Explained, Forensics, WriterCycle
from ops.forensics.explain import RunEvidence, explain

__all__ = ["LOSS_CAUSES", "Cause", "Explained", "Forensics", "RunEvidence", "WriterCycle", "explain"]
