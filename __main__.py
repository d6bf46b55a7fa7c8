"""CIDB Pulumi program: stack configuration -> DeploymentSpec -> AWS resources -> stack outputs."""

import pulumi

from stack import CidbPipeline, read_settings

settings = read_settings()
pipeline = CidbPipeline("cidb", settings.spec)
# Monitoring goes here: a component reading `pipeline` (see CidbPipeline) and `settings.notifications`.
for name, value in pipeline.outputs.items():
    pulumi.export(name, value)
