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
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmapp.sim.daq.ai import AnalogInput
from mmapp.sim.daq.attributes import CalInfo
from mmapp.sim.daq.device import (
    AO_RANGE_V,
    MAX_AI_MULTI_RATE_HZ,
    MAX_AI_RATE_HZ,
    MAX_AO_RATE_HZ,
    MAX_DO_RATE_HZ,
    DeviceSpec,
    ai_range,
    expand_channels,
)
from mmapp.sim.daq.dio import DigitalIO
from mmapp.sim.daq.errors import (
    ATTR_NOT_SUPPORTED,
    CAN_NOT_PERFORM_OP_WHEN_NO_CHANS_IN_TASK,
    DUPLICATE_TASK,
    INVALID_AO_DATA_WRITE,
    INVALID_ATTRIBUTE_VALUE,
    INVALID_NUM_SAMPS_TO_WRITE,
    INVALID_ROUTING_SOURCE_TERMINAL_NAME,
    INVALID_TASK,
    OUTPUT_BUFFER_EMPTY,
    PHYSICAL_CHAN_DOES_NOT_EXIST,
    RESOURCE_RESERVED,
    SAMP_RATE_TOO_HIGH,
    SAMP_RATE_TOO_LOW,
    SAMPLES_NOT_YET_AVAILABLE,
    WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE,
    WRITE_BUFFER_TOO_SMALL,
    DaqmxError,
)
from mmapp.sim.daq.events import TaskEvents

logger = logging.getLogger(__name__)

MIN_RATE_HZ = 0.1
DEFAULT_RATE_HZ = 1000.0  # a sample clock's rate until one is configured
SAMP_CLK_TIMEBASE_HZ = 100_000_000.0  # X-series: the sample clock divides 100 MHz
MIN_TICKS, MAX_TICKS = 2, 2**32 - 1  # X-series counter pulse ticks and delay
# A retrigger this much before the burst ends still counts: the simulated
# camera's exposure-out edges carry thread-wake jitter that real ones do not.
EDGE_JITTER_S = 0.0005
Probe = Callable[[float], dict[str, float]]  # delay after the edge (s) -> values
EdgeListener = Callable[[Probe, float], None]  # (probe, monotonic edge time)
TIMEBASES = {"20mhztimebase": 20e6, "100khztimebase": 100e3, "100mhztimebase": 100e6}
CHAN_TYPES = {"ai": 10100, "ao": 10102, "di": 10151, "do": 10153, "co": 10132}
FINITE, CONTINUOUS = 10178, 10123
SAMPLE_CLOCK, ON_DEMAND, IMPLICIT = 10388, 10390, 10451
RISING, FALLING = 10280, 10171
TRIG_NONE, DIGITAL_EDGE = 10230, 10150
LEVEL_HIGH, LEVEL_LOW = 10192, 10214
ALLOW_REGENERATION, DONT_ALLOW_REGENERATION = 10097, 10158


@dataclass
class Channel:
    """One virtual channel of a task."""

    name: str
    physical: str
    kind: str  # "ao", "ai", "do", "di" or "co"
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
    attrs: dict[int, object] = field(default_factory=dict)

    @property
    def chan_type(self) -> int:
        """DAQmx channel type."""
        return CHAN_TYPES[self.kind]

    @property
    def high_time(self) -> float:
        """Counter pulse high time (s)."""
        return self.duty / self.freq_hz if self.freq_hz else 0.0

    @high_time.setter
    def high_time(self, value: float) -> None:
        low = self.low_time
        self.freq_hz, self.duty = 1.0 / (value + low), value / (value + low)

    @property
    def low_time(self) -> float:
        """Counter pulse low time (s)."""
        return (1.0 - self.duty) / self.freq_hz if self.freq_hz else 0.0

    @low_time.setter
    def low_time(self, value: float) -> None:
        high = self.high_time
        self.freq_hz, self.duty = 1.0 / (high + value), high / (high + value)

    @property
    def ai_max(self) -> float:
        """AI maximum as DAQmx reports it: coerced to the range's top."""
        return self.rng_high

    @ai_max.setter
    def ai_max(self, value: float) -> None:
        self.max_v = value
        self._coerce_ai_range()

    @property
    def ai_min(self) -> float:
        """AI minimum as DAQmx reports it: coerced to the range's bottom."""
        return self.rng_low

    @ai_min.setter
    def ai_min(self, value: float) -> None:
        self.min_v = value
        self._coerce_ai_range()

    def _coerce_ai_range(self) -> None:
        rng = ai_range(self.min_v, self.max_v)
        if rng is not None:
            self.rng_high, self.rng_low = rng, -rng

    def reset_field(self, name: str) -> None:
        """Attribute reset: fields keep what the channel was created with."""

    @property
    def counts_ticks(self) -> bool:
        """A counter pulse train timed in ticks of a source terminal."""
        return self.kind == "co" and self.high_ticks > 0

    @property
    def delay_ticks(self) -> int:
        """Ticks before the first pulse: an initial delay of 0 (DAQmx's default)
        is the counter's minimum."""
        return max(self.initial_delay, MIN_TICKS)

    def pulse_tick(self, k: int) -> int:
        """Source tick of the k-th rising edge (ticks counters)."""
        return self.delay_ticks + k * (self.high_ticks + self.low_ticks)


