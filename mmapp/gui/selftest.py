"""`mmapp --selftest`: the window on the simulated rig, driven by its own controls.

Snap, Live, Live with the rig's DAQ waveform program (the real nidaqmx client
and the simulated card), then Start and Stop an acquisition; the dataset is
read back with ndstorage; then one simulated OPM volume is deskewed with the
numba kernels (compiled into the per-user cache: in an installed bundle this
proves numba, llvmlite and a writable cache). Exit 0, or 1 with the reason
(the installer's smoke test).
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mmapp.gui.main_window import MainWindow

SIZE = (256, 192)  # small frames: the test is about the wiring, not the disk
MIN_FRAMES = 100


def check_dataset(path: Path, frames: int, shape: tuple[int, int]) -> str | None:
    """None if the dataset holds `frames` readable, lit images of `shape`, else why
    not (the self-test runs with a laser on: a dark image is a failure)."""
    from mmapp.data.datasets import open_dataset_quietly
    from mmapp.rig.simulated import is_lit

    if not (path / "NDTiff.index").is_file():
        return f"{path} has no NDTiff.index"
    ds = open_dataset_quietly(path)
    try:
        coords = ds.get_image_coordinates_list()
        if len(coords) != frames:
            return f"dataset holds {len(coords)} images, the run saved {frames}"
        dark = 0
        for c in coords:
            img = np.asarray(ds.read_image(**c))
            if img.shape != shape:
                return f"image {c} has shape {img.shape}, expected {shape}"
            dark += not is_lit(img)
        if dark:
            return f"{dark} of {len(coords)} saved images are dark with 488 nm on"
    finally:
        ds.close()
    return None


DESKEW_SHAPE = (64, 64)  # camera rows, columns of the deskewed test volume


def check_deskew() -> str | None:
    """None if one simulated OPM volume deskews into a lit upright volume of
    the geometry's shape, else why."""
    from mmapp.processing import deskew, geometry_for, max_projection
    from mmapp.processing.numba_cache import CACHE_DIR
    from mmapp.resources import default_rig_file
    from mmapp.rig.simulated import DARK_LEVEL, oblique_slice
    from mmapp.rig.spec import read_rig_spec

    spec = read_rig_spec(default_rig_file())
    if spec.program is None:
        return "the bundled rig has no waveform program to deskew"
    geometry = geometry_for(spec, spec.program)
    planes = [
        oblique_slice(
            DESKEW_SHAPE,
            np.uint16,
            geometry.scan_start_um + k * geometry.scan_step_um,
            100.0,
        )
        for k in range(geometry.positions)
    ]
    volume = deskew(np.ascontiguousarray(np.stack(planes)), geometry)
    expected = geometry.output_shape(*DESKEW_SHAPE)
    if volume.shape != tuple(expected):
        return f"deskewed volume has shape {volume.shape}, expected {expected}"
    mip = max_projection(volume)
    if int(mip.max()) < DARK_LEVEL + 100:
        return f"the deskewed volume is dark (max {int(mip.max())})"
    if CACHE_DIR is None or not CACHE_DIR.is_dir():
        return "numba has no writable per-user cache folder"
    return None


