"""`python -m impasto` is the same as the `impasto` command."""

import sys

from .cli import main

sys.exit(main())