@dataclass
class _Buffer:
    """Samples written at one time; they apply from local sample `since` on."""

    since: int
    data: np.ndarray  # (channels, samples)


@dataclass
class SimTask:
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
    pause_type: int = TRIG_NONE
    pause_source: str = ""
    pause_when: int = LEVEL_HIGH
    ref_type: int = TRIG_NONE
    read_pos: int = 0
    write_pos: int = 0
    input_buf_size: int = 0
    output_buf_size: int = 0
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
    def samp_clk_rate(self) -> float:
        """Sample clock rate (Hz; DAQmx's 1 kHz before one is configured)."""
        return float(self.rate or DEFAULT_RATE_HZ)

    @samp_clk_rate.setter
    def samp_clk_rate(self, value: float) -> None:
        self.rate = float(value)
        self.on_demand = False

    @property
    def samp_clk_timebase_div(self) -> int:
        """Ticks of the 100 MHz timebase per sample."""
        return round(SAMP_CLK_TIMEBASE_HZ / self.samp_clk_rate)

    @samp_clk_timebase_div.setter
    def samp_clk_timebase_div(self, value: int) -> None:
        self.samp_clk_rate = SAMP_CLK_TIMEBASE_HZ / int(value)

    @property
    def samp_mode(self) -> int:
        """Finite or continuous."""
        return FINITE if self.finite else CONTINUOUS

    @samp_mode.setter
    def samp_mode(self, value: int) -> None:
        self.finite = int(value) != CONTINUOUS

    @property
    def timing_type(self) -> int:
        """Sample clock, on demand or implicit."""
        if self.implicit:
            return IMPLICIT
        return ON_DEMAND if self.on_demand else SAMPLE_CLOCK

    @timing_type.setter
    def timing_type(self, value: int) -> None:
        value = int(value)
        self.implicit = value == IMPLICIT
        self.on_demand = value == ON_DEMAND
        if value == SAMPLE_CLOCK and self.rate is None:
            self.rate = 1000.0
        if value == ON_DEMAND:
            self.rate = None

    @property
    def samp_clk_src(self) -> str:
        """Sample clock source terminal ('' before sample clock timing)."""
        if self.clock_source:
            return self.clock_source
        if self.kind in ("ao", "ai", "do", "di"):
            return f"/{self.device}/{self.kind}/SampleClockTimebase"
        return ""

    @samp_clk_src.setter
    def samp_clk_src(self, value: str) -> None:
        self.clock_source = value

    @property
    def samp_clk_term(self) -> str:
        """Where the sample clock is available."""
        return f"/{self.device}/{self.kind}/SampleClock"

    @property
    def max_rate(self) -> float:
        """The fastest sample clock for this task's channels."""
        if self.kind == "ai":
            return (
                MAX_AI_RATE_HZ
                if len(self.channels) < 2
                else (MAX_AI_MULTI_RATE_HZ / len(self.channels))
            )
        if self.kind == "ao":
            return MAX_AO_RATE_HZ
        return MAX_DO_RATE_HZ

    @property
    def start_type(self) -> int:
        """Start trigger type."""
        return TRIG_NONE if self.trigger_source is None else DIGITAL_EDGE

    @start_type.setter
    def start_type(self, value: int) -> None:
        if int(value) == TRIG_NONE:
            self.trigger_source = None
        elif self.trigger_source is None:
            self.trigger_source = ""

    @property
    def start_source(self) -> str:
        """Start trigger source terminal."""
        return self.trigger_source or ""

    @start_source.setter
    def start_source(self, value: str) -> None:
        self.trigger_source = value

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


