"""The simulated card's identity: its channels, terminals and device attributes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nidaqmx.constants import BusType, ProductCategory

from mmapp.sim.daq.errors import (
    DEVICE_NOT_FOUND,
    INVALID_RANGE_OF_OBJECTS_SYNTAX_IN_STRING,
    PHYSICAL_CHAN_DOES_NOT_EXIST,
    DaqmxError,
)

AO_RANGE_V = 10.0
AI_RANGES_V = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # PCIe-6363 bipolar ranges
MAX_AO_RATE_HZ = 2_000_000.0
MAX_AI_RATE_HZ = 2_000_000.0  # single channel; aggregate 1 MS/s multiplexed
MAX_AI_MULTI_RATE_HZ = 1_000_000.0
MAX_DO_RATE_HZ = 10_000_000.0
SERIAL_NUMBER = 0x1D0C0DE
PRODUCT_NUMBER = 0x7435


def ai_range(min_v: float, max_v: float) -> float | None:
    """The smallest AI range (+/- volts) covering [min_v, max_v]; None if none."""
    span = max(abs(min_v), abs(max_v))
    return next((r for r in AI_RANGES_V if r >= span - 1e-12), None)


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
        """Physical AI channels (the internal loopback ones are not listed)."""
        return [f"{self.name}/ai{i}" for i in range(self.ai)]

    def internal_ai_channels(self) -> list[str]:
        """Internal channels AI can measure: each AO referred to AO ground."""
        return [f"{self.name}/_ao{i}_vs_aognd" for i in range(self.ao)]

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
        """Terminals: PFI lines, timebases and every subsystem's clocks/triggers."""
        d = self.name
        names = [f"/{d}/PFI{i}" for i in range(self.pfi)]
        names += [f"/{d}/{tb}" for tb in ("20MHzTimebase", "100kHzTimebase")]
        names += [f"/{d}/100MHzTimebase", f"/{d}/10MHzRefClock"]
        for sub in ("ai", "ao", "di", "do"):
            names += [f"/{d}/{sub}/SampleClock", f"/{d}/{sub}/StartTrigger"]
            names += [f"/{d}/{sub}/PauseTrigger", f"/{d}/{sub}/SampleClockTimebase"]
        names += [f"/{d}/ai/ReferenceTrigger", f"/{d}/di/ReferenceTrigger"]
        for i in range(self.counters):
            names += [f"/{d}/Ctr{i}InternalOutput", f"/{d}/Ctr{i}Source"]
            names += [f"/{d}/Ctr{i}Gate", f"/{d}/Ctr{i}Out"]
        names += [f"/{d}/ChangeDetectionEvent", f"/{d}/WatchdogExpiredEvent"]
        return names

    def terminal(self, text: str) -> str | None:
        """The canonical name of a terminal given case-insensitively, with or
        without the device ('PFI0', '/dev1/ao/sampleclock'); None if unknown."""
        text = text.strip()
        if not text:
            return None
        if not text.startswith("/"):
            text = f"/{self.name}/{text}"
        elif text.count("/") == 1:  # '/PFI0'
            text = f"/{self.name}{text}"
        wanted = text.lower()
        for name in self.terminals():
            if name.lower() == wanted:
                return name
        return None


_RANGE = re.compile(r"^(?P<prefix>.*?)(?P<first>\d+):(?P<last>\d+)$")


