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
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from mmapp.sim.daq_errors import (
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
    ROUTE_NOT_SUPPORTED_BY_HW,
    SAMP_RATE_TOO_HIGH,
    SAMP_RATE_TOO_LOW,
    WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE,
    WRITE_BUFFER_TOO_SMALL,
    DaqmxError,
)

logger = logging.getLogger(__name__)

AO_RANGE_V = 10.0
MAX_AO_RATE_HZ = 2_000_000.0
MAX_DO_RATE_HZ = 10_000_000.0
MIN_RATE_HZ = 0.1
MIN_TICKS, MAX_TICKS = 2, 2**32 - 1  # X-series counter pulse ticks and delay
# A retrigger this much before the burst ends still counts: the simulated
# camera's exposure-out edges carry thread-wake jitter that real ones do not.
EDGE_JITTER_S = 0.0005
Probe = Callable[[float], dict[str, float]]  # delay after the edge (s) -> values
EdgeListener = Callable[[Probe, float], None]  # (probe, monotonic edge time)


@dataclass(frozen=True)
class DeviceSpec:
    """Name and channel set of a simulated X-series card (PCIe-6363 layout)."""

    name: str = "Dev1"
    product_type: str = "PCIe-6363"
    ao: int = 4
    ai: int = 32
    port_lines: tuple[int, ...] = (32, 8, 8)  # port0 is hardware-timed
    counters: int = 4
    pfi: int = 16

    def ao_channels(self) -> list[str]:
        """Physical AO channels."""
        return [f"{self.name}/ao{i}" for i in range(self.ao)]

    def ai_channels(self) -> list[str]:
        """Physical AI channels (listed, not simulated)."""
        return [f"{self.name}/ai{i}" for i in range(self.ai)]

    def do_lines(self) -> list[str]:
        """Every digital line."""
        return [
            f"{self.name}/port{p}/line{i}"
            for p, n in enumerate(self.port_lines)
            for i in range(n)
        ]

    def do_ports(self) -> list[str]:
        """Digital ports."""
        return [f"{self.name}/port{p}" for p in range(len(self.port_lines))]

    def counter_channels(self) -> list[str]:
        """Counters."""
        return [f"{self.name}/ctr{i}" for i in range(self.counters)]

    def terminals(self) -> list[str]:
        """PFI terminals and the internal clocks and triggers that can be routed."""
        d = self.name
        return [f"/{d}/PFI{i}" for i in range(self.pfi)] + [
            f"/{d}/ao/SampleClock",
            f"/{d}/ao/StartTrigger",
            f"/{d}/do/SampleClock",
        ]


_RANGE = re.compile(r"^(?P<prefix>.*?)(?P<first>\d+):(?P<last>\d+)$")


