"""``python -m skfusemix``: the command line of :mod:`skfusemix.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
