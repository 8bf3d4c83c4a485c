"""`python -m node.serving`: one serving worker process (started by the control process only)."""

from __future__ import annotations

import sys

from node.serving.worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
