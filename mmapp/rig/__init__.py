"""The rig: rig files, loading a rig (simulated or a Micro-Manager `.cfg`) into
one core class, its safe state. What real and simulated rigs share.

Only `mmapp.rig.loader` (and `mmapp.rig.simulated`, for the simulated rig's
tools) reach into `mmapp.sim`; everything else uses the names below.
"""

from mmapp.rig.core import RigCore, set_buffer_mb
from mmapp.rig.errors import RigError, RigSafetyError
from mmapp.rig.loader import build_simulated_rig, load_rig
from mmapp.rig.mm_config import adapter_search_description, mm_config_error
from mmapp.rig.rig import Rig
from mmapp.rig.spec import (
    SIMULATED,
    CameraSpec,
    DaqSpec,
    GalvoSpec,
    LasersSpec,
    OpmSpec,
    RigSpec,
    read_rig_spec,
)

__all__ = [
    "SIMULATED",
    "CameraSpec",
    "DaqSpec",
    "GalvoSpec",
    "LasersSpec",
    "OpmSpec",
    "Rig",
    "RigCore",
    "RigError",
    "RigSafetyError",
    "RigSpec",
    "adapter_search_description",
    "build_simulated_rig",
    "load_rig",
    "mm_config_error",
    "read_rig_spec",
    "set_buffer_mb",
]
