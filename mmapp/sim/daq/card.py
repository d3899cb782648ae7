"""A simulated X-series NI-DAQmx card that keeps real time.

Tasks hold channels, sample-clock timing, start triggers and written buffers as
on the real card. Once started, a task's sample counter follows the wall clock
at its programmed rate; tasks clocked by the AO sample clock follow the AO task
from the moment they start (so a follower started after its master lags it, as
on hardware). Lines wired to the camera's trigger input fire edges in real time,
and every edge carries a *probe*: what the card plays on every line at a given
delay after the edge, which is what the camera "sees" during its exposure.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmapp.sim.daq.ai import VOLTS, AIRange, AnalogInput
from mmapp.sim.daq.ao import AnalogOutput
from mmapp.sim.daq.attributes import CalInfo
from mmapp.sim.daq.counters import (
    CounterInput,
    CounterOutput,
    PulseChannel,
    pulses_generated,
)
from mmapp.sim.daq.device import AO_RANGE_V, DeviceSpec
from mmapp.sim.daq.dio import DigitalIO
from mmapp.sim.daq.edges import EdgeListener, EdgePlayer, Probe
from mmapp.sim.daq.errors import (
    ATTR_NOT_SUPPORTED,
    CAN_NOT_PERFORM_OP_WHEN_NO_CHANS_IN_TASK,
    DUPLICATE_TASK,
    INVALID_ATTRIBUTE_VALUE,
    INVALID_NUM_SAMPS_TO_WRITE,
    INVALID_TASK,
    NO_MORE_SPACE,
    OUTPUT_BUFFER_EMPTY,
    PHYSICAL_CHAN_DOES_NOT_EXIST,
    RESOURCE_RESERVED,
    SAMPLES_CAN_NOT_YET_BE_WRITTEN,
    SAMPLES_NOT_YET_AVAILABLE,
    WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE,
    WRITE_BUFFER_TOO_SMALL,
    DaqmxError,
)
from mmapp.sim.daq.events import TaskEvents
from mmapp.sim.daq.scales import Scale, load_max_config
from mmapp.sim.daq.teds import Teds
from mmapp.sim.daq.timing import (
    CONTINUOUS,
    DEFAULT_RATE_HZ,
    LEVEL_HIGH,
    RISING,
    SAMP_CLK_TIMEBASE_HZ,
    TRIG_NONE,
    AnalogTrigger,
    Exports,
    PauseAnalogTrigger,
    TaskTiming,
    Timing,
)

CHAN_TYPES = {
    "ai": 10100,
    "ao": 10102,
    "di": 10151,
    "do": 10153,
    "ci": 10131,
    "co": 10132,
}
ALLOW_REGENERATION, DONT_ALLOW_REGENERATION = 10097, 10158
FIFO_SAMPLES = {"ao": 8191, "do": 2047}  # PCIe-6363 onboard output FIFOs
UNBOUNDED = 2**31  # what a buffer not sized yet takes


@dataclass
class Channel(PulseChannel, AIRange):
    """One virtual channel of a task."""

    name: str
    physical: str
    kind: str  # "ao", "ai", "do", "di", "ci" or "co"
    min_v: float = -AO_RANGE_V
    max_v: float = AO_RANGE_V
    freq_hz: float = 0.0  # counters on their own timebase
    duty: float = 0.5
    source: str = ""  # counters counting ticks of a terminal (e.g. the AO clock)
    initial_delay: int = 0  # ticks before the first rising edge
    high_ticks: int = 0
    low_ticks: int = 0
    lines: list[str] = field(default_factory=list)  # digital: its lines, in order
    columns: list[str] = field(default_factory=list)  # digital: waveform columns
    term_cfg: int = 10083  # AI terminal configuration (RSE on internal channels)
    rng_high: float = 10.0
    rng_low: float = -10.0
    output_type: int = 10119  # counters: pulse frequency / time / ticks
    delay_s: float = 0.0
    idle_state: int = 10214  # low
    timebase: str = ""
    pulse_term: str = ""
    ci_meas: int = 0  # counter input: what it measures (UsageTypeCI)
    ci_term: str = ""  # counter input: the terminal it measures
    initial_count: int = 0  # counter input: count-edges starting count
    count: int = 0  # counter input: the count now (refreshed before reads)
    max_unset: bool = False  # AI: maximum reset (DAQmx then reports it unset)
    units: int = VOLTS  # AI: volts or from a custom scale
    scale_name: str = ""  # AI: its custom scale
    scales: dict[str, Scale] = field(default_factory=dict, repr=False)  # MAX's
    attrs: dict[int, object] = field(default_factory=dict)

    @property
    def chan_type(self) -> int:
        """DAQmx channel type."""
        return CHAN_TYPES[self.kind]

    def reset_field(self, name: str) -> None:
        """Attribute reset: fields keep what the channel was created with; an
        AI maximum is left unspecified."""
        if name == "ai_max":
            self.max_unset = True
        elif name == "scale_name":
            self.scale_name = ""
        elif name == "units":
            self.units = VOLTS


@dataclass
class _Buffer:
    """Samples written at one time; they apply from local sample `since` on."""

    since: int
    data: np.ndarray  # (channels, samples)


@dataclass
class SimTask(TaskTiming):
    """A DAQmx task on the simulated card."""

    name: str
    channels: list[Channel] = field(default_factory=list)
    rate: float | None = None
    clock_source: str = ""  # "" = onboard clock, else a terminal
    finite: bool = True
    samps_per_chan: int = 1000
    trigger_source: str | None = None
    retriggerable: bool = False
    regenerate: bool = True
    buffers: list[_Buffer] = field(default_factory=list)
    running: bool = False
    started_at: float | None = None  # wall clock of sample 0 (own clock)
    stopped_generated: int | None = None  # counter frozen at stop
    stopped_ticks: int | None = None  # followers: master ticks seen, frozen at stop
    origin: int = 0  # master sample index of this task's sample 0 (followers)
    bursts: int = 0  # retriggerable: triggers received
    burst_at: float | None = None  # retriggerable: when the last burst began
    ignored_triggers: int = 0  # retriggerable: edges that came during a burst
    master: SimTask | None = None
    device: str = "Dev1"
    on_demand: bool = True  # no sample clock configured
    implicit: bool = False
    active_edge: int = RISING
    start_edge: int = RISING
    arm_source: str = ""
    arm_edge: int = RISING
    arm_type: int = TRIG_NONE
    start_analog: int = TRIG_NONE  # analog edge or window start trigger
    start_anlg: AnalogTrigger = field(default_factory=AnalogTrigger)
    pause_type: int = TRIG_NONE
    pause_source: str = ""
    pause_when: int = LEVEL_HIGH
    pause_anlg: AnalogTrigger = field(default_factory=PauseAnalogTrigger)
    ref_type: int = TRIG_NONE
    ref_source: str = ""
    ref_edge: int = RISING
    pretrig_samples: int = 2
    ref_anlg: AnalogTrigger = field(default_factory=AnalogTrigger)
    exports: Exports = field(default_factory=Exports)
    # a terminal's canonical name (None: the card has no such terminal)
    resolve: Callable[[str], str | None] = field(
        default=lambda text: text, repr=False, compare=False
    )
    read_pos: int = 0
    write_pos: int = 0
    input_buf_size: int = 0
    output_buf_size: int = 0
    queued: int = 0  # non-regenerating output: samples per channel written
    host_size: int = 0  # non-regenerating output: the buffer its writes sized
    events: dict[tuple[str, int], Any] = field(default_factory=dict)
    runs: int = 0  # starts so far (events count samples per run)
    attrs: dict[int, object] = field(default_factory=dict)
    generated_now: int = 0  # refreshed by the card before attribute reads
    acquired: int = 0
    avail_samples: int = 0
    space_avail: int = 0

    def channel_names(self) -> str:
        """Comma-separated virtual channel names."""
        return ", ".join(c.name for c in self.channels)

    def rows(self) -> list[str]:
        """The physical line or channel each buffer row plays (digital: a row
        per line)."""
        out: list[str] = []
        for c in self.channels:
            out += c.lines if c.kind in ("do", "di") else [c.physical]
        return out

    # --- timing as the attribute tables see it -----------------------------
    @property
    def regen_mode(self) -> int:
        """Regeneration mode."""
        return ALLOW_REGENERATION if self.regenerate else DONT_ALLOW_REGENERATION

    @regen_mode.setter
    def regen_mode(self, value: int) -> None:
        self.regenerate = int(value) == ALLOW_REGENERATION

    def reset_field(self, name: str) -> None:
        """Attribute reset to the task's default."""
        defaults = {
            "retriggerable": False,
            "regen_mode": ALLOW_REGENERATION,
            "active_edge": RISING,
            "start_edge": RISING,
            "samp_mode": CONTINUOUS,
            "samps_per_chan": 1000,
            "samp_clk_rate": DEFAULT_RATE_HZ,
            "samp_clk_timebase_div": round(SAMP_CLK_TIMEBASE_HZ / DEFAULT_RATE_HZ),
            "samp_clk_src": "",
            "start_type": TRIG_NONE,
            "ref_type": TRIG_NONE,
            "pause_type": TRIG_NONE,
            "pretrig_samples": 2,
            "samp_quant": 1000,
            "input_buf_size": 0,
            "output_buf_size": 0,
            "ref_edge": RISING,
        }
        if name in defaults:
            setattr(self, name, defaults[name])

    @property
    def kind(self) -> str | None:
        """'ao', 'do', 'co' or None (no channels yet)."""
        return self.channels[0].kind if self.channels else None

    @property
    def timed(self) -> bool:
        """Hardware-timed (sample clock configured)."""
        return self.rate is not None

    def total(self) -> float:
        """Samples a finite task generates per start (inf for continuous)."""
        return float(self.samps_per_chan) if self.finite else float("inf")

    def buffer_len(self) -> int:
        """Samples per channel in the buffer."""
        return self.buffers[-1].data.shape[1] if self.buffers else 0

    @property
    def counts_ticks(self) -> bool:
        """A counter output task timed by another task's clock."""
        return bool(self.channels) and self.channels[0].counts_ticks


