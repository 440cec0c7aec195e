"""`python -m shadow`: the same as the `shadow` command."""

import sys

from shadow.cli import main

if __name__ == "__main__":  # the mirror worker, spawned, imports this module again
    sys.exit(main())
