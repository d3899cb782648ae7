"""Counter output: pulse trains by frequency, time or ticks of a source
terminal, and where their rising edges fall."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mmapp.sim.daq.device import DeviceSpec, expand_channels
from mmapp.sim.daq.errors import (
    INVALID_ATTRIBUTE_VALUE,
    INVALID_ROUTING_SOURCE_TERMINAL_NAME,
    PHYSICAL_CHAN_DOES_NOT_EXIST,
    DaqmxError,
)

if TYPE_CHECKING:
    from mmapp.sim.daq.card import Channel, SimTask

MIN_TICKS, MAX_TICKS = 2, 2**32 - 1  # X-series counter pulse ticks and delay
TIMEBASES = {"20mhztimebase": 20e6, "100khztimebase": 100e3, "100mhztimebase": 100e6}


class PulseChannel:
    """A counter channel's pulse shape (mixin of Channel)."""

    kind: str
    freq_hz: float
    duty: float
    initial_delay: int
    high_ticks: int
    low_ticks: int

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
        """Source tick of the k-th rising edge (ticks counters)."""
        return self.delay_ticks + k * (self.high_ticks + self.low_ticks)


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
    ticks -= ch.delay_ticks
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