class SimDaqDevice(
    AnalogInput,
    AnalogOutput,
    DigitalIO,
    CounterInput,
    CounterOutput,
    Timing,
    TaskEvents,
):
    """The card: tasks, their real-time playback and the lines' held values."""

    def __init__(self, spec: DeviceSpec | None = None) -> None:
        self.spec = spec or DeviceSpec()
        self.lock = threading.RLock()
        self._started = threading.Condition(self.lock)
        self.tasks: dict[str, SimTask] = {}
        self.held: dict[str, float] = dict.fromkeys(
            self.spec.ao_channels() + self.spec.do_lines(), 0.0
        )
        self.driven: dict[str, str] = {}  # line -> DO task driving it
        self._edge_listeners: dict[str, list[EdgeListener]] = {}
        self._players: dict[str, EdgePlayer] = {}
        self._next_id = 1
        self.calls: list[str] = []  # RPC names, for tests and diagnostics
        self.cal_info = CalInfo()
        self.power_up: dict[str, int] = {}  # DO line -> state at power-up
        self.teds: dict[str, Teds] = {}  # AI physical channel -> configured TEDS
        self.scales: dict[str, Scale] = {}  # custom scales persisted in NI MAX
        # what the sample clocks count against (tests may step it by hand)
        self.clock: Callable[[], float] = time.monotonic

    def import_max_config(self, path: str) -> None:
        """Import the custom scales of an NI MAX configuration file."""
        self.scales.update(load_max_config(path))

    # --- wiring ---------------------------------------------------------------
    def connect_edges(self, line: str, listener: EdgeListener) -> None:
        """Wire a line (DO line or counter) to a device input (camera trigger)."""
        self._check_exists(line)
        self._edge_listeners.setdefault(line.lstrip("/"), []).append(listener)

    # --- tasks ------------------------------------------------------------------
    def create_task(self, name: str) -> SimTask:
        """A new task (named like DAQmx names them when the name is empty)."""
        with self.lock:
            if not name:
                name = f"_unnamedTask<{self._next_id}>"
                self._next_id += 1
            if name in self.tasks:
                raise DaqmxError(DUPLICATE_TASK, f"Task Name: {name}")
            task = SimTask(name, device=self.spec.name, resolve=self.spec.terminal)
            self.tasks[name] = task
            return task

    def task(self, name: str) -> SimTask:
        """The task of this name (DAQmx 'invalid task' if it was cleared)."""
        try:
            return self.tasks[name]
        except KeyError:
            raise DaqmxError(INVALID_TASK, f"Task Name: {name}") from None

    def clear_task(self, name: str) -> None:
        """Stop (if running) and forget a task."""
        with self.lock:
            task = self.task(name)
            if task.running:
                self.stop_task(name)
            self.release_lines(task)
            del self.tasks[name]
        for reg in task.events.values():
            reg.closed.set()

    def _add(self, task: SimTask, channel: Channel) -> None:
        with self.lock:
            if task.channels and task.kind != channel.kind:
                raise DaqmxError(
                    INVALID_ATTRIBUTE_VALUE,
                    f"Task {task.name} has {task.kind} channels; cannot add "
                    f"{channel.kind} channel {channel.physical}",
                )
            if any(c.physical == channel.physical for c in task.channels):
                raise DaqmxError(
                    RESOURCE_RESERVED,
                    f"{channel.physical} is already in task {task.name}",
                )
            task.channels.append(channel)

    def write(
        self, task: SimTask, data: np.ndarray, auto_start: bool, timeout: float = 10.0
    ) -> int:
        """Write samples (channels x samples); returns samples per channel."""
        self._require_channels(task)
        if data.ndim != 2 or data.shape[0] != len(task.rows()):
            raise DaqmxError(
                WRITE_BUFFER_TOO_SMALL,
                f"Channels in data: {data.shape[0] if data.ndim else 0}; channels "
                f"in task: {len(task.channels)}",
            )
        if task.kind == "do":
            self.mark_driven(task)
        if data.shape[1] < 1:
            raise DaqmxError(INVALID_NUM_SAMPS_TO_WRITE, f"Task Name: {task.name}")
        if task.kind == "ao":
            self._check_ao(task, data)
        with self.lock:
            if not task.timed:  # on demand: the value goes out now
                for name, row in zip(task.rows(), data, strict=True):
                    self.held[name] = float(row[-1])
                return data.shape[1]
        if not task.regenerate:
            n = self.stream(task, data, timeout)
            if auto_start and not task.running:
                self.start_task(task.name)
            return n
        with self.lock:
            since = 0
            if task.running and task.buffers:
                n = task.buffer_len()
                if data.shape[1] != n:
                    raise DaqmxError(
                        INVALID_NUM_SAMPS_TO_WRITE,
                        f"A running regenerating task takes a whole buffer of {n} "
                        f"samples; {data.shape[1]} given (Task Name: {task.name})",
                    )
                done = self._generated(task)
                since = (int(done) // n + 1) * n  # from the next buffer boundary
            task.buffers.append(_Buffer(since, np.array(data, copy=True)))
        if auto_start and not task.running:
            self.start_task(task.name)
        return data.shape[1]

    def stream(self, task: SimTask, data: np.ndarray, timeout: float) -> int:
        """Non-regenerating output: samples queue behind those not generated
        yet, in the host buffer (its set size, else the first write's) plus,
        once running, the onboard FIFO. A write that does not fit waits for
        space until its timeout, then writes what fits (DAQmx's 'cannot yet be
        written'); before the start, a write beyond a set buffer size is
        refused whole ('no more space')."""
        n = data.shape[1]
        deadline = time.monotonic() + (timeout if timeout >= 0 else 1e9)
        while True:
            with self.lock:
                space = self.stream_space(task)
                if n <= space:
                    self._queue(task, data)
                    return n
                if not task.running:
                    raise DaqmxError(
                        NO_MORE_SPACE,
                        f"Samples to write: {n}\nSpace available: {space}"
                        f"\nTask Name: {task.name}",
                        samps_written=0,
                    )
                if time.monotonic() >= deadline:
                    if space:
                        self._queue(task, data[:, :space])
                    raise DaqmxError(
                        SAMPLES_CAN_NOT_YET_BE_WRITTEN,
                        f"Samples to write: {n}\nWritten: {space}"
                        f"\nTask Name: {task.name}",
                        samps_written=space,
                    )
            time.sleep(0.001)

    def stream_space(self, task: SimTask) -> int:
        """Samples per channel a non-regenerating task takes now (unbounded
        before the start while its buffer size is not set)."""
        pending = task.queued - int(self._generated(task))
        if not task.running:
            if not task.output_buf_size:
                return UNBOUNDED
            return max(task.output_buf_size - pending, 0)
        host = task.output_buf_size or task.host_size
        return max(host + FIFO_SAMPLES.get(task.kind or "", 0) - pending, 0)

    def _queue(self, task: SimTask, data: np.ndarray) -> None:
        task.buffers.append(_Buffer(task.queued, np.array(data, copy=True)))
        task.queued += data.shape[1]
        if not task.running:
            task.host_size = max(task.host_size, task.queued)

    def _require_channels(self, task: SimTask) -> None:
        if not task.channels:
            raise DaqmxError(
                CAN_NOT_PERFORM_OP_WHEN_NO_CHANS_IN_TASK, f"Task Name: {task.name}"
            )

    # --- run state ----------------------------------------------------------------
    def start_task(self, name: str) -> None:
        """Start a task (followers of the AO clock wait for it)."""
        with self.lock:
            task = self.task(name)
            self._require_channels(task)
            if task.running:
                return
            self.verify(task)
            if not task.timed:
                return  # on-demand tasks have nothing to start
            if task.kind in ("ao", "do") and not task.buffers:
                raise DaqmxError(OUTPUT_BUFFER_EMPTY, f"Task Name: {task.name}")
            task.read_pos = 0
            self._reserve(task)
            task.master = self._clock_master(task)
            task.bursts = task.ignored_triggers = 0
            task.burst_at = None
            task.stopped_generated = task.stopped_ticks = None
            if task.master is not None:
                task.origin = int(self._generated(task.master))
                if task.counts_ticks:
                    task.rate = task.master.rate
                task.started_at = None
            else:
                task.origin = 0
                task.started_at = (
                    None if task.trigger_source is not None else self.clock()
                )
            task.running = True
            task.runs += 1
            if task.started_at is not None and task.kind != "co":
                self._fire_start_trigger(task)
            self._attach_followers(task)
            self._started.notify_all()
            for ch in self.edge_channels(task):
                if ch.physical in self._edge_listeners:
                    player = EdgePlayer(self, task, ch)
                    self._players[f"{task.name}:{ch.physical}"] = player
                    player.start()

    def _reserve(self, task: SimTask) -> None:
        mine = {c.physical for c in task.channels}
        for other in self.tasks.values():
            if other is task or not other.running:
                continue
            shared = mine & {c.physical for c in other.channels}
            if shared:
                raise DaqmxError(
                    RESOURCE_RESERVED,
                    f"{sorted(shared)} in use by task {other.name} "
                    f"(Task Name: {task.name})",
                )
            if task.kind == "ao" and other.kind == "ao" and other.timed:
                raise DaqmxError(
                    RESOURCE_RESERVED,
                    f"the AO timing engine is in use by task {other.name} "
                    f"(Task Name: {task.name})",
                )

    def stop_task(self, name: str) -> None:
        """Stop: outputs hold the last value generated."""
        with self.lock:
            task = self.task(name)
            if not task.running:
                return
            # One instant for all: the master's count is frozen first and its
            # followers' (a counter on its clock, the DO) are read from it, so
            # an edge a follower fired is always in the master's count.
            if task.master is not None and task.stopped_ticks is None:
                task.stopped_ticks = self.ticks(task)
            done = self._generated(task)
            task.stopped_generated = int(done)
            task.running = False
            for follower in self.tasks.values():
                if follower.master is task and follower.running:
                    follower.stopped_ticks = self.ticks(follower)
                    follower.stopped_generated = int(self._generated(follower))
            if task.buffers and done > 0:
                for i, row in enumerate(task.rows()):
                    self.held[row] = float(self._value(task, int(done) - 1, i))
            players = [
                p for key, p in self._players.items() if key.startswith(task.name + ":")
            ]
            for p in players:
                del self._players[f"{task.name}:{p.channel.physical}"]
            self._started.notify_all()
        for p in players:
            p.stop()

    def wait_until_done(self, name: str, timeout: float) -> None:
        """Block until a finite task has generated all its samples."""
        deadline = time.monotonic() + (timeout if timeout >= 0 else 1e9)
        while True:
            with self.lock:
                task = self.task(name)
                if self.is_done(task):
                    return
            if time.monotonic() >= deadline:
                raise DaqmxError(
                    WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE, f"Task Name: {name}"
                )
            time.sleep(0.001)

    def is_done(self, task: SimTask) -> bool:
        """Whether the task has generated everything (never, when continuous)."""
        if not task.running:
            return True
        return task.finite and self._generated(task) >= task.total()

    def generated(self, name: str) -> int:
        """Samples per channel generated since the task started."""
        with self.lock:
            return int(self._generated(self.task(name)))

    def ticks(self, task: SimTask) -> int:
        """Sample-clock ticks a task has seen (a follower: its master's since it
        started; frozen once either stopped)."""
        if task.master is None:
            return int(self._generated(task))
        if task.stopped_ticks is not None:
            return task.stopped_ticks
        if not task.running:
            return 0
        return max(int(self._generated(task.master)) - task.origin, 0)

    def _generated(self, task: SimTask) -> float:
        if task.stopped_generated is not None and not task.running:
            return float(task.stopped_generated)
        if not task.running:
            return 0.0
        if task.counts_ticks:  # pulses: rising edges at ticks already generated
            if task.master is not None:
                n = pulses_generated(task, self.ticks(task), None)
            elif task.started_at is not None:
                n = pulses_generated(task, None, self.clock() - task.started_at)
            else:
                n = 0.0
        elif task.master is not None:
            n = self._generated(task.master) - task.origin
        elif task.retriggerable:
            n = float(task.bursts * task.samps_per_chan)
            return n
        elif task.started_at is None or (task.clock_source and task.kind != "co"):
            n = 0.0  # waiting for a trigger, or for a clock nothing generates
        else:
            n = np.floor((self.clock() - task.started_at) * (task.rate or 0.0))
        return float(min(max(n, 0.0), task.total()))

    def refresh(self, task: SimTask) -> None:
        """Update the counters the stream attributes report."""
        done = int(self._generated(task))
        task.generated_now = done if task.kind in ("ao", "do", "co") else 0
        task.acquired = done if task.kind in ("ai", "di") else 0
        task.avail_samples = max(task.acquired - task.read_pos, 0)
        task.write_pos = task.buffer_len()
        for ch in task.channels:
            if ch.kind == "ci":
                ch.count = ch.initial_count + (self.counted(ch) if task.running else 0)
        size = task.output_buf_size or (task.samps_per_chan if task.timed else 1)
        task.space_avail = (
            max(size - task.buffer_len(), 0) if not task.running else size
        )
        if task.timed and not task.regenerate and task.kind in FIFO_SAMPLES:
            # a stream: its write position and the room behind unplayed samples
            task.write_pos = task.queued
            task.space_avail = min(self.stream_space(task), size)

    # --- input --------------------------------------------------------------------
    def sample_time(self, name: str, k: int) -> float:
        """Wall-clock time (s since the epoch) of sample `k` of a task (now for
        on-demand tasks or one whose start has no clock time)."""
        task = self.task(name)
        now = time.time()
        if task.on_demand or not task.rate or task.started_at is None:
            return now
        return now - (self.clock() - (task.started_at + k / task.rate))

    def read(self, name: str, n: int, timeout: float) -> np.ndarray:
        """Read `n` samples per channel (-1: all of a finite task, or what is
        available); rows as `task.rows()` (AI: channels, DI: lines)."""
        task = self.task(name)
        self._require_channels(task)
        if task.kind == "ci":
            return self.read_counter(task, n, timeout)
        if task.kind == "do":  # DAQmx reads back what the DO lines output now
            now = np.array([self.output_value(row) for row in task.rows()])
            return np.repeat(now[:, None], 1 if n < 0 else max(n, 1), axis=1)
        if task.kind not in ("ai", "di"):
            raise DaqmxError(ATTR_NOT_SUPPORTED, f"Reading an output task {name}")
        auto_stop = False
        if task.timed and not task.running:
            self.start_task(name)
            auto_stop = task.finite
        try:
            if not task.timed:  # on demand: one sample per read, now
                with self.lock:
                    first, count = task.read_pos, 1 if n < 0 else max(n, 1)
                    task.read_pos += count
                return self._samples(task, np.arange(first, first + count))
            deadline = time.monotonic() + (timeout if timeout >= 0 else 1e9)
            while True:
                with self.lock:
                    have = int(self._generated(task))
                    if n < 0:
                        want = task.samps_per_chan if task.finite else have
                        want = max(want - task.read_pos, 0)
                    elif task.finite and not task.retriggerable:
                        # more than the acquisition holds: what is left
                        want = min(n, max(task.samps_per_chan - task.read_pos, 0))
                    else:
                        want = n
                    if have >= task.read_pos + want:
                        first = task.read_pos
                        task.read_pos += want
                        return self._samples(task, np.arange(first, first + want))
                if time.monotonic() >= deadline:  # what is there is read
                    with self.lock:
                        got = max(min(have - task.read_pos, want), 0)
                        first = task.read_pos
                        task.read_pos += got
                    error = DaqmxError(
                        SAMPLES_NOT_YET_AVAILABLE,
                        f"Samples requested: {want}\nAvailable: {got}"
                        f"\nTask Name: {name}",
                        samps_read=got,
                    )
                    error.partial = self._samples(task, np.arange(first, first + got))
                    raise error
                time.sleep(0.001)
        finally:
            if auto_stop:
                self.stop_task(name)

    def _samples(self, task: SimTask, samples: np.ndarray) -> np.ndarray:
        """Input values at the task's sample numbers."""
        rows = task.rows()
        if task.kind == "ai":
            sources = [r.replace("/_ao", "/ao").removesuffix("_vs_aognd") for r in rows]
        else:
            sources = rows
        at = [self._source_values(task, src, samples) for src in sources]
        if task.kind == "ai":
            return self.ai_values(task, samples, at)
        return self.line_values(rows, samples, at)

    def _source_values(
        self, task: SimTask, line: str, samples: np.ndarray
    ) -> np.ndarray:
        """What an output line plays at an input task's samples: sample-exact
        when both run on the same clock, else the value it outputs now."""
        with self.lock:
            for out in self.tasks.values():
                if not out.running or out.kind not in ("ao", "do") or not out.buffers:
                    continue
                rows = out.rows()
                if line not in rows:
                    continue
                index = rows.index(line)
                clock = task.master or task
                if (out.master or out) is clock and task.timed:
                    base = task.origin if task.master is not None else 0
                    shift = base - (out.origin if out.master is not None else 0)
                    return np.array(
                        [self._value(out, int(k) + shift, index) for k in samples]
                    )
            return np.full(len(samples), self.output_value(line))

    # --- values -------------------------------------------------------------------
    def _value(self, task: SimTask, local: int, index: int) -> float:
        """What channel `index` of the task plays at its local sample `local`."""
        if local < 0 or not task.buffers:
            return self.held.get(task.rows()[index], 0.0)
        buf = task.buffers[0]
        for b in task.buffers:
            if b.since <= local:
                buf = b
        n = buf.data.shape[1]
        pos = local % n if task.regenerate else min(local - buf.since, n - 1)
        return float(buf.data[index, pos])

    def _probe(self, master: SimTask, master_index: int) -> Probe:
        """Values on every line at a delay after a master sample index."""
        tasks = [
            t
            for t in self.tasks.values()
            if (t is master or t.master is master) and t.kind != "co"
        ]
        offsets = {t.name: (0 if t is master else t.origin) for t in tasks}
        rate = master.rate or 1.0
        held = dict(self.held)

        def probe(delay_s: float) -> dict[str, float]:
            m = master_index + round(delay_s * rate)
            values = dict(held)
            with self.lock:
                for t in tasks:
                    local = m - offsets[t.name]
                    if t.finite and not t.retriggerable:
                        local = min(local, t.samps_per_chan - 1)
                    for i, row in enumerate(t.rows()):
                        values[row] = self._value(t, local, i)
            return values

        return probe

    def output_value(self, line: str) -> float:
        """What a line outputs now (running task sample, else the held value)."""
        line = line.lstrip("/")
        with self.lock:
            for task in self.tasks.values():
                if not task.running:
                    continue
                for i, row in enumerate(task.rows()):
                    if row == line and task.kind in ("ao", "do"):
                        done = int(self._generated(task))
                        return self._value(task, max(done - 1, 0), i)
            return self.held.get(line, 0.0)

    def _check_exists(self, line: str) -> None:
        known = set(self.spec.do_lines()) | set(self.spec.counter_channels())
        if line.lstrip("/") not in known:
            raise DaqmxError(PHYSICAL_CHAN_DOES_NOT_EXIST, f"Line: {line}")

    def close(self) -> None:
        """Stop every task (server shutdown)."""
        for name in list(self.tasks):
            with contextlib.suppress(DaqmxError):
                self.clear_task(name)
