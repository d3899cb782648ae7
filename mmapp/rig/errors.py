"""Why a rig cannot be loaded or made safe."""

from __future__ import annotations


class RigError(ValueError):
    """A rig file or Micro-Manager config that cannot be loaded."""


class RigSafetyError(RuntimeError):
    """A step of the rig's safe state failed (the message names each)."""