class SimDaqDevice(AnalogInput, DigitalIO, TaskEvents):
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
        self._players: dict[str, _EdgePlayer] = {}
        self._next_id = 1
        self.calls: list[str] = []  # RPC names, for tests and diagnostics
        self.cal_info = CalInfo()
        # what the sample clocks count against (tests may step it by hand)
        self.clock: Callable[[], float] = time.monotonic

    # --- wiring ---------------------------------------------------------------
    def connect_edges(self, line: str, listener: EdgeListener) -> None:
        """Wire a line (DO line or counter) to a device input (camera trigger)."""
        self._check_exists(line)
        self._edge_listeners.setdefault(line.lstrip("/"), []).append(listener)

    def input_edge(self, terminal: str, at: float | None = None) -> Probe | None:
        """A rising edge arrives on a terminal (e.g. the camera's exposure out).

        Retriggerable tasks started on this terminal play one burst; the probe
        reads what they play during it (None if no task listens). As on an
        X-series card, an edge that comes while the previous burst is still
        playing is ignored (counted in the task's `ignored_triggers`).
        """
        terminal = "/" + terminal.lstrip("/")
        now = self.clock() if at is None else at
        with self.lock:
            armed = [
                t
                for t in self.tasks.values()
                if t.running and t.trigger_source == terminal and t.master is None
            ]
            if not armed:
                return None
            master = armed[0]
            start = 0
            burst_s = master.samps_per_chan / (master.rate or 1.0) - EDGE_JITTER_S
            busy = master.burst_at is not None and now < master.burst_at + burst_s
            if master.retriggerable and busy:
                master.ignored_triggers += 1
                return None
            master.burst_at = now
            for task in armed:
                if task.retriggerable:
                    if task is master:
                        start = task.bursts * task.samps_per_chan
                    task.bursts += 1
                elif task.started_at is None:
                    task.started_at = self.clock()
            return self._probe(master, start)

    # --- tasks ------------------------------------------------------------------
    def create_task(self, name: str) -> SimTask:
        """A new task (named like DAQmx names them when the name is empty)."""
        with self.lock:
            if not name:
                name = f"_unnamedTask<{self._next_id}>"
                self._next_id += 1
            if name in self.tasks:
                raise DaqmxError(DUPLICATE_TASK, f"Task Name: {name}")
            task = SimTask(name, device=self.spec.name)
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

    def add_ao_channels(
        self, task: SimTask, physical: str, name: str, min_v: float, max_v: float
    ) -> None:
        """Add AO voltage channels (range checked against the card's ±10 V)."""
        for phys in expand_channels(physical):
            if phys not in self.spec.ao_channels():
                raise DaqmxError(
                    PHYSICAL_CHAN_DOES_NOT_EXIST, f"Physical Channel Name: {phys}"
                )
            if not (-AO_RANGE_V <= min_v < max_v <= AO_RANGE_V):
                raise DaqmxError(
                    INVALID_ATTRIBUTE_VALUE,
                    f"Property: DAQmx_AO_Min/Max\nRequested Value: [{min_v}, {max_v}]"
                    f"\nPossible Values: [-10.0, 10.0]\nChannel Name: {phys}",
                )
            self._add(task, Channel(name or phys, phys, "ao", min_v, max_v))

    def add_co_pulse_freq(
        self, task: SimTask, counter: str, name: str, freq: float, duty: float
    ) -> None:
        """Add a counter output pulse train."""
        for phys in expand_channels(counter):
            if phys not in self.spec.counter_channels():
                raise DaqmxError(
                    PHYSICAL_CHAN_DOES_NOT_EXIST, f"Physical Channel Name: {phys}"
                )
            if freq <= 0 or not 0 < duty < 1:
                raise DaqmxError(
                    INVALID_ATTRIBUTE_VALUE,
                    f"Frequency {freq} Hz / duty cycle {duty} on {phys}",
                )
            self._add(task, Channel(name or phys, phys, "co", freq_hz=freq, duty=duty))

    def add_co_pulse_ticks(
        self,
        task: SimTask,
        counter: str,
        name: str,
        source: str,
        *,
        idle_low: bool,
        initial_delay: int,
        low_ticks: int,
        high_ticks: int,
    ) -> None:
        """Add a counter pulse train timed in ticks of a source terminal.

        Idle low: `initial_delay` ticks low, then `high_ticks` high and
        `low_ticks` low per pulse; the k-th rising edge is at source tick
        ``initial_delay + k * (high_ticks + low_ticks)``. X-series counters need
        at least 2 ticks for each of the three (an initial delay of 0, the
        default, is the least).
        """
        source = self.spec.terminal(source) or source
        for phys in expand_channels(counter):
            if phys not in self.spec.counter_channels():
                raise DaqmxError(
                    PHYSICAL_CHAN_DOES_NOT_EXIST, f"Physical Channel Name: {phys}"
                )
            if source not in self.spec.terminals():
                raise DaqmxError(
                    INVALID_ROUTING_SOURCE_TERMINAL_NAME,
                    f"Property: DAQmx_CO_CtrTimebaseSrc\nSource Terminal: {source}"
                    f"\nChannel Name: {phys}",
                )
            for prop, value in (
                ("DAQmx_CO_Pulse_Ticks_InitialDelay", initial_delay),
                ("DAQmx_CO_Pulse_HighTicks", high_ticks),
                ("DAQmx_CO_Pulse_LowTicks", low_ticks),
            ):
                low = 0 if prop.endswith("InitialDelay") and value == 0 else MIN_TICKS
                if not low <= value <= MAX_TICKS:
                    raise DaqmxError(
                        INVALID_ATTRIBUTE_VALUE,
                        f"Property: {prop}\nRequested Value: {value}\nPossible "
                        f"Values: {MIN_TICKS} to {MAX_TICKS}\nChannel Name: {phys}",
                    )
            if not idle_low:
                raise DaqmxError(
                    INVALID_ATTRIBUTE_VALUE,
                    f"Property: DAQmx_CO_Pulse_IdleState\nthis simulation generates "
                    f"idle-low pulses only\nChannel Name: {phys}",
                )
            channel = Channel(
                name or phys,
                phys,
                "co",
                source=source,
                initial_delay=int(initial_delay),
                high_ticks=int(high_ticks),
                low_ticks=int(low_ticks),
            )
            self._add(task, channel)

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

    def configure_sample_clock(
        self, task: SimTask, rate: float, source: str, finite: bool, samps: int
    ) -> None:
        """Sample clock timing: rate, source terminal, finite or continuous."""
        self._require_channels(task)
        limit = task.max_rate
        if rate > limit:
            raise DaqmxError(
                SAMP_RATE_TOO_HIGH,
                f"Property: DAQmx_SampClk_Rate\nRequested Value: {rate:g}\n"
                f"Maximum Value: {limit:g}\nTask Name: {task.name}",
            )
        if rate < MIN_RATE_HZ:
            raise DaqmxError(
                SAMP_RATE_TOO_LOW,
                f"Property: DAQmx_SampClk_Rate\nRequested Value: {rate:g}\n"
                f"Minimum Value: {MIN_RATE_HZ:g}\nTask Name: {task.name}",
            )
        source = self._terminal(source.strip(), task) if source.strip() else ""
        if samps < 1 and finite:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                f"Property: DAQmx_SampQuant_SampPerChan\nRequested Value: {samps}",
            )
        with self.lock:
            task.rate, task.clock_source = float(rate), source
            task.finite, task.samps_per_chan = finite, int(samps)
            task.on_demand = task.implicit = False

    def configure_implicit(self, task: SimTask, finite: bool, samps: int) -> None:
        """Implicit timing (counter pulse trains)."""
        self._require_channels(task)
        if finite and samps < 1:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                f"Property: DAQmx_SampQuant_SampPerChan\nRequested Value: {samps}",
            )
        with self.lock:
            ch = task.channels[0]
            if ch.counts_ticks:  # the rate is the source clock's, known at start
                task.rate, task.clock_source = 0.0, ch.source
            else:
                task.rate, task.clock_source = ch.freq_hz, ""
            task.finite, task.samps_per_chan = finite, int(samps)
            task.on_demand, task.implicit = False, True

    def _terminal(self, text: str, task: SimTask) -> str:
        """A terminal's canonical name (DAQmx's routing error if unknown)."""
        name = self.spec.terminal(text)
        if name is None:
            raise DaqmxError(
                INVALID_ROUTING_SOURCE_TERMINAL_NAME,
                f"Source Terminal: {text}\nTask Name: {task.name}",
            )
        return name

    def configure_start_trigger(self, task: SimTask, source: str) -> None:
        """Digital-edge start trigger on a terminal."""
        source = self._terminal(source, task)
        with self.lock:
            task.trigger_source = source

    def write(self, task: SimTask, data: np.ndarray, auto_start: bool) -> int:
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

    def _check_ao(self, task: SimTask, data: np.ndarray) -> None:
        for ch, row in zip(task.channels, data, strict=True):
            low, high = float(np.min(row)), float(np.max(row))
            if low < ch.min_v - 1e-9 or high > ch.max_v + 1e-9:
                bad = low if low < ch.min_v else high
                raise DaqmxError(
                    INVALID_AO_DATA_WRITE,
                    f"Value: {bad:g} V\nChannel Name: {ch.name}\nRange: "
                    f"[{ch.min_v:g}, {ch.max_v:g}] V\nTask Name: {task.name}",
                )

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
                    player = _EdgePlayer(self, task, ch)
                    self._players[f"{task.name}:{ch.physical}"] = player
                    player.start()

    def _fire_start_trigger(self, task: SimTask) -> None:
        """Tasks waiting on this task's start trigger start with it."""
        terminal = f"/{self.spec.name}/{task.kind}/StartTrigger"
        for other in self.tasks.values():
            if (
                other.running
                and other.trigger_source == terminal
                and other.started_at is None
            ):
                other.started_at = task.started_at

    def ao_master(self) -> SimTask | None:
        """The running AO task on its own clock (what galvo probes refer to)."""
        for task in self.tasks.values():
            if task.running and task.kind == "ao" and task.master is None:
                return task
        return None

    def _clock_master(self, task: SimTask) -> SimTask | None:
        """The task generating this task's clock (None: its own clock, an
        external terminal, or a clock nothing generates yet: it waits)."""
        source = task.clock_source
        if not source:
            return None
        for other in self.tasks.values():
            if other is not task and self._generates(other, source):
                return other
        return None

    def _generates(self, other: SimTask, source: str) -> bool:
        """Whether a task's clock is the terminal `source`."""
        if not other.timed or (other.clock_source and other.kind != "co"):
            return False
        if other.kind == "co" and other.counts_ticks:
            return False
        lowered = source.lower()
        if lowered.endswith("/sampleclock"):
            return other.kind == lowered.rsplit("/", 2)[-2] and not other.clock_source
        if lowered.endswith("internaloutput") and other.kind == "co":
            ctr = lowered.rsplit("/", 1)[-1].removesuffix("internaloutput")
            return any(c.physical.lower().endswith("/" + ctr) for c in other.channels)
        return False

    def _attach_followers(self, master: SimTask) -> None:
        """Running tasks that wait for this task's clock follow it from now."""
        for other in self.tasks.values():
            if (
                other is not master
                and other.running
                and other.master is None
                and other.clock_source
                and self._generates(master, other.clock_source)
            ):
                other.master = master
                other.origin = int(self._generated(master))
                if other.counts_ticks:
                    other.rate = master.rate

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
            ch = task.channels[0]
            if task.master is None:
                tb = TIMEBASES.get(ch.source.rsplit("/", 1)[-1].lower())
                if tb is None or task.started_at is None:
                    return 0.0
                ticks = int((self.clock() - task.started_at) * tb) - ch.delay_ticks
            else:
                ticks = self.ticks(task) - ch.delay_ticks
            n = 0.0 if ticks <= 0 else (ticks - 1) // (ch.high_ticks + ch.low_ticks) + 1
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
        size = task.output_buf_size or (task.samps_per_chan if task.timed else 1)
        task.space_avail = (
            max(size - task.buffer_len(), 0) if not task.running else size
        )

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
                if time.monotonic() >= deadline:
                    raise DaqmxError(
                        SAMPLES_NOT_YET_AVAILABLE,
                        f"Samples requested: {want}\nAvailable: {have - task.read_pos}"
                        f"\nTask Name: {name}",
                    )
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
        pos = local % n if task.regenerate else min(local, n - 1)
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

    def wait_for_master(self, task: SimTask, stop: threading.Event) -> bool:
        """Block until the task's clock runs (False when stopped first)."""
        with self._started:
            while not stop.is_set() and task.running:
                clock = task.master or task
                if clock.running and clock.started_at is not None:
                    return True
                self._started.wait(0.05)
            return False

    def close(self) -> None:
        """Stop every task (server shutdown)."""
        for name in list(self.tasks):
            with contextlib.suppress(DaqmxError):
                self.clear_task(name)


