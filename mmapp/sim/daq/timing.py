"""Timing and triggers: sample clocks (own, another subsystem's, or implicit),
digital-edge and analog start triggers, reference and pause-trigger settings,
exported signals, and which task's clock another task follows.

`TaskTiming` is the timing state of a task as the attribute tables see it;
`Timing` configures it, checks it when a task is verified, and ties clocks and
triggers together across tasks (both mixins: of `SimTask` and `SimDaqDevice`
in card.py).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from mmapp.sim.daq.device import (
    MAX_AI_MULTI_RATE_HZ,
    MAX_AI_RATE_HZ,
    MAX_AO_RATE_HZ,
    MAX_DO_RATE_HZ,
    DeviceSpec,
)
from mmapp.sim.daq.errors import (
    INVALID_ATTRIBUTE_VALUE,
    INVALID_ROUTING_DESTINATION_TERMINAL_NAME,
    INVALID_ROUTING_SOURCE_TERMINAL_NAME,
    SAMP_RATE_TOO_HIGH,
    SAMP_RATE_TOO_LOW,
    TRIG_WHEN_ON_DEMAND_SAMP_TIMING,
    DaqmxError,
)

if TYPE_CHECKING:
    from mmapp.sim.daq.card import Channel, SimTask
    from mmapp.sim.daq.edges import Probe

MIN_RATE_HZ = 0.1
DEFAULT_RATE_HZ = 1000.0  # a sample clock's rate until one is configured
SAMP_CLK_TIMEBASE_HZ = 100_000_000.0  # X-series: the sample clock divides 100 MHz
# A retrigger this much before the burst ends still counts: the simulated
# camera's exposure-out edges carry thread-wake jitter that real ones do not.
EDGE_JITTER_S = 0.0005
FINITE, CONTINUOUS = 10178, 10123
SAMPLE_CLOCK, ON_DEMAND, IMPLICIT = 10388, 10390, 10451
RISING, FALLING = 10280, 10171
TRIG_NONE, DIGITAL_EDGE = 10230, 10150
LEVEL_HIGH, LEVEL_LOW = 10192, 10214
ANALOG_EDGE, ANALOG_WINDOW, ANALOG_LEVEL, DIGITAL_LEVEL = 10099, 10103, 10101, 10152
ENTERING_WINDOW, INSIDE_WINDOW, ABOVE_LEVEL = 10163, 10199, 10093
EXPORT_LINE = re.compile(r"^(PFI|RTSI)\d+$")  # where a task can export a signal
ANALOG_SOURCES = ("APFI0", "APFI1")
EXPORTED = {  # Signal -> the Exports field that routes it
    12484: "ai_conv_clk",
    12487: "samp_clk",
    12490: "ref_trig",
    12491: "start_trig",
    12492: "adv_cmplt_event",
    12494: "ctr_out_event",
}  # X-series analog trigger inputs (or an AI channel)


class Settings:
    """A dataclass of attribute-backed settings (reset: the field's default)."""

    def reset_field(self, name: str) -> None:
        """Attribute reset: back to the default."""
        default = next(f.default for f in fields(self) if f.name == name)  # type: ignore[arg-type]
        setattr(self, name, default)


@dataclass
class Exports(Settings):
    """Where a task exports its signals (PFI or RTSI terminals; '' = not
    exported). DAQmx checks them when the task is verified."""

    samp_clk: str = ""
    start_trig: str = ""
    ref_trig: str = ""
    ctr_out_event: str = ""
    rdy_for_xfer_event: str = ""
    ai_conv_clk: str = ""
    adv_cmplt_event: str = ""


@dataclass
class AnalogTrigger(Settings):
    """An analog trigger's settings: edge (start, reference) or level (pause)
    on `src`, window on `win_src`. Nothing drives the APFI inputs of the
    simulated card, so an analog trigger is met as soon as the task starts
    (as on NI's simulated devices)."""

    src: str = ""
    level: float = 0.0
    slope: int = RISING
    when: int = ABOVE_LEVEL
    win_src: str = ""
    win_top: float = 0.0
    win_btm: float = 0.0
    win_when: int = ENTERING_WINDOW


@dataclass
class PauseAnalogTrigger(AnalogTrigger):
    """A pause trigger's analog settings (its window pauses inside it)."""

    win_when: int = INSIDE_WINDOW


class TaskTiming:
    """A task's sample clock and start trigger as attributes (mixin of SimTask)."""

    rate: float | None
    on_demand: bool
    implicit: bool
    finite: bool
    clock_source: str
    trigger_source: str | None
    start_analog: int
    exports: Exports
    samps_per_chan: int
    timed: bool
    resolve: Callable[[str], str | None]
    ref_type: int
    pause_type: int
    name: str
    device: str
    channels: list[Channel]
    kind: str | None

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
        """Sample clock source terminal (DAQmx's routing error once read if
        the card has no such terminal)."""
        if self.clock_source:
            name = self.resolve(self.clock_source)
            if name is None:
                raise DaqmxError(
                    INVALID_ROUTING_SOURCE_TERMINAL_NAME,
                    f"Source Terminal: {self.clock_source}\nTask Name: {self.name}",
                )
            return name
        if self.kind in ("ao", "ai", "do", "di"):
            return f"/{self.device}/{self.kind}/SampleClockTimebase"
        return ""

    @samp_clk_src.setter
    def samp_clk_src(self, value: str) -> None:
        self.clock_source = self.resolve(value) or value

    @property
    def samp_quant(self) -> int:
        """Samples per channel (a finite AI acquisition takes at least 2: DAQmx
        reports it once the value is read or the task verified)."""
        if self.kind == "ai" and self.finite and self.timed and self.samps_per_chan < 2:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                f"Property: DAQmx_SampQuant_SampPerChan\nRequested Value: "
                f"{self.samps_per_chan}\nMinimum Value: 2\nTask Name: {self.name}",
            )
        return self.samps_per_chan

    @samp_quant.setter
    def samp_quant(self, value: int) -> None:
        self.samps_per_chan = int(value)

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
        """Start trigger type (a digital edge when it has a source terminal)."""
        if self.trigger_source is not None:
            return DIGITAL_EDGE
        return self.start_analog

    @start_type.setter
    def start_type(self, value: int) -> None:
        value = int(value)
        self.start_analog = (
            value if value in (ANALOG_EDGE, ANALOG_WINDOW) else TRIG_NONE
        )
        if value != DIGITAL_EDGE:
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


