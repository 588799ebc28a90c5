"""`python -m pipeline.cli ...` is `ccpipe ...`."""

import sys

from pipeline.cli import main

sys.exit(main())