def expand_channels(text: str) -> list[str]:
    """'Dev1/ao0:2, Dev1/ao3' -> ['Dev1/ao0', 'Dev1/ao1', 'Dev1/ao2', 'Dev1/ao3']."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = _RANGE.match(part)
        if m is None:
            names.append(part.lstrip("/"))
            continue
        first, last = int(m["first"]), int(m["last"])
        step = 1 if last >= first else -1
        prefix = m["prefix"].lstrip("/")
        names += [f"{prefix}{i}" for i in range(first, last + step, step)]
    return names


@dataclass
class Channel:
    """One virtual channel of a task."""

    name: str
    physical: str
    kind: str  # "ao", "do" or "co"
    min_v: float = -AO_RANGE_V
    max_v: float = AO_RANGE_V
    freq_hz: float = 0.0  # counters on their own timebase
    duty: float = 0.5
    source: str = ""  # counters counting ticks of a terminal (e.g. the AO clock)
    initial_delay: int = 0  # ticks before the first rising edge
    high_ticks: int = 0
    low_ticks: int = 0

    @property
    def counts_ticks(self) -> bool:
        """A counter pulse train timed in ticks of a source terminal."""
        return self.kind == "co" and self.high_ticks > 0

    def pulse_tick(self, k: int) -> int:
        """Source tick of the k-th rising edge (ticks counters)."""
        return self.initial_delay + k * (self.high_ticks + self.low_ticks)


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


class SimDaqDevice:
    """The card: tasks, their real-time playback and the lines' held values."""

    def __init__(self, spec: DeviceSpec | None = None) -> None:
        self.spec = spec or DeviceSpec()
        self.lock = threading.RLock()
        self._started = threading.Condition(self.lock)
        self.tasks: dict[str, SimTask] = {}
        self.held: dict[str, float] = dict.fromkeys(
            self.spec.ao_channels() + self.spec.do_lines(), 0.0
        )
        self._edge_listeners: dict[str, list[EdgeListener]] = {}
        self._players: dict[str, _EdgePlayer] = {}
        self._next_id = 1
        self.calls: list[str] = []  # RPC names, for tests and diagnostics
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
            task = SimTask(name)
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
            del self.tasks[name]

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

    def add_do_lines(self, task: SimTask, lines: str, name: str) -> None:
        """Add digital output lines (one channel per line)."""
        for phys in expand_channels(lines):
            if phys in self.spec.do_ports():
                raise DaqmxError(
                    INVALID_ATTRIBUTE_VALUE,
                    f"Whole ports are not supported by this simulation; give lines "
                    f"(e.g. {phys}/line0:7)",
                )
            if phys not in self.spec.do_lines():
                raise DaqmxError(
                    PHYSICAL_CHAN_DOES_NOT_EXIST, f"Physical Channel Name: {phys}"
                )
            self._add(task, Channel(name or phys, phys, "do"))

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
        at least 2 ticks for each of the three.
        """
        source = "/" + source.strip().lstrip("/")
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
                if not MIN_TICKS <= value <= MAX_TICKS:
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
        limit = MAX_AO_RATE_HZ if task.kind == "ao" else MAX_DO_RATE_HZ
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
        source = source.strip()
        if source:
            source = "/" + source.lstrip("/")
            if source not in self.spec.terminals():
                raise DaqmxError(
                    ROUTE_NOT_SUPPORTED_BY_HW,
                    f"Source terminal: {source}\nTask Name: {task.name}",
                )
        if samps < 1 and finite:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                f"Property: DAQmx_SampQuant_SampPerChan\nRequested Value: {samps}",
            )
        with self.lock:
            task.rate, task.clock_source = float(rate), source
            task.finite, task.samps_per_chan = finite, int(samps)

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

    def configure_start_trigger(self, task: SimTask, source: str) -> None:
        """Digital-edge start trigger on a terminal."""
        source = "/" + source.strip().lstrip("/")
        if source not in self.spec.terminals():
            raise DaqmxError(
                ROUTE_NOT_SUPPORTED_BY_HW,
                f"Trigger source: {source}\nTask Name: {task.name}",
            )
        with self.lock:
            task.trigger_source = source

    def write(self, task: SimTask, data: np.ndarray, auto_start: bool) -> int:
        """Write samples (channels x samples); returns samples per channel."""
        self._require_channels(task)
        if data.ndim != 2 or data.shape[0] != len(task.channels):
            raise DaqmxError(
                WRITE_BUFFER_TOO_SMALL,
                f"Channels in data: {data.shape[0] if data.ndim else 0}; channels "
                f"in task: {len(task.channels)}",
            )
        if data.shape[1] < 1:
            raise DaqmxError(INVALID_NUM_SAMPS_TO_WRITE, f"Task Name: {task.name}")
        if task.kind == "ao":
            self._check_ao(task, data)
        with self.lock:
            if not task.timed:  # on demand: the value goes out now
                for ch, row in zip(task.channels, data, strict=True):
                    self.held[ch.physical] = float(row[-1])
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
            if task.kind != "co" and not task.buffers:
                raise DaqmxError(OUTPUT_BUFFER_EMPTY, f"Task Name: {task.name}")
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
            if task.started_at is not None and task.kind != "co":
                self._fire_start_trigger(task)
            self._started.notify_all()
            for ch in task.channels:
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
        source = task.clock_source
        if not source:
            return None
        if task.counts_ticks and not source.endswith("/SampleClock"):
            return None  # external edges (a PFI): nothing drives them here
        kind = source.rsplit("/", 2)[-2]  # "/Dev1/ao/SampleClock" -> "ao"
        for other in self.tasks.values():
            own_clock = other.timed and other.clock_source == ""
            if other is not task and other.kind == kind and own_clock:
                return other
        raise DaqmxError(
            ROUTE_NOT_SUPPORTED_BY_HW,
            f"Sample clock source {source}: no {kind} task on {self.spec.name} "
            f"generates that clock (Task Name: {task.name})",
        )

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
                for i, ch in enumerate(task.channels):
                    self.held[ch.physical] = float(self._value(task, int(done) - 1, i))
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
            if task.master is None:
                return 0.0
            ch = task.channels[0]
            ticks = self.ticks(task) - ch.initial_delay
            n = 0.0 if ticks <= 0 else (ticks - 1) // (ch.high_ticks + ch.low_ticks) + 1
        elif task.master is not None:
            n = self._generated(task.master) - task.origin
        elif task.retriggerable:
            n = float(task.bursts * task.samps_per_chan)
            return n
        elif task.started_at is None:
            n = 0.0
        else:
            n = np.floor((self.clock() - task.started_at) * (task.rate or 0.0))
        return float(min(max(n, 0.0), task.total()))

    # --- values -------------------------------------------------------------------
    def _value(self, task: SimTask, local: int, index: int) -> float:
        """What channel `index` of the task plays at its local sample `local`."""
        if local < 0 or not task.buffers:
            return self.held.get(task.channels[index].physical, 0.0)
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
                    for i, ch in enumerate(t.channels):
                        values[ch.physical] = self._value(t, local, i)
            return values

        return probe

    def output_value(self, line: str) -> float:
        """What a line outputs now (running task sample, else the held value)."""
        line = line.lstrip("/")
        with self.lock:
            for task in self.tasks.values():
                if not task.running:
                    continue
                for i, ch in enumerate(task.channels):
                    if ch.physical == line and task.kind != "co":
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
        self.index = task.channels.index(channel)
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
