"""Load a rig: a rig file (JSON) or a Micro-Manager `.cfg`, into one core class.

The simulated rig is built by `mmapp.sim` (imported here only, when asked for):
every other module of mmapp works with the loaded :class:`Rig` alone.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from mmapp.presets.errors import issues_from
from mmapp.resources import default_rig_file
from mmapp.rig.errors import RigError
from mmapp.rig.mm_config import load_mm_config
from mmapp.rig.rig import Rig
from mmapp.rig.spec import CameraSpec, RigSpec, read_rig_spec


def load_rig(path: str | Path | None = None, **camera_overrides: object) -> Rig:
    """Load a rig file (default: the simulated rig) or a Micro-Manager `.cfg`."""
    path = Path(path) if path is not None else default_rig_file()
    if path.suffix.lower() == ".cfg":
        return load_mm_config(path, name=path.stem)
    spec = read_rig_spec(path)
    if camera_overrides:
        try:
            camera = CameraSpec.model_validate(
                {**spec.camera.model_dump(), **camera_overrides}
            )
        except ValidationError as exc:
            problems = "; ".join(map(str, issues_from(exc, camera_overrides)))
            raise RigError(f"camera settings: {problems}") from None
        spec = spec.model_copy(update={"camera": camera})
    if spec.mm_config:
        cfg = Path(spec.mm_config)
        if not cfg.is_absolute():
            cfg = path.parent / cfg
        return load_mm_config(cfg, name=spec.name, spec=spec)
    return build_simulated_rig(spec, source=str(path))


def build_simulated_rig(spec: RigSpec, source: str = "") -> Rig:
    """The simulated rig of this rig file (Python devices, simulated card)."""
    from mmapp.sim.simulated_rig import build_simulated_rig as build

    return build(spec, source=source)
