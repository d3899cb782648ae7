"""The main window: device panel, live view, acquisition panel, log; menus.

Runs go through :class:`RunController` (its own thread). The window polls
`latest_frame()` and `stats()` on timers and learns that a run ended from one
Qt signal per run; frames never travel as Qt signals.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, Qt, QTimer, QUrl, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QDesktopServices
from PyQt6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from mmapp.daq.program import WaveformProgram
from mmapp.engine.controller import RunController, RunOutcome, RunRequest, RunResult
from mmapp.engine.events import stream_event
from mmapp.engine.preset_run import (
    RigMismatchError,
    apply_preset_to_rig,
    existing_datasets,
    open_rig,
    rig_path,
    run_settings,
    same_rig,
    save_preset_with_dataset,
)
from mmapp.gui.about import about_text
from mmapp.gui.acquisition_panel import (
    MODE_MDA,
    AcquisitionPanel,
    AcquisitionPlan,
    disk_free_bytes,
)
from mmapp.gui.daq_program import (
    ProgramLink,
    ProgramRefused,
    check_frame_count,
    frames_per_cycle,
)
from mmapp.gui.designer import WaveformDesigner
from mmapp.gui.device_panel import DevicePanel
from mmapp.gui.live_view import LiveView
from mmapp.gui.log_panel import LogPanel
from mmapp.gui.menus import build_menus
from mmapp.gui.preset_bridge import PresetExtras, window_preset
from mmapp.gui.preset_files import PresetFiles
from mmapp.gui.processing_panel import ProcessingPanel
from mmapp.gui.recovery import DatasetRecovery
from mmapp.gui.scroll import FormScrollArea
from mmapp.gui.settings import AppSettings
from mmapp.presets import ApplyError, Preset, RecentPresets
from mmapp.processing import ProcessingChain
from mmapp.resources import default_rig_file
from mmapp.rig import Rig, RigError, load_rig, read_rig_spec

logger = logging.getLogger("mmapp.gui")

STATS_HZ = 10
DISK_EVERY_TICKS = 10  # disk free once a second
CLOSE_WAIT_S = 15.0  # on exit: a log line each time a run takes this long to end
SNAP_WAIT_S = 30.0  # on exit: how long a snap in progress may take
# The simulated rig's file says 2048x2048; the window starts it smaller so Live is
# snappy on any machine (a rig file of your own is used as written).
DEFAULT_SIM_CAMERA: dict[str, object] = {"width": 512, "height": 512}


class _Bridge(QObject):
    """Hands results from worker threads to the GUI thread (one per run or snap)."""

    run_finished = pyqtSignal(object)  # RunResult
    snapped = pyqtSignal(object, object)  # np.ndarray, the rig it came from
    snap_failed = pyqtSignal(str, object)  # message, the rig
    program_applied = pyqtSignal(object, object)  # status text or None, error or None


class MainWindow(QMainWindow):
    """mmapp's main window on one rig at a time."""

    def __init__(
        self,
        settings: AppSettings | None = None,
        *,
        rig: Rig | None = None,
        rig_path: str | None = None,
        sim_camera: dict[str, object] | None = None,
        restore_layout: bool = True,
        recent_presets: RecentPresets | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.sim_camera = dict(DEFAULT_SIM_CAMERA if sim_camera is None else sim_camera)
        self.rig: Rig | None = None
        self.controller: RunController | None = None
        self.preset_name: str | None = None
        self.run_kind: str | None = None  # "live" or "acquire" while running
        self.plan: AcquisitionPlan | None = None
        self.last_result: RunResult | None = None
        self.last_error: tuple[str, str] | None = None
        self._pending: AcquisitionPlan | None = None  # Start pressed during Live
        self._restart_live = False  # a camera setting changed during Live
        self._handled: RunResult | None = None
        self._ticks = 0
        self._closed = False
        self._bridge = _Bridge(self)
        self._bridge.run_finished.connect(self._on_run_finished)
        self._bridge.snapped.connect(self._on_snapped)
        self._bridge.snap_failed.connect(self._on_snap_failed)
        self._bridge.program_applied.connect(self._on_program_applied)
        self._error_box: QMessageBox | None = None
        self._snap_thread: threading.Thread | None = None
        self._quit_when_done = False  # a close waits for the run to finish
        self.confirm_close = False  # the app sets it: ask before quitting a run
        self.preset_extras = PresetExtras()
        self.preset_files = PresetFiles(self, recent_presets)
        self.program_link = ProgramLink(
            lambda: self.rig, lambda: self.controller, WaveformProgram()
        )
        self._run_preset: Preset | None = None  # saved next to the run's dataset

        self.setObjectName("mmappMainWindow")
        self.resize(1400, 900)
        self.live_view = LiveView(self._latest_frame, self._run_info)
        self.setCentralWidget(self.live_view)
        self.device_panel = DevicePanel(self.report_error)
        self.acquisition = AcquisitionPanel()
        self.log_panel = LogPanel()
        self.log_panel.attach()
        self.designer = WaveformDesigner(apply_handler=self._apply_program)
        self.processing_panel = ProcessingPanel()
        self.processing_panel.chain_changed.connect(self._on_chain_changed)
        self.docks = {
            "devices": self._dock("Devices", self.device_panel, "left"),
            "acquisition": self._dock(
                "Acquisition", FormScrollArea(self.acquisition), "right"
            ),
            # a tab beside Devices: the whole height for its form, and the
            # Acquisition dock keeps the right column (Start always in view)
            "processing": self._dock(
                "Processing", FormScrollArea(self.processing_panel), "left"
            ),
            "log": self._dock("Log", self.log_panel, "bottom"),
            "daq": self._dock("DAQ program", self.designer, "bottom"),
        }
        self.tabifyDockWidget(self.docks["log"], self.docks["daq"])
        self.docks["log"].raise_()
        self.tabifyDockWidget(self.docks["devices"], self.docks["processing"])
        self.docks["devices"].raise_()
        self.acquisition.save_dir.setText(str(self.settings.save_dir))
        self.acquisition.name_template.setText(self.settings.name_template)
        self.device_panel.camera_changed.connect(self._on_camera_changed)
        self.acquisition.snap_clicked.connect(self.snap)
        self.acquisition.live_toggled.connect(self.set_live)
        self.acquisition.start_clicked.connect(self.start)
        self.acquisition.stop_clicked.connect(self.stop)
        self.recovery = DatasetRecovery(self, self.acquisition.save_dir.text)
        self.menus = build_menus(self)
        # names the tests and the presets work use
        self.actions_by_name = self.menus.acquire
        self.presets_menu = self.menus.presets
        self.preset_actions = self.menus.preset_actions
        self.open_last_action = self.menus.open_last_dataset
        self.resizeDocks(
            [self.docks["devices"], self.docks["acquisition"]],
            [380, 400],
            Qt.Orientation.Horizontal,
        )
        self.resizeDocks([self.docks["log"]], [220], Qt.Orientation.Vertical)
        self._default_state = self.saveState()
        if restore_layout:
            self._restore_layout()

        self.stats_timer = QTimer(self)
        self.stats_timer.setInterval(1000 // STATS_HZ)
        self.stats_timer.timeout.connect(self._tick)
        self.stats_timer.start()

        if rig is not None:
            self.set_rig(rig)
        else:
            path = rig_path if rig_path is not None else self.settings.last_rig
            if not self.open_rig(path or None) and path:
                self.open_rig(None)  # the last rig failed: the simulated one

    # --- building ----------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, side: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        area = {
            "left": Qt.DockWidgetArea.LeftDockWidgetArea,
            "right": Qt.DockWidgetArea.RightDockWidgetArea,
            "bottom": Qt.DockWidgetArea.BottomDockWidgetArea,
        }[side]
        self.addDockWidget(area, dock)
        return dock

    def _on_chain_changed(self, chain: ProcessingChain) -> None:
        """The Processing panel's edit: the chain the next run (and Save) uses."""
        self.preset_extras = replace(self.preset_extras, processing=chain)

    # --- rig ----------------------------------------------------------------------
    def open_rig(self, path: str | None) -> bool:
        """Load a rig file / .cfg (None: the simulated rig); keep the old on failure."""
        if not self.is_idle():
            self.report_error(
                "Cannot change the rig",
                "Stop Live or the acquisition (or let the snap finish) first.",
            )
            return False
        self.setCursor(Qt.CursorShape.WaitCursor)
        try:
            rig = load_rig(path) if path else load_rig(None, **self.sim_camera)
        except Exception as exc:
            self.report_error(f"Could not load {path or 'the simulated rig'}", str(exc))
            return False
        finally:
            self.unsetCursor()
        self.set_rig(rig)
        self.settings.last_rig = path or ""
        logger.info("rig loaded: %s (%s)", rig.name, path or "simulated")
        return True

    def set_rig(self, rig: Rig) -> None:
        """Use `rig` from now on (the previous rig is made safe and closed)."""
        self._close_rig()
        self.rig = rig
        self.controller = RunController(rig)
        bridge = self._bridge

        def relay(result: RunResult) -> None:  # run thread -> queued to the GUI
            with contextlib.suppress(RuntimeError):  # the window is already gone
                bridge.run_finished.emit(result)

        self.controller.finished.connect(relay)
        core = rig.core
        self.device_panel.trigger_property = rig.trigger.property
        self.device_panel.set_core(core)
        group = rig.spec.channel_group if rig.spec else core.getChannelGroup()
        if group not in core.getAvailableConfigGroups():
            group = ""
        self.acquisition.set_channels(
            group, list(core.getAvailableConfigs(group)) if group else []
        )
        self.acquisition.set_rig_name(rig.name)
        self.live_view.set_source(self._latest_frame, self._run_info)
        if rig.daq is not None:
            self.designer.set_device(rig.daq.device)
        program = rig.spec.program if rig.spec is not None else None
        self.set_program(program or self.program_link.program)
        self._set_state("idle")
        self.update_title()

    def _close_rig(self) -> None:
        controller, rig = self.controller, self.rig
        snap = self._snap_thread
        if snap is not None and snap.is_alive():  # never unload under a snap
            snap.join(SNAP_WAIT_S)
            if snap.is_alive():
                logger.error("a snap did not end within %.0f s", SNAP_WAIT_S)
        if controller is not None:
            controller.stop()
            result = controller.wait(CLOSE_WAIT_S)
            while controller.running:  # never unload a core its run still uses
                logger.warning(
                    "the run has not ended after %.0f s (finishing its dataset); "
                    "waiting before the rig is unloaded",
                    CLOSE_WAIT_S,
                )
                result = controller.wait(CLOSE_WAIT_S)
            with contextlib.suppress(Exception):
                controller.finished.disconnect()
            if result is not None and self.run_kind == "acquire":
                logger.info("acquisition %s", result.summary())
            self._handled = result  # its queued signal finds nothing left to do
            self.run_kind = None
        self.controller = None
        self.rig = None
        self.device_panel.set_core(None)
        if rig is not None:
            try:
                rig.close()
            except Exception as exc:
                logger.error("closing the rig failed: %s", exc)
            del rig
            gc.collect()  # drop the core now (see DESIGN.md)

    def is_idle(self) -> bool:
        """No run, no snap: the rig may be changed."""
        running = self.controller is not None and self.controller.running
        return not running and self.acquisition.state == "idle"

    def make_safe(self) -> None:
        """Lasers off and shutter closed, now."""
        if self.rig is None:
            return
        try:
            self.rig.make_safe()
        except Exception as exc:
            self.report_error("THE RIG IS NOT SAFE", str(exc))
        else:
            logger.info("rig made safe: lasers off, shutter closed")
        self.device_panel.refresh()

    def choose_rig(self) -> None:
        """Ask for a rig file or .cfg and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open rig",
            str(Path(self.settings.last_rig).parent) if self.settings.last_rig else "",
            "Rig files (*.json *.cfg);;All files (*)",
        )
        if path:
            self.open_rig(path)

    # --- presets ----------------------------------------------------------------
    def set_preset_name(self, name: str | None) -> None:
        """The preset in use (None: untitled)."""
        self.preset_name = name
        self.acquisition.preset_name = name or "untitled"
        self.acquisition.refresh_preview()
        self.update_title()

    def adopt_preset_rig(self, preset: Preset) -> bool:
        """Put the preset's rig and device settings in place, all or nothing.

        The loaded rig takes the settings if it is the preset's rig; otherwise
        the preset's rig replaces it (and the old one comes back if that fails).
        """
        rig = self.rig
        if rig is not None and same_rig(preset, rig):
            try:
                apply_preset_to_rig(preset, rig)
            except (ApplyError, RigMismatchError) as exc:
                self.report_error(
                    f"Could not open the preset {preset.name!r}", str(exc)
                )
                return False
            self.device_panel.refresh()
            return True
        path = rig_path(preset)
        title = f"Could not open the preset {preset.name!r}"
        if not path.is_file():
            self.report_error(title, f"its rig file {path} does not exist")
            return False
        if path.suffix.lower() != ".cfg":
            try:  # a rig file that does not read never costs the loaded rig
                read_rig_spec(path)
            except RigError as exc:
                self.report_error(title, f"its rig file {path}: {exc}")
                return False
        hardware = path.suffix.lower() == ".cfg" or (
            rig is not None and rig.spec is None
        )
        previous, program = self.settings.last_rig or None, self.program
        if hardware:  # a Micro-Manager rig holds ports and cameras: one at a time
            self._close_rig()
        self.setCursor(Qt.CursorShape.WaitCursor)
        try:
            new = open_rig(preset)
        except Exception as exc:
            self.unsetCursor()
            if not hardware:  # rig files load beside the rig: it is untouched
                self.report_error(
                    title,
                    f"its rig {path} did not load: {exc} (the loaded rig is as it was)",
                )
                return False
            self.report_error(
                title,
                f"its rig {path} did not load: {exc}. The previous rig was loaded "
                f"again from its file (settings made on it since it was loaded are "
                f"not restored).",
            )
            if not self.open_rig(previous) and previous:
                self.open_rig(None)
            self.set_program(program)
            return False
        self.unsetCursor()
        self.set_rig(new)
        default = path.resolve() == default_rig_file().resolve()
        self.settings.last_rig = "" if default else str(path)
        logger.info("rig loaded for the preset: %s (%s)", new.name, path)
        return True

    # --- the DAQ program ----------------------------------------------------------
    @property
    def program(self) -> WaveformProgram:
        """The waveform program Start and Live play when the DAQ box is ticked."""
        return self.program_link.program

    def set_program(self, program: WaveformProgram) -> None:
        """A new program for the designer and the next run (not checked on the card)."""
        self.program_link.program = program
        self.designer.set_program(program)
        self._show_daq_state()

    def _apply_program(self, program: WaveformProgram) -> str | None:
        """The designer's Apply (raises ProgramRefused with the reason).

        While a run plays the program, the change is written to the card on a
        worker thread (on a real card a regenerating buffer's write can block
        for up to a volume): None now, the designer hears the result later.
        """
        link, controller = self.program_link, self.controller
        if link.playing and controller is not None and controller.running:
            try:  # what the card cannot take is refused at once
                controller.check_program_change(program)
            except Exception as exc:
                logger.error("DAQ program not applied: %s", exc)
                raise ProgramRefused(str(exc)) from None
            bridge = self._bridge

            def work() -> None:
                try:
                    bridge.program_applied.emit(link.apply(program), None)
                except Exception as exc:
                    bridge.program_applied.emit(None, str(exc) or type(exc).__name__)

            threading.Thread(target=work, name="mmapp-apply", daemon=True).start()
            return None
        try:
            text = link.apply(program)
        except Exception as exc:  # said in the designer and kept in the Log
            logger.error("DAQ program not applied: %s", exc)
            raise
        if not self.program_link.playing and self.acquisition.state == "idle":
            self.acquisition.use_daq.setChecked(True)
        self._show_daq_state()
        logger.info("DAQ program: %s", text)
        return text

    def _on_program_applied(self, text: str | None, error: str | None) -> None:
        """GUI thread: an Apply written off the GUI thread has ended."""
        if error is not None:
            logger.error("DAQ program not applied: %s", error)
            self.designer.apply_failed(error)
        else:
            logger.info("DAQ program: %s", text)
            self.designer.apply_done(text or "Applied")
        self._show_daq_state()

    def unapplied_program(self) -> str | None:
        """Why the designer's draft keeps a run from playing the program, if it does."""
        draft = self.designer.program()
        if draft is None:
            errors = "; ".join(
                f"{'.'.join(map(str, p)) or 'program'}: {why}"
                for p, why in self.designer.errors().items()
            )
            return f"the DAQ program in the designer is not valid ({errors})"
        if draft != self.program:
            return (
                "the DAQ program has changes that are not applied: Apply them "
                "(or undo them) first"
            )
        return None

    def _show_daq_state(self) -> None:
        has_daq = self.rig is not None and self.rig.daq is not None
        self.acquisition.set_daq_available(has_daq, frames_per_cycle(self.program))

    def update_title(self) -> None:
        """'mmapp — <rig> — <preset or untitled>'."""
        rig = self.rig.name if self.rig is not None else "no rig"
        self.setWindowTitle(f"mmapp — {rig} — {self.preset_name or 'untitled'}")

    # --- frames for the live view ---------------------------------------------------
    def _latest_frame(self) -> object | None:
        controller = self.controller
        return controller.latest_frame() if controller is not None else None

    def _run_info(self) -> tuple[int, float] | None:
        """(frames received, pressure 0..1: how full the queue or camera buffer is)."""
        controller = self.controller
        if controller is None or not controller.running:
            return None
        snap = controller.stats()
        if snap is None:
            return None
        queue = snap.queue_bytes / snap.queue_capacity_bytes
        return snap.frames_in, max(queue, snap.buffer_fill)

    # --- snap -------------------------------------------------------------------------
    def snap(self) -> None:
        """Snap one frame through the core on a worker thread, then show it."""
        if self.rig is None or self.acquisition.state != "idle":
            return
        if not self._has_camera("snap"):
            return
        self.device_panel.reapply_choices(self.acquisition.channel_group)
        self._set_state("busy")
        rig, bridge = self.rig, self._bridge
        core = rig.core

        def work() -> None:
            try:
                core.snapImage()
                bridge.snapped.emit(np.array(core.getImage(), copy=True), rig)
            except Exception as exc:
                bridge.snap_failed.emit(str(exc) or type(exc).__name__, rig)

        self._snap_thread = threading.Thread(
            target=work, name="mmapp-snap", daemon=True
        )
        self._snap_thread.start()

    def _on_snapped(self, image: np.ndarray, rig: Rig) -> None:
        if rig is not self.rig or self.acquisition.state != "busy":
            return  # a snap of a rig that has gone since
        self.live_view.show_image(image)
        self._set_state("idle")
        self.acquisition.show_snap(
            f"snapped {image.shape[1]}x{image.shape[0]} {image.dtype} (not saved)"
        )

    def _on_snap_failed(self, message: str, rig: Rig) -> None:
        if rig is not self.rig or self.acquisition.state != "busy":
            return
        self._set_state("idle")
        self.report_error("Snap failed", message)

    # --- live, start, stop ----------------------------------------------------------
    def toggle_live(self) -> None:
        """Live on if idle, off if live."""
        self.set_live(self.run_kind != "live")

    def set_live(self, on: bool) -> None:
        """Stream to the display only (nothing is saved) until Live is turned off."""
        if not on:
            if self.run_kind == "live":
                self.stop()
            return
        if self.acquisition.state != "idle" or self.controller is None:
            self.acquisition.set_state(self.acquisition.state)  # undo the toggle
            return
        use_daq = (
            self.acquisition.use_daq.isChecked()
            and self.acquisition.use_daq.isEnabled()
        )
        if use_daq and (problem := self.unapplied_program()):
            self.acquisition.set_state(self.acquisition.state)  # undo the toggle
            self.report_error("Cannot start Live", problem)
            return
        request = RunRequest(
            [stream_event()],
            out_dir=self.settings.save_dir,
            name="live",
            save=False,
            program=self.program if use_daq else None,
        )
        self._start_request(request, "live")

    def start(self) -> None:
        """Start the acquisition the panel describes (after Live, if it is on)."""
        if self.controller is None or self.acquisition.state not in ("idle", "live"):
            return
        try:
            plan = self.acquisition.plan()
        except ValueError as exc:
            self.report_error("Cannot start", str(exc))
            return
        self.settings.save_dir = plan.out_dir
        self.settings.name_template = self.acquisition.name_template.text()
        if self.run_kind == "live":
            self._pending = plan  # starts once Live has stopped
            self.stop()
            return
        self._start_plan(plan)

    def _start_plan(self, plan: AcquisitionPlan) -> None:
        rig = self.rig
        assert rig is not None
        program = self.program if plan.use_daq else None
        if program is not None:
            try:
                problem = self.unapplied_program()
                if problem:
                    raise ProgramRefused(problem)
                check_frame_count(program, plan.expected_frames)
            except ProgramRefused as exc:
                self.report_error("Cannot start", str(exc))
                return
        if self.preset_extras.if_exists == "error" and (
            taken := existing_datasets(plan.out_dir, plan.name)
        ):
            self.report_error(
                "Cannot start",
                f"the preset's storage.if_exists is 'error' and a dataset named "
                f"{plan.name!r} is already in {plan.out_dir} ({taken[0].name})",
            )
            return
        preset = self._preset_for_run(plan.out_dir)
        settings = run_settings(
            "gui",
            preset,
            preset_file=self.preset_files.path,
            preset_name=self.preset_name,
            rig=rig.source or rig.name,
            details=plan.settings,
        )
        chain = self.preset_extras.processing
        request = RunRequest(
            plan.events,
            plan.out_dir,
            plan.name,
            settings=settings,
            queue_bytes=self.preset_extras.queue_mb * 1024 * 1024,
            first_frame_timeout_s=self.preset_extras.first_frame_timeout_s,
            program=program,
            processing=chain if chain.active else None,
        )
        self.plan = plan
        self._run_preset = preset
        self._start_request(request, "acquire")
        logger.info("acquisition started: %s in %s", plan.name, plan.out_dir)
        if program is None and self._no_light_chosen():
            # as `mmapp acquire` says it: dark frames may be wanted (a
            # background), so the run goes on, but never without a word
            logger.warning(
                "no light is on (no laser line ticked, no channel chosen): the "
                "frames will be dark"
            )

    def _no_light_chosen(self) -> bool:
        """Whether a stream starts with no light on: the rig's own check (the
        simulated rig), else the device panel's laser lines, none ticked and no
        config preset chosen (False where the window cannot know: no laser
        lines, or an MDA whose channels set the light per event)."""
        rig = self.rig
        if rig is None or self.acquisition.mode.currentIndex() == MODE_MDA:
            return False
        if rig.light_check is not None:
            return not rig.light_check()
        panel = self.device_panel
        if not panel.laser_controls or any(panel.chosen.values()):
            return False
        return not any(
            check.isChecked() for _, check, _ in panel.laser_controls.values()
        )

    def _preset_for_run(self, out_dir: Path) -> Preset | None:
        """The window's state as a preset (kept with the dataset), if it is one;
        its directory absolute, so that a re-run writes where this run did."""
        try:
            preset = window_preset(self)
            storage = preset.storage.model_copy(
                update={"directory": str(out_dir.expanduser().resolve())}
            )
            return preset.model_copy(update={"storage": storage})
        except Exception as exc:  # never blocks a run: the dataset says why
            logger.warning("the run's settings do not form a preset: %s", exc)
            return None

    def _has_camera(self, what: str) -> bool:
        """False (and a message) if the rig has no camera to `what` with."""
        if self.rig is not None and self.rig.core.getCameraDevice():
            return True
        self.report_error(f"Cannot {what}", "this rig has no camera device")
        return False

    def _start_request(self, request: RunRequest, kind: str) -> None:
        assert self.controller is not None
        if not self._has_camera("start Live" if kind == "live" else "start"):
            self._set_state("idle")
            return
        self.device_panel.reapply_choices(self.acquisition.channel_group)
        try:
            self.controller.start(request)
        except Exception as exc:
            self.report_error("Could not start", str(exc))
            self._set_state("idle")
            return
        processed = request.processing is not None and request.save
        self.live_view.set_processed_source(
            self.controller.latest_processed if processed else None
        )
        self.program_link.playing = request.program is not None
        self.program_link.saving = request.save
        self.run_kind = kind
        self._set_state(kind if kind == "live" else "acquiring")
        if kind == "live":
            self.acquisition.run_started(None, "live (not saving)")
        else:
            expected = self.plan.expected_frames if self.plan else None
            self.acquisition.run_started(expected, "acquiring…")

    def _on_camera_changed(self) -> None:
        """A camera setting changed: Live restarts so that it takes effect."""
        if self.run_kind == "live":
            self._restart_live = True
            self.stop()

    def stop(self) -> None:
        """Stop now (returns at once; the run ends within the core's bound)."""
        if self.controller is not None and self.controller.running:
            self.controller.stop()
            self.acquisition.status.setText("stopping…")

    def _on_run_finished(self, result: RunResult) -> None:
        """GUI thread, once per run."""
        if result is self._handled:
            return
        self._handled = result
        self._show_stats()  # the run's final counts
        kind, self.run_kind = self.run_kind, None
        self.program_link.playing = False
        self._set_state("idle")
        if kind == "acquire":
            self._keep_preset_with(result)
            self.last_result = result
            self.open_last_action.setEnabled(result.dataset is not None)
            self.acquisition.run_ended(result.summary())
            logger.info("acquisition %s", result.summary())
            self.acquisition.refresh_preview()
        else:
            self.acquisition.run_ended(
                f"live {result.outcome.value}: {result.frames_acquired} frames shown"
                + (f" ({result.message})" if result.message else "")
            )
        failed = result.outcome in (RunOutcome.ERROR, RunOutcome.UNSAFE)
        if result.outcome is RunOutcome.UNSAFE:
            self._report_unsafe(result)
        elif failed:
            what = "Acquisition" if kind == "acquire" else "Live"
            self.report_error(f"{what} ended with an error", result.message)
        if failed:
            self._pending = None
        self.device_panel.refresh()
        pending, self._pending = self._pending, None
        restart, self._restart_live = self._restart_live, False
        if self._quit_when_done:  # the dataset is finished: quit as asked
            QTimer.singleShot(0, self.close)
        elif pending is not None:
            self._start_plan(pending)
        elif restart and kind == "live" and not failed:
            self.set_live(True)

    def _report_unsafe(self, result: RunResult) -> None:
        """The rig may still emit light or hold a galvo: say so, loudly."""
        status = self.acquisition.status
        status.setText(result.message)
        status.setStyleSheet("color: white; background: #c62828; font-weight: bold;")
        self.report_error(
            "THE RIG IS NOT SAFE",
            f"{result.message}\n\nCheck the lasers, shutter and galvo by hand "
            f"(Rig > Make safe tries again). The frames acquired are kept"
            + (f" in {result.dataset}." if result.dataset else "."),
        )
        if self._error_box is not None:
            self._error_box.setIcon(QMessageBox.Icon.Critical)

    def _keep_preset_with(self, result: RunResult) -> None:
        """Write the run's preset into its dataset folder (preset.mmpreset)."""
        preset, self._run_preset = self._run_preset, None
        if preset is None or result.dataset is None:
            return
        try:
            save_preset_with_dataset(preset, result.dataset)
        except Exception as exc:
            logger.error("could not save the preset with %s: %s", result.dataset, exc)

    # --- state and polling --------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.acquisition.set_state(state)
        self.device_panel.set_run_state(state)
        self.processing_panel.set_run_state(state)
        idle = state == "idle"
        self.actions_by_name["snap"].setEnabled(idle)
        self.actions_by_name["start"].setEnabled(idle or state == "live")
        self.actions_by_name["live"].setEnabled(idle or state == "live")
        self.preset_actions["open"].setEnabled(idle)  # the rig may change
        self.menus.recent_presets.setEnabled(
            idle and bool(self.preset_files.recent.paths())
        )

    def _tick(self) -> None:
        """Stats timer: readouts; also notices a run that ended (safety net)."""
        self._ticks += 1
        controller = self.controller
        if controller is None or self.run_kind is None:
            if self._ticks % DISK_EVERY_TICKS == 0:
                self._show_stats()
            return
        result = controller.wait(0)
        if result is not None and result is not self._handled:
            self._on_run_finished(result)
            return
        self._show_stats()

    def _show_stats(self) -> None:
        controller = self.controller
        disk = None
        if self._ticks % DISK_EVERY_TICKS == 0 or self.run_kind is None:
            with contextlib.suppress(ValueError):
                disk = disk_free_bytes(self.acquisition.directory())
        snap = controller.stats() if controller is not None else None
        saving = self.run_kind == "acquire"
        expected = self.plan.expected_frames if saving and self.plan else None
        if self.run_kind is None:
            snap = None  # keep the finished run's readouts
        self.acquisition.show_stats(snap, expected, disk, saving)

    # --- errors -------------------------------------------------------------------
    def report_error(self, title: str, text: str) -> None:
        """A message box (non-modal) and a log line; never an exception."""
        self.last_error = (title, text)
        logger.error("%s: %s", title, text)
        box = self._error_box
        if box is None:
            box = QMessageBox(self)
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowModality(Qt.WindowModality.NonModal)
            self._error_box = box
        box.setWindowTitle(title)
        box.setText(title)
        box.setInformativeText(text)
        box.show()

    # --- data ---------------------------------------------------------------------
    def choose_save_dir(self) -> None:
        """Ask for the save folder."""
        chosen = QFileDialog.getExistingDirectory(
            self, "Save folder", self.acquisition.save_dir.text()
        )
        if chosen:
            self.acquisition.save_dir.setText(chosen)
            self.settings.save_dir = Path(chosen)

    def open_save_dir(self) -> None:
        """Show the save folder in the file browser."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(self.acquisition.save_dir.text()))

    def open_last_dataset(self) -> None:
        """Show the last dataset's folder in the file browser."""
        if self.last_result is not None and self.last_result.dataset is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_result.dataset)))

    # --- layout, about, close ---------------------------------------------------------
    def _restore_layout(self) -> None:
        geometry, state = self.settings.window_layout()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def reset_layout(self) -> None:
        """Docks back where they started."""
        self.restoreState(self._default_state)
        for dock in self.docks.values():
            dock.show()

    def show_about(self) -> QMessageBox:
        """The About box with versions (non-modal)."""
        box = QMessageBox(self)
        box.setWindowTitle("About mmapp")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(about_text())
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()
        self._about_box = box
        return box

    def shutdown(self) -> None:
        """Stop any run, remember the layout, make the rig safe, unload it."""
        if self._closed:
            return
        self._closed = True
        self.stats_timer.stop()
        self.live_view.timer.stop()
        self.live_view.histogram_timer.stop()
        self.settings.save_window_layout(self.saveGeometry(), self.saveState())
        if self.acquisition.save_dir.text().strip():
            self.settings.save_dir = Path(self.acquisition.save_dir.text().strip())
        self.settings.name_template = self.acquisition.name_template.text()
        self.settings.sync()
        self._close_rig()
        self.log_panel.detach()

    def closeEvent(self, event: QCloseEvent | None) -> None:
        """Close: ask first while acquiring (if confirm_close), then shut down."""
        if self.confirm_close and self.run_kind == "acquire" and not self._closed:
            answer = QMessageBox.question(
                self,
                "Acquisition running",
                "An acquisition is running. Stop it (its dataset is kept) and quit?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                if event is not None:
                    event.ignore()
                return
        controller = self.controller
        interactive = self.confirm_close  # the app (tests close synchronously)
        if interactive and controller is not None and controller.running:
            # Stop, then quit once the dataset is finished (a slow disk may take
            # a while): the window stays responsive and nothing is cut short.
            self._quit_when_done = True
            self.stop()
            self.acquisition.status.setText(
                "quitting: the run is stopped, its dataset is being finished…"
            )
            if event is not None:
                event.ignore()
            return
        self.shutdown()
        super().closeEvent(event)
