"""Moved to `mmapp.sim.daq.card` (kept for existing imports)."""

from mmapp.sim.daq.card import *  # noqa: F403
