"""``python -m nas``: the ``nas`` command (:func:`nas.cli.main`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
