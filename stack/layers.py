"""The Powertools Lambda layer; its version is pinned here and nowhere else.

The handlers import ``aws_lambda_powertools`` from the public layer AWS publishes, so the
deployment zip holds only our own code.

Example::

    >>> powertools_layer_arn("eu-west-1")
    'arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:27'
"""

from __future__ import annotations

from pipeline.spec import RUNTIME

# Layer version, not package version: bump it after checking
# `aws lambda list-layer-versions --layer-name <arn without version>` or the Powertools install page.
POWERTOOLS_LAYER_VERSION = 27
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
ARCHITECTURE = "x86_64"


def powertools_layer_arn(region: str) -> str:
    """ARN of the pinned Powertools v3 layer for our runtime and architecture in ``region``."""
    runtime = RUNTIME.replace(".", "")
    return (
        f"arn:aws:lambda:{region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{runtime}-{ARCHITECTURE}:{POWERTOOLS_LAYER_VERSION}"
    )
