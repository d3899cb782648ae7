"""On-the-fly processing: the chain a preset names (spec), the processors it
can name (registry, built-ins, installed entry points), the bounded pipeline
with its reorder stash, and the event queue of adaptive processors."""

from mmapp.processing.adaptive import EventQueue
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
    "NoParams",
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
    "build_stages",
    "check_params",
    "register",
    "unregister",
]
