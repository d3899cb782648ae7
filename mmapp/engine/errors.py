"""Why a run ended badly, in words an operator can act on."""

from __future__ import annotations


class AcquisitionError(RuntimeError):
    """Base class: the run ended with an error."""


class BufferOverflowError(AcquisitionError):
    """The camera's circular buffer overflowed: frames were lost."""


class CameraTimeoutError(AcquisitionError):
    """The camera delivered no frame within the timeout (e.g. no trigger)."""


class CameraStoppedError(AcquisitionError):
    """The camera stopped before delivering every expected frame."""


class DeviceError(AcquisitionError):
    """A device reported a fault during the run."""


class UnsafeRigError(AcquisitionError):
    """The rig could not be made safe (lasers, shutter, galvo park, DAQ tasks)."""


class DaqFailedError(AcquisitionError):
    """The DAQ card failed during the run (unreachable, or it would not stop)."""


class DiskNearlyFullError(AcquisitionError):
    """The run was stopped before its disk filled (every frame taken is saved)."""
