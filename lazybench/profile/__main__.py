"""``python -m lazybench.profile ...``: the same command as ``lazybench profile ...``."""

import sys

from lazybench.profile.cli import main

sys.exit(main())
