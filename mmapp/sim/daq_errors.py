"""Moved to `mmapp.sim.daq.errors` (kept for existing imports)."""

from mmapp.sim.daq.errors import *  # noqa: F403
