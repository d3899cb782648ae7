"""Analog input: voltage channels on the AI terminals and on the internal
loopback channels (`_aoN_vs_aognd`), which read what AO outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmapp.sim.daq.device import ai_range, expand_channels, physical
from mmapp.sim.daq.errors import INVALID_ATTRIBUTE_VALUE, DaqmxError

if TYPE_CHECKING:
    from mmapp.sim.daq.card import SimTask

RSE, DIFF, DEFAULT_TERM = 10083, 10106, -1


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
        return out


def ai_codes(task: SimTask, volts: np.ndarray) -> np.ndarray:
    """Volts (channel rows) as the ADC's 16-bit codes: full scale is each
    channel's range (+/-32767 at +/-rng_high)."""
    rng = np.array([ch.rng_high for ch in task.channels], dtype=np.float64)[:, None]
    codes = np.round(volts * (32767.0 / rng))
    return np.clip(codes, -32768, 32767).astype(np.int16)
