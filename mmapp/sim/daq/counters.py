"""Counter output: pulse trains by frequency, time or ticks of a source
terminal, and where their rising edges fall."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mmapp.sim.daq.device import DeviceSpec, expand_channels
from mmapp.sim.daq.errors import (
    ATTR_NOT_SUPPORTED,
    INVALID_ATTRIBUTE_VALUE,
    INVALID_ROUTING_SOURCE_TERMINAL_NAME,
    OPERATION_TIMED_OUT,
    PHYSICAL_CHAN_DOES_NOT_EXIST,
    DaqmxError,
)

if TYPE_CHECKING:
    from mmapp.sim.daq.card import Channel, SimTask

MIN_TICKS, MAX_TICKS = 2, 2**32 - 1  # X-series counter pulse ticks and delay
LEVEL_HIGH = 10192
MEAS_TIMEBASE_HZ = 100e6  # what CI pulse measurements count ticks of
# UsageTypeCI: what a counter input measures
COUNT_EDGES, PULSE_WIDTH = 10125, 10359
PULSE_FREQ, PULSE_TIME, PULSE_TICKS = 15864, 15865, 15866
# a PCIe-6363 counter's default source and gate terminals (ctr0..ctr3)
DEFAULT_SOURCES = ("PFI8", "PFI3", "PFI0", "PFI5")
DEFAULT_GATES = ("PFI9", "PFI4", "PFI1", "PFI6")
TIMEBASES = {"20mhztimebase": 20e6, "100khztimebase": 100e3, "100mhztimebase": 100e6}


class PulseChannel:
    """A counter channel's pulse shape (mixin of Channel)."""

    kind: str
    freq_hz: float
    duty: float
    initial_delay: int
    high_ticks: int
    low_ticks: int
    idle_state: int

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
    def counts_ticks(self) -> bool:
        """A counter pulse train timed in ticks of a source terminal."""
        return self.kind == "co" and self.high_ticks > 0

    @property
    def delay_ticks(self) -> int:
        """Ticks before the first pulse: an initial delay of 0 (DAQmx's default)
        is the counter's minimum."""
        return max(self.initial_delay, MIN_TICKS)

    def pulse_tick(self, k: int) -> int:
        """Source tick of the k-th rising edge (ticks counters; idle high, the
        pulse is low first)."""
        first = self.delay_ticks + (
            self.low_ticks if self.idle_state == LEVEL_HIGH else 0
        )
        return first + k * (self.high_ticks + self.low_ticks)


def pulses_generated(
    task: SimTask, ticks: int | None, elapsed_s: float | None
) -> float:
    """Rising edges a ticks-timed counter task has generated: from its master's
    `ticks`, else from `elapsed_s` on its source timebase (0 if it has none)."""
    ch = task.channels[0]
    if ticks is None:
        tb = TIMEBASES.get(ch.source.rsplit("/", 1)[-1].lower())
        if tb is None or elapsed_s is None:
            return 0.0
        ticks = int(elapsed_s * tb)
    ticks -= ch.pulse_tick(0)
    return 0.0 if ticks <= 0 else (ticks - 1) // (ch.high_ticks + ch.low_ticks) + 1


class CounterOutput:
    """CO channels of the card (mixin of SimDaqDevice)."""

    spec: DeviceSpec
    _add: Callable[[SimTask, Channel], None]

    def add_co_pulse_freq(
        self, task: SimTask, counter: str, name: str, freq: float, duty: float
    ) -> None:
        """Add a counter output pulse train."""
        from mmapp.sim.daq.card import Channel

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
        from mmapp.sim.daq.card import Channel

        given = source.strip()
        source = self.spec.terminal(given) or given
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
            channel = Channel(
                name or phys,
                phys,
                "co",
                source=_qualified(given, self.spec.name, source),
                initial_delay=int(initial_delay),
                high_ticks=int(high_ticks),
                low_ticks=int(low_ticks),
                idle_state=10214 if idle_low else LEVEL_HIGH,
            )
            self._add(task, channel)