class _EdgePlayer(threading.Thread):
    """Fires a line's rising edges into its listeners at their wall-clock times."""

    def __init__(self, device: SimDaqDevice, task: SimTask, channel: Channel) -> None:
        super().__init__(name=f"simdaq-edges-{channel.physical}", daemon=True)
        self.device, self.task, self.channel = device, task, channel
        self.index = task.rows().index(channel.physical)
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        if self is not threading.current_thread():
            self.join(timeout=2.0)

    def _edges(self) -> np.ndarray:
        """Local sample indices of the rising edges in one buffer period."""
        task = self.task
        row = task.buffers[-1].data[self.index] > 0.5
        prev = np.roll(row, 1)
        if not task.regenerate:
            prev[0] = False
        return np.flatnonzero(row & ~prev).astype(np.int64)

    def _edge_ticks(self) -> Iterator[int]:
        """Clock tick (local to the task) of every rising edge, in order."""
        task, ch = self.task, self.channel
        if ch.counts_ticks:  # pulses counted on another task's sample clock
            k = 0
            while k < task.total():
                yield ch.pulse_tick(k)
                k += 1
            return
        if task.kind == "co":  # own timebase: one edge per period of its clock
            k = 0
            while k < task.total():
                yield k
                k += 1
            return
        edges, period = self._edges(), task.buffer_len()
        k = 0
        while len(edges):
            local = (k // len(edges)) * period + int(edges[k % len(edges)])
            if local >= task.total():
                return
            yield local
            k += 1

    def _probe_at(self, clock: SimTask, index: int, due: float) -> Probe:
        """What the card plays from the edge on (a counter on its own timebase
        is referred to the AO task by wall clock)."""
        if self.task.kind != "co" or self.task.master is not None:
            return self.device._probe(clock, index)
        ao = self.device.ao_master()
        if ao is None or ao.started_at is None:
            return self.device._probe(clock, 0)
        return self.device._probe(ao, round((due - ao.started_at) * (ao.rate or 0)))

    def run(self) -> None:
        device, task, stop = self.device, self.task, self._stop_event
        if self.channel.counts_ticks and task.master is None:
            return  # counts edges of a terminal nothing drives
        if not device.wait_for_master(task, stop):
            return
        clock = task.master or task
        rate = clock.rate or 1.0
        origin = task.origin if task.master else 0
        listeners = device._edge_listeners.get(self.channel.physical, [])
        assert clock.started_at is not None
        # An edge on another task's sample clock happens once the card has
        # generated its tick: it fires when that tick is counted (one sample
        # after it began), so what was fired is exactly what the counts say, and
        # nothing fires after a stop. A counter on its own timebase fires on time.
        exact = not (task.kind == "co" and task.master is None)
        for tick in self._edge_ticks():
            master_index = tick + origin
            due = clock.started_at + master_index / rate
            wake = due + (1.0 / rate if exact else 0.0)
            while True:
                delay = wake - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                with device.lock:
                    running = task.running and clock.running
                    if device.ticks(task) > tick or (running and not exact):
                        probe = self._probe_at(clock, master_index, due)
                        break
                    if not running:
                        return
                wake = time.monotonic() + min(1.0 / rate, 0.001)  # rounding: retry
            for listener in listeners:
                try:
                    listener(probe, due)
                except Exception:
                    logger.exception("edge listener failed")
