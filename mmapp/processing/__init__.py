"""On-the-fly processing: the chain a preset names (spec), the processors it
can name (registry, built-ins, installed entry points), the bounded pipeline
with its reorder stash, the event queue of adaptive processors, and the numba
kernels with the OPM geometry they need (deskew, MIP, binning, background).

`numba_cache` is imported first: it points numba's compilation cache at a
per-user folder before numba is imported.
"""

from mmapp.processing import numba_cache
from mmapp.processing.adaptive import EventQueue
from mmapp.processing.geometry import GeometryError, OpmGeometry, geometry_for
from mmapp.processing.kernels import (
    bin_image,
    deskew,
    deskew_max_projection,
    deskew_reference,
    max_projection,
    subtract_background,
)
from mmapp.processing.pipeline import (
    ProcessingPipeline,
    ProcessorError,
    ReorderStash,
    build_stages,
)
from mmapp.processing.registry import (
    ENTRY_POINT_GROUP,
    NoParams,
    ProcessorContext,
    ProcessorDefinition,
    ProcessorInfo,
    UnknownProcessorError,
    available_processors,
    check_params,
    register,
    unregister,
)
from mmapp.processing.spec import ProcessingChain, ProcessingStep

__all__ = [
    "ENTRY_POINT_GROUP",
    "EventQueue",
    "GeometryError",
    "NoParams",
    "OpmGeometry",
    "ProcessingChain",
    "ProcessingPipeline",
    "ProcessingStep",
    "ProcessorContext",
    "ProcessorDefinition",
    "ProcessorError",
    "ProcessorInfo",
    "ReorderStash",
    "UnknownProcessorError",
    "available_processors",
    "bin_image",
    "build_stages",
    "check_params",
    "deskew",
    "deskew_max_projection",
    "deskew_reference",
    "geometry_for",
    "max_projection",
    "numba_cache",
    "register",
    "subtract_background",
    "unregister",
]
