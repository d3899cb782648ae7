"""The acquisition engine: StreamingEngine (an MDAEngine that streams frames
out of the camera's buffer), RunController (one run on its own thread, Stop
from any thread, a RunResult that says how it ended), the DAQ link, and
presets meeting the rig (open_rig, prepare_run, build_run_request). Qt-free.
"""

from mmapp.engine.controller import (
    RUN_RECORD_FILE,
    RunController,
    RunOutcome,
    RunRequest,
    RunResult,
)
from mmapp.engine.daq_link import (
    PROGRAM_CHANGES_FILE,
    DaqLink,
    DaqOutOfStepError,
    DaqProgramError,
    program_change_volumes,
)
from mmapp.engine.engine import StreamingEngine
from mmapp.engine.errors import (
    AcquisitionError,
    BufferOverflowError,
    CameraStoppedError,
    CameraTimeoutError,
    DaqFailedError,
    DeviceError,
    DiskNearlyFullError,
    UnsafeRigError,
)
from mmapp.engine.events import stream_event
from mmapp.engine.plans import build_events
from mmapp.engine.preset_run import (
    DatasetExistsError,
    RigMismatchError,
    RunRefusedError,
    apply_preset_to_rig,
    build_run_request,
    open_rig,
    prepare_run,
    preset_from_dataset,
    run_settings,
    save_preset_with_dataset,
)

__all__ = [
    "PROGRAM_CHANGES_FILE",
    "RUN_RECORD_FILE",
    "AcquisitionError",
    "BufferOverflowError",
    "CameraStoppedError",
    "CameraTimeoutError",
    "DaqFailedError",
    "DaqLink",
    "DaqOutOfStepError",
    "DaqProgramError",
    "DatasetExistsError",
    "DeviceError",
    "DiskNearlyFullError",
    "RigMismatchError",
    "RunController",
    "RunOutcome",
    "RunRefusedError",
    "RunRequest",
    "RunResult",
    "StreamingEngine",
    "UnsafeRigError",
    "apply_preset_to_rig",
    "build_events",
    "build_run_request",
    "open_rig",
    "prepare_run",
    "preset_from_dataset",
    "program_change_volumes",
    "run_settings",
    "save_preset_with_dataset",
    "stream_event",
]
