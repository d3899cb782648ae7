"""Shared fixtures: a small simulated rig, cleaned up the way the app does it."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from helpers import HEIGHT, WIDTH
from nidaqmx.grpc_session_options import GrpcSessionOptions

from mmapp.engine.controller import RunController
from mmapp.rig import Rig, load_rig
from mmapp.sim.daq_device import SimDaqDevice
from mmapp.sim.daq_server import SimDaqServer


@pytest.fixture(autouse=True)
def _config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mmapp's config (recent presets) goes under tmp_path, never the user's."""
    monkeypatch.setenv("MMAPP_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture
def rig() -> Iterator[Rig]:
    """The simulated rig with small frames and a short exposure."""
    r = load_rig(width=WIDTH, height=HEIGHT, exposure_ms=1.0)
    yield r
    r.close()
    del r
    gc.collect()


@pytest.fixture
def controller(rig: Rig) -> Iterator[RunController]:
    """A run controller on the rig; any run still going is stopped at the end."""
    c = RunController(rig)
    yield c
    c.stop()
    c.wait(10)


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, emptied afterwards (unfinished datasets hold 4 GiB sparse files)."""
    yield tmp_path
    for child in tmp_path.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


# --- a Micro-Manager rig: the C++ DemoCamera adapter, built from ../shared/vendor ---

DEMO_CFG = """\
# mmapp test rig: Micro-Manager's DemoCamera devices (C++ adapters)
Property,Core,Initialize,0
Device,Camera,DemoCamera,DCam
Device,Z,DemoCamera,DStage
Device,XY,DemoCamera,DXYStage
Device,Shutter,DemoCamera,DShutter
Device,Wheel,DemoCamera,DWheel
Property,Core,Initialize,1
Property,Camera,OnCameraCCDXSize,{width}
Property,Camera,OnCameraCCDYSize,{height}
Property,Camera,PixelType,16bit
Property,Camera,Mode,Artificial Waves
Property,Camera,Exposure,{exposure_ms}
Label,Wheel,0,Blue
Label,Wheel,1,Green
ConfigGroup,Channel,Blue,Wheel,Label,Blue
ConfigGroup,Channel,Green,Wheel,Label,Green
Property,Core,Camera,Camera
Property,Core,Focus,Z
Property,Core,XYStage,XY
Property,Core,Shutter,Shutter
Property,Core,AutoShutter,1
"""


@pytest.fixture(scope="session")
def mm_adapter_path() -> Path:
    """Folder with the built DemoCamera adapter (skips without a C++ compiler)."""
    from mm_adapters import adapter_dir

    return adapter_dir()


@pytest.fixture
def democam_cfg(
    tmp_path: Path, mm_adapter_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A Micro-Manager .cfg of DemoCamera devices; MMCore finds the adapter
    through MICROMANAGER_PATH (as on a rig PC), also in child processes."""
    monkeypatch.setenv("MICROMANAGER_PATH", str(mm_adapter_path))
    cfg = tmp_path / "democam.cfg"
    cfg.write_text(
        DEMO_CFG.format(width=WIDTH, height=HEIGHT, exposure_ms=2.0), encoding="utf-8"
    )
    return cfg


@pytest.fixture
def democam_rig(democam_cfg: Path) -> Iterator[Rig]:
    """The DemoCamera rig, loaded through mmapp's own .cfg loading path."""
    r = load_rig(democam_cfg)
    yield r
    r.close()
    del r
    gc.collect()


@pytest.fixture
def democam_controller(democam_rig: Rig) -> Iterator[RunController]:
    """A run controller on the DemoCamera rig; a run still going is stopped."""
    c = RunController(democam_rig)
    yield c
    c.stop()
    c.wait(10)


@pytest.fixture
def card() -> Iterator[tuple[SimDaqDevice, GrpcSessionOptions]]:
    """A simulated card on an ephemeral port and client options for it."""
    device = SimDaqDevice()
    server = SimDaqServer(device).start()
    channel = grpc.insecure_channel(server.address)
    yield device, GrpcSessionOptions(grpc_channel=channel, session_name="")
    channel.close()
    server.stop()
