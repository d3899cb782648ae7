"""Custom scales persisted in NI MAX, imported from a MAX configuration file
(``[DAQmxScale name]`` sections), as NI's test machines import
``nidaqmxMaxConfig.ini``. A channel in custom-scale units reports and reads
scaled values; the card works in the pre-scaled units (volts)."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

SECTION_PREFIX = "DAQmxScale "


@dataclass(frozen=True)
class Scale:
    """A linear or polynomial scale (others: identity)."""

    name: str
    kind: str = "Linear"
    slope: float = 1.0
    intercept: float = 0.0
    forward: tuple[float, ...] = (0.0, 1.0)  # polynomial: pre-scaled -> scaled
    reverse: tuple[float, ...] = (0.0, 1.0)  # polynomial: scaled -> pre-scaled

    def scaled(self, pre: float) -> float:
        """A pre-scaled value (volts) in scaled units."""
        if self.kind == "Linear":
            return self.slope * pre + self.intercept
        if self.kind == "Polynomial":
            return _poly(self.forward, pre)
        return pre

    def prescaled(self, value: float) -> float:
        """A scaled value in pre-scaled units (volts)."""
        if self.kind == "Linear":
            return (value - self.intercept) / self.slope
        if self.kind == "Polynomial":
            return _poly(self.reverse, value)
        return value


def _poly(coeffs: tuple[float, ...], x: float) -> float:
    return sum(c * x**k for k, c in enumerate(coeffs))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def load_max_config(path: str | Path) -> dict[str, Scale]:
    """The custom scales a MAX configuration file defines, by name."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8-sig")
    scales: dict[str, Scale] = {}
    for section in parser.sections():
        if not section.startswith(SECTION_PREFIX):
            continue
        s = parser[section]
        name = section.removeprefix(SECTION_PREFIX).strip()
        scales[name] = Scale(
            name,
            kind=s.get("ScaleType", "Linear").strip(),
            slope=float(s.get("Lin.Slope", "1") or 1),
            intercept=float(s.get("Lin.YIntercept", "0") or 0),
            forward=_floats(s.get("Poly.ForwardCoeff", "0, 1")),
            reverse=_floats(s.get("Poly.ReverseCoeff", "0, 1")),
        )
    return scales
