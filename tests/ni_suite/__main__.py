"""`python -m tests.ni_suite`: see run.py."""

import sys

from tests.ni_suite.run import main

sys.exit(main())