class CounterInput:
    """CI channels of the card (mixin of SimDaqDevice): what a counter measures
    on its terminal is what the card generates there (another counter's
    output); a terminal nothing drives has no pulses to measure."""

    spec: DeviceSpec
    lock: threading.RLock
    tasks: dict[str, SimTask]
    _add: Callable[[SimTask, Channel], None]
    _generated: Callable[[SimTask], float]

    def add_ci(
        self, task: SimTask, counter: str, name: str, meas: int, **settings: Any
    ) -> None:
        """Add counter input channels measuring `meas` (a UsageTypeCI value);
        `settings` name Channel fields (range, initial count)."""
        from mmapp.sim.daq.card import Channel

        for phys in expand_channels(counter):
            if phys not in self.spec.counter_channels():
                raise DaqmxError(
                    PHYSICAL_CHAN_DOES_NOT_EXIST, f"Physical Channel Name: {phys}"
                )
            index = int(phys.rsplit("ctr", 1)[1])
            terms = DEFAULT_SOURCES if meas == COUNT_EDGES else DEFAULT_GATES
            ch = Channel(name or phys, phys, "ci", ci_meas=meas)
            ch.ci_term = f"/{self.spec.name}/{terms[index % len(terms)]}"
            for key, value in settings.items():
                setattr(ch, key, value)
            self._add(task, ch)

    def measured_pulse(self, ch: Channel) -> tuple[float, float, int, int] | None:
        """(frequency, duty cycle, high ticks, low ticks) of the pulse train on
        a CI channel's terminal (ticks of the 100 MHz timebase), or None."""
        term = (self.spec.terminal(ch.ci_term) or ch.ci_term).lower()
        for other in self.tasks.values():
            if not other.running or other.kind != "co":
                continue
            for co in other.channels:
                ctr = co.physical.rsplit("/", 1)[-1].lower()
                if term.endswith((f"/{ctr}internaloutput", f"/{ctr}out")):
                    return _pulse_shape(co)
        return None

    def counted(self, ch: Channel) -> int:
        """Edges a count-edges channel has counted on its terminal since its
        task started (a counter's output: the pulses it generated)."""
        term = (self.spec.terminal(ch.ci_term) or ch.ci_term).lower()
        for other in self.tasks.values():
            if other.kind != "co" or not other.running:
                continue
            for co in other.channels:
                ctr = co.physical.rsplit("/", 1)[-1].lower()
                if term.endswith((f"/{ctr}internaloutput", f"/{ctr}out")):
                    return int(self._generated(other))
        return 0

    def read_counter(self, task: SimTask, n: int, timeout: float) -> np.ndarray:
        """On-demand counter reads: rows (frequency, duty) / (high, low time) /
        (high, low ticks) for pulse measurements, (count) for edge counting."""
        count = 1 if n < 0 else max(n, 1)
        ch = task.channels[0]
        with self.lock:
            if ch.ci_meas == COUNT_EDGES:
                value = ch.initial_count + (self.counted(ch) if task.running else 0)
                return np.full((1, count), float(value))
            pulse = self.measured_pulse(ch)
        if pulse is None:  # no pulses arrive: the read waits out its timeout
            raise DaqmxError(OPERATION_TIMED_OUT, f"Task Name: {task.name}")
        freq, duty, high, low = pulse
        rows = {
            PULSE_FREQ: (freq, duty),
            PULSE_TIME: (duty / freq, (1.0 - duty) / freq),
            PULSE_TICKS: (float(high), float(low)),
            PULSE_WIDTH: (duty / freq,),
        }[ch.ci_meas]
        return np.repeat(np.array(rows, dtype=np.float64)[:, None], count, axis=1)

    def write_pulses(
        self, task: SimTask, spec: str, first: np.ndarray, second: np.ndarray
    ) -> int:
        """Counter output writes: each channel's pulse train takes the last
        sample written (`spec`: 'freq' (Hz, duty), 'time' (s high, s low) or
        'ticks' (high, low)); returns samples per channel."""
        chans = len(task.channels)
        if not chans or task.kind != "co":
            raise DaqmxError(ATTR_NOT_SUPPORTED, f"Task Name: {task.name}")
        a = np.asarray(first, dtype=np.float64).reshape(chans, -1)
        b = np.asarray(second, dtype=np.float64).reshape(chans, -1)
        with self.lock:
            for ch, x, y in zip(task.channels, a[:, -1], b[:, -1], strict=True):
                if spec == "freq":
                    ch.freq_hz, ch.duty = float(x), float(y)
                elif spec == "time":
                    ch.freq_hz, ch.duty = 1.0 / (x + y), float(x / (x + y))
                else:
                    ch.high_ticks, ch.low_ticks = int(x), int(y)
        return a.shape[1]


def _pulse_shape(co: Channel) -> tuple[float, float, int, int]:
    """A CO channel's pulse as (frequency, duty, high ticks, low ticks)."""
    if co.counts_ticks:
        tb = TIMEBASES.get(co.source.rsplit("/", 1)[-1].lower(), MEAS_TIMEBASE_HZ)
        period = co.high_ticks + co.low_ticks
        freq, duty = tb / period, co.high_ticks / period
    else:
        freq, duty = co.freq_hz, co.duty
    high = round(duty / freq * MEAS_TIMEBASE_HZ)
    return freq, duty, high, round(MEAS_TIMEBASE_HZ / freq) - high


def _qualified(given: str, device: str, canonical: str) -> str:
    """A terminal as DAQmx reports it back: the name given, with the device
    in front when it had none (DAQmx keeps the spelling it was given)."""
    if given.startswith("/"):
        return canonical
    return f"/{device}/{given}"