def run_selftest(timeout_s: float = 30.0) -> int:
    """Run the self-test; print one line saying how it went."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from mmapp.gui.app import make_app
    from mmapp.gui.main_window import MainWindow
    from mmapp.gui.script import ScriptFailed
    from mmapp.gui.settings import AppSettings

    app = make_app()  # noqa: F841 - kept alive for the whole self-test
    tmp = Path(tempfile.mkdtemp(prefix="mmapp-selftest-"))
    settings = AppSettings.at(
        tmp / "settings.ini"
    )  # the user's settings stay as they are
    settings.save_dir = tmp / "data"
    width, height = SIZE
    window = MainWindow(
        settings,
        rig_path="",
        sim_camera={"width": width, "height": height, "exposure_ms": 2.0},
        restore_layout=False,
    )
    reason: str | None = None
    try:
        window.show()
        if window.rig is None:
            raise ScriptFailed(f"the simulated rig did not load: {window.last_error}")
        reason = _drive(window, timeout_s) or check_deskew()
    except ScriptFailed as exc:
        reason = str(exc)
    except Exception as exc:  # whatever it is, the self-test reports it
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        window.close()
        result = window.last_result
        del window
        gc.collect()
        shutil.rmtree(tmp, ignore_errors=True)
    if reason is None:
        summary = result.summary() if result else ""
        print(
            f"mmapp selftest: ok; {summary} (read back, then removed); "
            "an OPM volume deskewed"
        )
        return 0
    print(f"mmapp selftest: FAILED: {reason}", file=sys.stderr)
    return 1


def _drive(window: MainWindow, timeout_s: float) -> str | None:
    """Click through Snap, Live, Start, Stop; None if all went right, else why."""
    from mmapp.engine.controller import RunOutcome
    from mmapp.gui.script import ScriptFailed, Step, run_steps
    from mmapp.rig.simulated import is_lit

    acq, view = window.acquisition, window.live_view
    marks: dict[str, int] = {}
    dark: list[str] = []  # modes that showed a dark frame with the laser on

    def choose_488() -> None:  # as the operator does: the Channel preset
        combo = window.device_panel.group_boxes.get("Channel")
        if combo is None or combo.findText("488nm") < 0:
            raise ScriptFailed("the simulated rig has no Channel preset 488nm")
        combo.setCurrentText("488nm")
        combo.activated.emit(combo.currentIndex())

    def shown_lit(mode: str, ready: Callable[[], bool]) -> Callable[[], bool]:
        def check() -> bool:
            if not ready():
                return False
            if view.image is None or not is_lit(view.image):
                dark.append(mode)
            return True

        return check

    def live_on() -> None:
        marks["drawn"] = view.frames_drawn
        acq.live_button.click()

    def daq_live_on() -> None:
        acq.use_daq.setChecked(True)
        live_on()

    def daq_live_off() -> None:
        acq.live_button.click()

    def daq_live_ended() -> bool:
        if window.run_kind is not None:
            return False
        acq.use_daq.setChecked(False)
        return True

    def start() -> None:
        acq.mode.setCurrentIndex(0)  # stream until Stop
        acq.start_button.click()

    def saved(n: int) -> bool:
        snap = window.controller.stats() if window.controller else None
        return (
            window.run_kind == "acquire"
            and snap is not None
            and snap.frames_written >= n
        )

    def drawn(n: int) -> Callable[[], bool]:
        return lambda: view.frames_drawn >= marks["drawn"] + n

    run_steps(
        [
            Step("choose 488nm", choose_488, lambda: True, timeout_s),
            Step(
                "snap",
                acq.snap_button.click,
                shown_lit(
                    "Snap", lambda: view.image is not None and acq.state == "idle"
                ),
                timeout_s,
            ),
            Step("live on", live_on, shown_lit("Live", drawn(5)), timeout_s),
            Step(
                "live off",
                acq.live_button.click,
                lambda: window.run_kind is None,
                timeout_s,
            ),
            Step(
                "live with the DAQ program",
                daq_live_on,
                shown_lit("Live with the DAQ program", drawn(5)),
                timeout_s,
            ),
            Step("live with the DAQ off", daq_live_off, daq_live_ended, timeout_s),
            Step("start", start, lambda: saved(MIN_FRAMES), timeout_s),
            Step(
                "stop",
                acq.stop_button.click,
                lambda: window.run_kind is None,
                timeout_s,
            ),
        ]
    )
    result = window.last_result
    if window.last_error is not None:
        return f"the window reported an error: {window.last_error}"
    if result is None:
        return "no acquisition result"
    if result.outcome is not RunOutcome.STOPPED:
        return f"the run ended {result.outcome.value}: {result.message}"
    if dark:
        return f"dark frames with 488 nm on in: {', '.join(dark)}"
    if result.frames_lost or result.frames_saved < MIN_FRAMES or result.dataset is None:
        return f"unexpected counts: {result.summary()}"
    if result.frames_acquired != result.frames_saved + result.frames_rejected:
        return f"counts do not add up: {result.summary()}"
    width, height = SIZE
    return check_dataset(result.dataset, result.frames_saved, (height, width))
