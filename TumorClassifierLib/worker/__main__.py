"""`python -m TumorClassifierLib.worker`: the worker process (server.py)."""

import sys

from .server import main

sys.exit(main())
