"""Analog input: voltage channels on the AI terminals and on the internal
loopback channels (`_aoN_vs_aognd`), which read what AO outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmapp.sim.daq.device import ai_range, expand_channels, physical
from mmapp.sim.daq.errors import (
    AI_MAX_NOT_SPECIFIED,
    INVALID_ATTRIBUTE_VALUE,
    DaqmxError,
)

if TYPE_CHECKING:
    from mmapp.sim.daq.card import SimTask
    from mmapp.sim.daq.scales import Scale

RSE, DIFF, DEFAULT_TERM = 10083, 10106, -1
VOLTS, FROM_CUSTOM_SCALE = 10348, 10065
TEMPERATURE_RTD, PT_3750 = 10301, 12481
# Callendar-Van Dusen coefficients (A, B, C) of each RTDType
RTD_COEFFS = {
    12481: (3.81e-3, -6.02e-7, -6.0e-12),  # Pt3750
    10071: (3.9083e-3, -5.775e-7, -4.183e-12),  # Pt3851
    12482: (3.9692e-3, -5.8495e-7, -4.233e-12),  # Pt3911
    10069: (3.9739e-3, -5.870e-7, -4.4e-12),  # Pt3916
    10053: (3.9787e-3, -5.86863e-7, -4.167e-12),  # Pt3920
    12483: (3.9888e-3, -5.915e-7, -3.85e-12),  # Pt3928
}


class AIRange:
    """An AI channel's range as DAQmx coerces it (mixin of Channel)."""

    min_v: float
    max_v: float
    rng_high: float
    rng_low: float
    max_unset: bool
    units: int
    scale_name: str
    scales: dict[str, Scale]

    @property
    def scale(self) -> Scale | None:
        """The custom scale the channel reports in (None: volts)."""
        if self.units != FROM_CUSTOM_SCALE:
            return None
        return self.scales.get(self.scale_name)

    def scaled(self, volts: float) -> float:
        """Volts in the channel's units."""
        scale = self.scale
        return volts if scale is None else scale.scaled(volts)

    def prescaled(self, value: float) -> float:
        """A value in the channel's units as volts."""
        scale = self.scale
        return value if scale is None else scale.prescaled(value)

    @property
    def ai_max(self) -> float:
        """AI maximum as DAQmx reports it: coerced to the range's top (an error
        once reset, until set again)."""
        if self.max_unset:
            raise DaqmxError(AI_MAX_NOT_SPECIFIED, "Property: DAQmx_AI_Max")
        return self.scaled(self.rng_high)

    @ai_max.setter
    def ai_max(self, value: float) -> None:
        self.max_v = self.prescaled(value)
        self.max_unset = False
        self._coerce_ai_range()

    @property
    def ai_min(self) -> float:
        """AI minimum as DAQmx reports it: coerced to the range's bottom."""
        return self.scaled(self.rng_low)

    @ai_min.setter
    def ai_min(self, value: float) -> None:
        self.min_v = self.prescaled(value)
        self._coerce_ai_range()

    def _coerce_ai_range(self) -> None:
        rng = ai_range(self.min_v, self.max_v)
        if rng is not None:
            self.rng_high, self.rng_low = rng, -rng


class AnalogInput:
    """AI channels of the card (a mixin of SimDaqDevice)."""

    def add_ai_voltage(
        self,
        task: SimTask,
        physical_channel: str,
        name: str,
        min_v: float,
        max_v: float,
        term_cfg: int,
    ) -> None:
        """Add AI voltage channels; the range picks the smallest that covers it."""
        from mmapp.sim.daq.card import Channel
        from mmapp.sim.daq.dio import _names

        spec = self.spec  # type: ignore[attr-defined]
        allowed = spec.ai_channels() + spec.internal_ai_channels()
        phys = [physical(spec, p, allowed) for p in expand_channels(physical_channel)]
        if min_v >= max_v:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                f"Property: DAQmx_AI_Min\nRequested Value: {min_v:g}\n"
                f"Maximum Value: {max_v:g}",
            )
        rng = ai_range(min_v, max_v)
        if rng is None:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                f"Property: DAQmx_AI_Max\nRequested Value: {max_v:g}\n"
                f"Possible Values: [-10.0, 10.0]",
            )
        for p, nm in zip(phys, _names(name, len(phys)), strict=True):
            internal = "/_ao" in p
            # the 6363's AI terminals default to differential
            default = RSE if internal else DIFF
            term = default if internal or term_cfg == DEFAULT_TERM else term_cfg
            ch = Channel(nm or p, p, "ai", float(min_v), float(max_v), term_cfg=term)
            ch.rng_high, ch.rng_low = rng, -rng
            self._add(task, ch)  # type: ignore[attr-defined]

    def add_ai_rtd(
        self,
        task: SimTask,
        physical_channel: str,
        name: str,
        min_t: float,
        max_t: float,
        settings: dict[int, object],
    ) -> None:
        """Add RTD temperature channels (an X-series measures the RTD's voltage
        under external current excitation); `settings` are the channel's
        attributes by id (RTD type, R0, excitation...). What they read is a
        temperature inside [min_t, max_t]."""
        if min_t >= max_t:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                f"Property: DAQmx_AI_Min\nRequested Value: {min_t:g}\n"
                f"Maximum Value: {max_t:g}",
            )
        before = len(task.channels)
        self.add_ai_voltage(task, physical_channel, name, -10.0, 10.0, DEFAULT_TERM)
        for ch in task.channels[before:]:
            if "/_ao" in ch.physical:
                del task.channels[before:]
                raise DaqmxError(
                    INVALID_ATTRIBUTE_VALUE, f"Physical Channel Name: {ch.physical}"
                )
            ch.min_v, ch.max_v = float(min_t), float(max_t)
            ch.attrs.update(settings)

    def ai_values(
        self, task: SimTask, samples: np.ndarray, at: list[float]
    ) -> np.ndarray:
        """What AI reads: a loopback channel reads AO (`at`), a terminal with
        nothing wired reads a small sine inside its range, as NI's simulation."""
        out = np.empty((len(task.channels), len(samples)), dtype=np.float64)
        for i, ch in enumerate(task.channels):
            if "/_ao" in ch.physical:
                out[i] = at[i]
            else:
                mid, half = (ch.max_v + ch.min_v) / 2, (ch.max_v - ch.min_v) / 2
                out[i] = mid + 0.5 * half * np.sin(2 * np.pi * samples / 50.0)
            if ch.scale is not None:
                out[i] = [ch.scaled(float(v)) for v in out[i]]
        return out


def ai_codes(task: SimTask, volts: np.ndarray) -> np.ndarray:
    """Volts (channel rows) as the ADC's 16-bit codes: full scale is each
    channel's range (+/-32767 at +/-rng_high)."""
    rng = np.array([ch.rng_high for ch in task.channels], dtype=np.float64)[:, None]
    codes = np.round(volts * (32767.0 / rng))
    return np.clip(codes, -32768, 32767).astype(np.int16)
