"""An installed package's processors, as the entry point group
`mmapp.processors` names them (the tests point fake entry points here)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mmapp.processing import ProcessorDefinition


def invert(image: np.ndarray, metadata: dict) -> tuple[np.ndarray, dict]:
    """Invert 16-bit pixels."""
    return np.iinfo(image.dtype).max - image, metadata


class ScaleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    divisor: int = Field(2, ge=1)


def _scale(params: ScaleParams, context: object):
    def scale(image: np.ndarray, metadata: dict) -> tuple[np.ndarray, dict]:
        return image // params.divisor, metadata

    return scale


scaled = ProcessorDefinition(
    name="scaled",
    factory=_scale,
    params=ScaleParams,
    description="divide every pixel",
    thread_safe=True,
)

not_a_processor = 42
