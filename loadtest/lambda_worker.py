"""Entry point of one function instance process (see :mod:`loadtest.lambda_runtime`)."""

import sys
from multiprocessing.connection import Connection

from loadtest.lambda_runtime import worker_main

if __name__ == "__main__":
    worker_main(Connection(int(sys.argv[1])))
