"""Moved to `mmapp.sim.daq.server` (kept for existing imports)."""

from mmapp.sim.daq.server import *  # noqa: F403
