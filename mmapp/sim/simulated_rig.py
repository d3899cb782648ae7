"""The simulated rig: Python devices in the rig's core, wired to a simulated
NI card served over gRPC (what `mmapp` starts on by default)."""

from __future__ import annotations

import os

from mmapp.daq.connection import DaqConnection
from mmapp.daq.program import WaveformProgram
from mmapp.daq.render import render
from mmapp.rig.core import RigCore, quiet_adapter_search, set_buffer_mb
from mmapp.rig.errors import RigError
from mmapp.rig.rig import Rig
from mmapp.rig.spec import SIMULATED, DaqSpec, RigSpec
from mmapp.rig.triggers import GENERIC as GENERIC_TRIGGER
from mmapp.sim.camera import SimCamera
from mmapp.sim.daq_device import DeviceSpec as DaqDeviceSpec
from mmapp.sim.daq_device import SimDaqDevice
from mmapp.sim.daq_server import SimDaqServer
from mmapp.sim.devices import SimLasers, SimShutter, SimXYStage, SimZStage
from mmapp.sim.state import SimRigState

# The simulated rig's circular buffer when its rig file does not size it
# (default: the rig file's 1024 MB). The test suite sets 128: a fresh buffer's
# pages are faulted in before the first sequence, which for 1 GiB took 3-12 s
# on the CI's virtual machines, per rig the suite loads.
SIM_BUFFER_ENV = "MMAPP_SIM_BUFFER_MB"


def simulated_buffer_mb(spec: RigSpec) -> int:
    """The rig file's circular_buffer_mb, else $MMAPP_SIM_BUFFER_MB if set."""
    value = os.environ.get(SIM_BUFFER_ENV, "").strip()
    if "circular_buffer_mb" in spec.model_fields_set or not value:
        return spec.circular_buffer_mb
    try:
        size_mb = int(value)
    except ValueError:
        raise RigError(
            f"{SIM_BUFFER_ENV}={value!r} is not a whole number of MB"
        ) from None
    if size_mb < 16:
        raise RigError(f"{SIM_BUFFER_ENV}={size_mb} is below the 16 MB minimum")
    return size_mb


def build_simulated_rig(spec: RigSpec, source: str = "") -> Rig:
    """Load the Python devices of the simulated rig into a fresh core."""
    state = SimRigState()
    c = spec.camera
    camera = SimCamera(
        state,
        width=c.width,
        height=c.height,
        bit_depth=c.bit_depth,
        exposure_ms=c.exposure_ms,
        readout_ms=c.readout_ms,
    )
    camera._trigger_mode = c.trigger_mode
    lasers = SimLasers(state, list(spec.lasers.wavelengths_nm))
    with quiet_adapter_search():
        core = RigCore()
    devices = [
        (c.label, camera),
        (spec.z_stage.label, SimZStage(state)),
        (spec.xy_stage.label, SimXYStage(state)),
        (spec.shutter.label, SimShutter(state)),
        (spec.lasers.label, lasers),
    ]
    for label, device in devices:
        core.loadPyDevice(label, device)
    core.initializeAllDevices()
    core.setCameraDevice(c.label)
    core.setFocusDevice(spec.z_stage.label)
    core.setXYStageDevice(spec.xy_stage.label)
    core.setShutterDevice(spec.shutter.label)
    set_buffer_mb(core, simulated_buffer_mb(spec))
    for nm in spec.lasers.wavelengths_nm:
        for other in spec.lasers.wavelengths_nm:
            core.defineConfig(
                spec.channel_group,
                f"{nm}nm",
                spec.lasers.label,
                f"Laser {other}",
                "On" if other == nm else "Off",
            )
    rig = Rig(
        name=spec.name,
        core=core,
        spec=spec,
        state=state,
        camera=camera,
        lasers=lasers,
        source=source,
        camera_ready=camera.armed.wait,
        camera_fault=lambda: camera.last_error,
        trigger=spec.camera_trigger or GENERIC_TRIGGER,
        light_check=lambda: state.light_level(assume_open=True) > 0,
    )
    rig.abort_hooks.append(camera.abort)
    rig.safe_steps.append(("lasers not switched off", lambda: rig.lasers.all_off()))
    rig.program_hooks.append(lambda program: _enable_lasers(rig, program))
    if spec.daq is not None:
        _connect_daq(rig, spec.daq, state, camera)
    return rig


def _enable_lasers(rig: Rig, program: WaveformProgram) -> None:
    """Before a DAQ run: every laser line the program blanks is on (the blanking
    lines decide when each emits; make_safe turns them off again), and the
    camera renders its oblique slices ahead (the first volume as fast as the
    rest)."""
    spec = rig.spec
    assert spec is not None
    for nm in spec.lasers.wavelengths_nm:
        if any(str(nm) in channel for channel in program.channels):
            rig.core.setProperty(spec.lasers.label, f"Laser {nm}", "On")
    if rig.daq_device is not None:
        rig.camera.prime(lines_during_exposures(program, rig.camera))


def lines_during_exposures(
    program: WaveformProgram, camera: SimCamera
) -> list[dict[str, float]]:
    """What every line plays in the middle of each frame's exposure."""
    r = render(program)
    mid = round(camera.get_exposure() / 2000.0 * r.sample_rate_hz)
    samples = {**r.analog, **{k: v.astype(float) for k, v in r.digital.items()}}
    return [
        {
            line: float(v[min(f.start + mid, r.samples_per_cycle - 1)])
            for line, v in samples.items()
        }
        for f in r.frames
    ]


def _connect_daq(rig: Rig, daq: DaqSpec, state: SimRigState, camera: SimCamera) -> None:
    """Serve the simulated card and wire it to the camera and the lasers."""
    if daq.server != SIMULATED:
        rig.daq = DaqConnection(daq.device, daq.server)
        return
    device = SimDaqDevice(DaqDeviceSpec(name=daq.device))
    try:
        device.connect_edges(
            daq.camera_trigger_line,
            lambda probe, at: camera.trigger.fire(payload=probe, at=at),
        )
        for terminal in (daq.camera_exposure_out,):
            if "/" + terminal.lstrip("/") not in device.spec.terminals():
                raise RigError(f"daq.camera_exposure_out: no terminal {terminal}")
    except RigError:
        raise
    except Exception as exc:
        raise RigError(f"daq.camera_trigger_line: {exc}") from None
    state.add_exposure_listener(
        lambda _i, at: device.input_edge(daq.camera_exposure_out, at)
    )
    state.galvo_line = daq.galvo.line
    state.galvo_um_per_v = daq.galvo.um_per_volt
    state.blanking_lines = dict(daq.laser_lines)
    server = SimDaqServer(device).start()
    rig.daq_device, rig.daq_server = device, server
    rig.daq = DaqConnection(daq.device, server.address)
    rig.close_hooks.append(server.stop)
