"""The environment variable names and output modes the handlers read, in one place.

The spec writes each function's environment with these names and :mod:`pipeline.settings`
reads them back, so infrastructure and runtime cannot drift apart. What each one means, and
its default, is in :mod:`pipeline.settings`.
"""

ENV_BUCKET = "CIDB_BUCKET"
ENV_TOPIC_ARN = "CIDB_TOPIC_ARN"
ENV_RUN_TABLE = "CIDB_RUN_TABLE"
ENV_OUTPUT_MODE = "CIDB_OUTPUT_MODE"
ENV_MAX_ROWS = "MAX_ROWS_PER_FILE"
ENV_PUBLISH_MAX_ATTEMPTS = "PUBLISH_MAX_ATTEMPTS"
ENV_LOCK_TIMEOUT = "LOCK_TIMEOUT_SECONDS"
ENV_LOCK_MAX_ATTEMPTS = "LOCK_MAX_ATTEMPTS"
ENV_LOCK_BASE_BACKOFF = "LOCK_BASE_BACKOFF_SECONDS"
ENV_LOCK_JITTER = "LOCK_JITTER_FACTOR"
ENV_LOCK_MAX_BACKOFF = "LOCK_MAX_BACKOFF_SECONDS"
ENV_RUN_GRACE = "RUN_GRACE_SECONDS"
ENV_RETRY_BASE = "RETRY_BASE_SECONDS"
ENV_RETRY_MAX = "RETRY_MAX_SECONDS"

OUTPUT_MODE_FENCED = "fenced"
OUTPUT_MODE_SEED = "seed-overwrite"
OUTPUT_MODES = (OUTPUT_MODE_FENCED, OUTPUT_MODE_SEED)
