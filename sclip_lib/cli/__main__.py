"""``python -m sclip_lib.cli`` (and ``torchrun -m sclip_lib.cli``): the ``sclip`` command."""

import sys

from . import main

sys.exit(main())