class Timing:
    """Clocks and triggers across the card's tasks (mixin of SimDaqDevice)."""

    spec: DeviceSpec
    lock: threading.RLock
    _started: threading.Condition
    tasks: dict[str, SimTask]
    clock: Callable[[], float]
    _require_channels: Callable[[SimTask], None]
    _generated: Callable[[SimTask], float]
    _probe: Callable[[SimTask, int], Probe]

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
        # an unknown source is DAQmx's routing error once verified or read back
        source = self.spec.terminal(source) or source.strip() if source.strip() else ""
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

    def analog_source(self, text: str, task: SimTask) -> str:
        """An analog trigger source: APFI0/1 as a terminal name, or an AI
        channel as given."""
        spec = self.spec
        name = text.strip().lstrip("/")
        short = name.split("/", 1)[1] if name.startswith(spec.name + "/") else name
        for apfi in ANALOG_SOURCES:
            if short.lower() == apfi.lower():
                return f"/{spec.name}/{apfi}"
        if f"{spec.name}/{short}" in spec.ai_channels():
            return short
        raise DaqmxError(
            INVALID_ROUTING_SOURCE_TERMINAL_NAME,
            f"Source Terminal: {text}\nTask Name: {task.name}",
        )

    def configure_analog_trigger(
        self, task: SimTask, which: str, kind: int, source: str, **settings: float
    ) -> None:
        """An analog edge or window start/reference trigger (`which`: 'start'
        or 'ref'); `settings` name AnalogTrigger fields."""
        source = self.analog_source(source, task)
        with self.lock:
            trig = task.start_anlg if which == "start" else task.ref_anlg
            if kind == ANALOG_WINDOW:
                trig.win_src = source
            else:
                trig.src = source
            for key, value in settings.items():
                setattr(trig, key, value)
            if which == "start":
                task.start_type = kind
            else:
                task.ref_type = kind

    def configure_ref_trigger(
        self, task: SimTask, source: str, edge: int, pretrig: int
    ) -> None:
        """Digital-edge reference trigger (met at once: the card acquires its
        finite samples as if the trigger came after the pretrigger samples)."""
        source = self._terminal(source, task)
        with self.lock:
            task.ref_type, task.ref_source = DIGITAL_EDGE, source
            task.ref_edge, task.pretrig_samples = edge, int(pretrig)

    def verify(self, task: SimTask) -> None:
        """DAQmx's checks on a task about to run: triggers need a sample clock,
        terminals exist, exported signals go to PFI or RTSI lines."""
        triggered = task.start_type != TRIG_NONE or task.ref_type != TRIG_NONE
        if triggered and task.on_demand and task.kind != "co":
            raise DaqmxError(TRIG_WHEN_ON_DEMAND_SAMP_TIMING, f"Task Name: {task.name}")
        if task.timed:
            _ = task.samp_clk_src, task.samp_quant  # their deferred errors
        for f in fields(task.exports):
            term = getattr(task.exports, f.name)
            name = self.spec.terminal(term) if term else ""
            if name is None or (term and not EXPORT_LINE.match(name.rsplit("/")[-1])):
                raise DaqmxError(
                    INVALID_ROUTING_DESTINATION_TERMINAL_NAME,
                    f"Destination Terminal: {term}\nTask Name: {task.name}",
                )

    def export_signal(self, task: SimTask, signal: int, terminal: str) -> None:
        """Route one of the task's signals to an output terminal (checked when
        the task is verified, as DAQmx does)."""
        if signal not in EXPORTED:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                f"Property: DAQmx_Exported_Signal\nRequested Value: {signal}"
                f"\nTask Name: {task.name}",
            )
        with self.lock:
            setattr(task.exports, EXPORTED[signal], terminal)

    def configure_start_trigger(self, task: SimTask, source: str) -> None:
        """Digital-edge start trigger on a terminal."""
        source = self._terminal(source, task)
        with self.lock:
            task.trigger_source = source

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

    def wait_for_master(self, task: SimTask, stop: threading.Event) -> bool:
        """Block until the task's clock runs (False when stopped first)."""
        with self._started:
            while not stop.is_set() and task.running:
                clock = task.master or task
                if clock.running and clock.started_at is not None:
                    return True
                self._started.wait(0.05)
            return False