def expand_channels(text: str) -> list[str]:
    """'Dev1/ao0:2, Dev1/ao3' -> ['Dev1/ao0', 'Dev1/ao1', 'Dev1/ao2', 'Dev1/ao3']."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = _RANGE.match(part)
        if m is None:
            if ":" in part:
                raise DaqmxError(
                    INVALID_RANGE_OF_OBJECTS_SYNTAX_IN_STRING, f"Input: {part}"
                )
            names.append(part.lstrip("/"))
            continue
        first, last = int(m["first"]), int(m["last"])
        step = 1 if last >= first else -1
        prefix = m["prefix"].lstrip("/")
        names += [f"{prefix}{i}" for i in range(first, last + step, step)]
    return names


def check_device(spec: DeviceSpec, name: str) -> None:
    """DAQmx 'invalid device' unless `name` is this card."""
    if name.lower() != spec.name.lower():
        raise DaqmxError(DEVICE_NOT_FOUND, f"Device Specified: {name}")


def physical(spec: DeviceSpec, name: str, allowed: list[str]) -> str:
    """The canonical spelling of a physical channel among `allowed`."""
    name = name.strip().lstrip("/")
    for known in allowed:
        if known.lower() == name.lower():
            return known
    raise DaqmxError(PHYSICAL_CHAN_DOES_NOT_EXIST, f"Physical Channel Name: {name}")


def device_string_lists(spec: DeviceSpec) -> dict[int, list[str]]:
    """Device attributes that are lists of names (id -> names)."""
    return {
        0x231E: spec.ai_channels(),  # AI physical channels
        0x231F: spec.ao_channels(),
        0x2320: spec.do_lines(),  # DI lines
        0x2321: spec.do_ports(),  # DI ports
        0x2322: spec.do_lines(),  # DO lines
        0x2323: spec.do_ports(),
        0x2324: spec.counter_channels(),  # CI
        0x2325: spec.counter_channels(),  # CO
        0x2A40: spec.terminals(),
        0x29B6: [],  # chassis module devices
    }


_TRIG_USAGE = 12488 | 12489 | 12490 | 12491 | 14641  # advance, pause, ref, start, arm

DEVICE_SCALARS: dict[int, object] = {
    0x0631: "PCIe-6363",  # product type
    0x0632: SERIAL_NUMBER,
    0x231D: PRODUCT_NUMBER,
    0x22CA: True,  # is simulated
    0x29A9: ProductCategory.X_SERIES_DAQ.value,
    0x2326: BusType.PCIE.value,
    0x298F: False,  # AI simultaneous sampling supported
    0x2984: True,  # analog triggering supported
    0x2985: True,  # digital triggering supported
    0x301F: False,  # time triggers supported
    0x2FD6: False,  # hardware TEDS supported
    0x298C: MAX_AI_RATE_HZ,  # AI max single-channel rate
    0x298D: MAX_AI_MULTI_RATE_HZ,  # AI max multi-channel rate
    0x298E: 0.0,  # AI min rate
    0x2997: MAX_AO_RATE_HZ,  # AO max rate
    0x2998: 0.0,  # AO min rate
    0x2999: MAX_DO_RATE_HZ,  # DI max rate
    0x299A: MAX_DO_RATE_HZ,  # DO max rate
    0x2996: True,  # AO sample clock supported
    0x299E: True,  # CI sample clock supported
    0x2F5B: True,  # CO sample clock supported
    0x2986: 12491 | 12490 | 12489 | 12488,  # AI trigger usage
    0x2987: 12491 | 12489,  # AO trigger usage
    0x2988: 12491 | 12490 | 12489,  # DI
    0x2989: 12491 | 12489,  # DO
    0x298A: 12491 | 14641 | 12489,  # CI
    0x298B: 12491 | 14641 | 12489,  # CO
    0x2327: 2,  # PCI bus number
    0x2328: 0,  # PCI device number
    0x233C: 8,  # DMA channels
    0x3163: 1,  # AI sample timing engines
    0x3165: 1,
    0x3167: 1,
    0x3168: 1,
    0x1860: True,  # self-calibration supported (calibration info)
}

DEVICE_ARRAYS: dict[int, list[float] | list[int]] = {
    0x2990: [v for r in AI_RANGES_V for v in (-r, r)],  # AI voltage ranges
    0x299B: [-10.0, 10.0, -5.0, 5.0],  # AO voltage ranges
    0x2FD2: [10322],  # AI measurement types: voltage
    0x2FD3: [10322],  # AO output types: voltage
    0x2FD4: [],  # CI measurement types (not simulated)
    0x2FD5: [10269, 10119, 10268],  # CO output types: pulse time, freq, ticks
    0x2991: [],  # AI current ranges
    0x299C: [],  # AO current ranges
}
