"""Pulumi components that turn a :class:`pipeline.spec.DeploymentSpec` into AWS resources.

Example (what ``__main__.py`` does)::

    settings = read_settings()
    pipeline = CidbPipeline("cidb", settings.spec)
"""

from stack.config import Notifications, StackConfigError, StackSettings, read_settings
from stack.pipeline import CidbPipeline

__all__ = ["CidbPipeline", "Notifications", "StackConfigError", "StackSettings", "read_settings"]
