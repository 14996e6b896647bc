"""``python -m ipyrecorder``: the same CLI as the ``ipyrecorder`` command."""

import sys

from .cli import main

sys.exit(main())
