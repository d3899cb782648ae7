"""`python -m mmapp` entry point."""

from mmapp.cli import entry

entry()
