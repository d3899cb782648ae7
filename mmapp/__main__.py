"""`python -m mmapp` entry point."""

import sys

from mmapp.cli import main

sys.exit(main())
