"""Digital I/O: DO and DI channels (per line or per group of lines), what DI
reads (the lines DO drives; undriven lines count like NI's simulated cards)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmapp.sim.daq.device import expand_channels, physical
from mmapp.sim.daq.errors import (
    INVALID_ATTRIBUTE_VALUE,
    PHYSICAL_CHAN_DOES_NOT_EXIST,
    DaqmxError,
)

if TYPE_CHECKING:
    from mmapp.sim.daq.card import Channel, SimTask

CHAN_PER_LINE, CHAN_FOR_ALL_LINES = 0, 1


class DigitalIO:
    """DO/DI channels of the card (a mixin of SimDaqDevice)."""

    def resolve_lines(self, text: str) -> list[list[str]]:
        """Each comma-separated entry (port, line range or line) as its lines."""
        spec = self.spec  # type: ignore[attr-defined]
        groups: list[list[str]] = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            group: list[str] = []
            for name in expand_channels(part):
                low = name.lower()
                port = next((p for p in spec.do_ports() if p.lower() == low), None)
                if port is not None:
                    group += [ln for ln in spec.do_lines() if ln.startswith(port + "/")]
                else:
                    group.append(physical(spec, name, spec.do_lines()))
            groups.append(group)
        if not groups:
            raise DaqmxError(
                PHYSICAL_CHAN_DOES_NOT_EXIST, f"Physical Channel Name: {text}"
            )
        return groups

    def wave_columns(self, text: str) -> list[str]:
        """A channel's lines in waveform column order: listed lines as listed,
        a whole port highest line first (line 0 in the rightmost column)."""
        spec = self.spec  # type: ignore[attr-defined]
        cols: list[str] = []
        for name in expand_channels(text):
            port = next((p for p in spec.do_ports() if p.lower() == name.lower()), None)
            if port is None:
                cols.append(physical(spec, name, spec.do_lines()))
            else:
                cols += [ln for ln in spec.do_lines() if ln.startswith(port + "/")][
                    ::-1
                ]
        return cols

    def add_digital(
        self, task: SimTask, kind: str, lines: str, name: str, grouping: int
    ) -> None:
        """Add DO or DI channels: one per line, or one for all the lines."""
        from mmapp.sim.daq.card import Channel

        if grouping not in (CHAN_PER_LINE, CHAN_FOR_ALL_LINES):
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                f"Property: DAQmx_Dig_LineGrouping\nRequested Value: {grouping}",
            )
        groups = self.resolve_lines(lines)
        if grouping == CHAN_PER_LINE:
            flat = [ln for g in groups for ln in g]
            names = _names(name, len(flat))
            for ln, nm in zip(flat, names, strict=True):
                self._add(task, Channel(nm or ln, ln, kind, lines=[ln]))  # type: ignore[attr-defined]
            return
        all_lines = [ln for g in groups for ln in g]
        phys = lines.strip().lstrip("/")
        default_name = phys
        entries = expand_channels(phys)
        if len(entries) > 1:  # DAQmx names a multi-entry channel 'first...'
            phys = f"{all_lines[0]}...{all_lines[-1]}"
            default_name = f"{entries[0].lstrip('/')}..."
        chan = Channel(name or default_name, phys, kind, lines=all_lines)
        chan.columns = self.wave_columns(lines)
        self._add(task, chan)  # type: ignore[attr-defined]

    def add_do_lines(self, task: SimTask, lines: str, name: str) -> None:
        """Add digital output lines (one channel per line)."""
        self.add_digital(task, "do", lines, name, CHAN_PER_LINE)

    def mark_driven(self, task: SimTask) -> None:
        """DO drives its lines from its first write until the task is cleared."""
        for ln in task.rows():
            self.driven[ln] = task.name  # type: ignore[attr-defined]

    def release_lines(self, task: SimTask) -> None:
        """A cleared DO task stops driving its lines."""
        driven = self.driven  # type: ignore[attr-defined]
        for ln in [k for k, v in driven.items() if v == task.name]:
            del driven[ln]

    def line_values(
        self, lines: list[str], samples: np.ndarray, at: list[float]
    ) -> np.ndarray:
        """What DI reads on `lines` (rows) at sample numbers `samples`: a driven
        line reads what DO outputs (`at`: its values now), an undriven one
        counts in binary like NI's simulated devices (line k: bit k % 8)."""
        out = np.empty((len(lines), len(samples)), dtype=np.float64)
        for i, ln in enumerate(lines):
            if ln in self.driven:  # type: ignore[attr-defined]
                out[i] = at[i]
            else:
                bit = int(ln.rsplit("line", 1)[1]) % 8
                out[i] = (samples >> bit) & 1
        return out

    def edge_channels(self, task: SimTask) -> list[Channel]:
        """Channels whose rising edges can fire listeners (DO: one per line)."""
        from mmapp.sim.daq.card import Channel

        if task.kind != "do":
            return list(task.channels)
        return [Channel(ln, ln, "do", lines=[ln]) for ln in task.rows()]


def _names(name: str, count: int) -> list[str]:
    """Names for `count` channels from a user's name list ('' keeps physical)."""
    if not name:
        return [""] * count
    given = expand_channels(name)
    if len(given) == count:
        return given
    if len(given) == 1 and count > 1:
        return [f"{given[0]}{i}" for i in range(count)]
    return (given + [""] * count)[:count]
