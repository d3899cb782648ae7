"""The processing chain as a preset holds it: plain data, never code.

A chain is an ordered list of steps, each naming a processor (a built-in or
an installed package's entry point in the ``mmapp.processors`` group, see
:mod:`mmapp.processing.registry`) with its parameters. Validating a chain
resolves every enabled or disabled step: an unknown name or bad parameters
are validation errors, so a preset that would fail at Start never loads.

Options:

- ``save_raw`` (default true): the raw frames are saved as well; false writes
  only the processed dataset.
- ``on_error`` (``"stop"`` or ``"disable"``, per chain, overridable per step):
  a processor that raises either ends the run cleanly (outcome ERROR) or
  disables processing for the rest of the run with a warning (raw frames go
  on being saved).
- ``workers`` (default 0: one per CPU core, at most 4): the pool size;
  ``queue_mb`` (default 256): the RAM the pipeline may hold before it refuses
  frames (counted as "not processed", never an unbounded queue).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

OnError = Literal["stop", "disable"]
ProcessorName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][\w.\-]*$")
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessingStep(_Model):
    """One processor of the chain, named with its parameters."""

    name: ProcessorName
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    on_error: OnError | None = None  # None: the chain's on_error

    @model_validator(mode="after")
    def _known(self) -> ProcessingStep:
        from mmapp.processing.registry import check_params

        check_params(self.name, self.params)  # ValueError names what is wrong
        return self


class ProcessingChain(_Model):
    """The on-the-fly processing of a run (empty: none, no pipeline at all)."""

    steps: list[ProcessingStep] = Field(default_factory=list, max_length=64)
    save_raw: bool = True
    on_error: OnError = "stop"
    workers: int = Field(0, ge=0, le=64)
    queue_mb: int = Field(256, ge=1, le=1_048_576)

    @property
    def active_steps(self) -> list[ProcessingStep]:
        """The enabled steps, in order."""
        return [s for s in self.steps if s.enabled]

    @property
    def active(self) -> bool:
        """Whether a run with this chain processes anything."""
        return bool(self.active_steps)

    def on_error_of(self, step: ProcessingStep) -> OnError:
        """What a failure of this step does."""
        return step.on_error or self.on_error

    @model_validator(mode="after")
    def _raw_or_processed(self) -> ProcessingChain:
        if not self.save_raw and not self.active:
            raise ValueError(
                "save_raw is false but no processor is enabled: nothing would be saved"
            )
        return self
