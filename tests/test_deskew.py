"""OPM geometry from the rig file and program, and the numba kernels (deskew,
MIP, binning, background) against the truth: the simulated sample's beads,
scipy's affine_transform and numpy."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from mmapp.daq.program import WaveformProgram
from mmapp.processing import (
    GeometryError,
    OpmGeometry,
    bin_image,
    deskew,
    deskew_max_projection,
    deskew_reference,
    geometry_for,
    max_projection,
    subtract_background,
)
from mmapp.resources import default_rig_file
from mmapp.rig import RigError, RigSpec, read_rig_spec
from mmapp.sim import sample
from mmapp.sim.frames import DARK_LEVEL

ROWS, COLS = 96, 96


@pytest.fixture(scope="module")
def rig() -> RigSpec:
    return read_rig_spec(default_rig_file())


def _with(program: WaveformProgram, **timing: object) -> WaveformProgram:
    raw = program.model_dump()
    raw["timing"].update(timing)
    return WaveformProgram.model_validate(raw)


def _galvo(program: WaveformProgram, **changes: object) -> WaveformProgram:
    raw = program.model_dump()
    raw["analog"][0].update(changes)
    return WaveformProgram.model_validate(raw)


def _render(geometry: OpmGeometry, rows: int = ROWS, cols: int = COLS) -> np.ndarray:
    return np.stack(
        [
            sample.oblique_slice(
                (rows, cols),
                np.uint16,
                geometry.scan_start_um + k * geometry.scan_step_um,
                100.0,
            )
            for k in range(geometry.positions)
        ]
    )


# --- geometry -----------------------------------------------------------------
def test_the_simulated_rig_has_the_samples_optics(rig: RigSpec) -> None:
    assert rig.opm is not None
    assert rig.opm.pixel_um == sample.PIXEL_UM
    assert rig.opm.sheet_angle_deg == sample.SHEET_ANGLE_DEG


def test_geometry_of_the_default_rig_and_program(rig: RigSpec) -> None:
    """Sawtooth -25..25 um, 0.1 V/um, 10 um/V, 50 positions: 50/49 um steps."""
    assert rig.program is not None
    g = geometry_for(rig, rig.program)
    assert g.pixel_um == 0.5 and g.sheet_angle_deg == 30.0
    assert g.positions == 50
    assert g.scan_step_um == pytest.approx(50 / 49)
    assert g.scan_start_um == pytest.approx(-25.0)
    assert g.voxel_um == (0.5, 0.5, 0.5)
    # z: 511 rows * 0.5 um * sin 30 = 127.75 um; y: 50 um scan + 511*0.5*cos 30
    assert g.output_shape(512, 256) == (256, 543, 256)
    assert g.output_origin_um() == (0.0, pytest.approx(-25.0), 0.0)


def test_geometry_through_calibration_and_um_per_volt(rig: RigSpec) -> None:
    """A custom scan in degrees: volts = 0.2 + 0.5 * deg, 4 um per volt."""
    assert rig.program is not None and rig.daq is not None
    program = _galvo(
        _with(rig.program, positions_per_volume=4),
        shape={"kind": "custom", "values": [3.0, 2.0, 1.0, 0.0]},
        calibration={"unit": "deg", "volts_per_unit": 0.5, "offset_v": 0.2},
    )
    daq = rig.daq.model_copy(
        update={"galvo": rig.daq.galvo.model_copy(update={"um_per_volt": 4.0})}
    )
    g = geometry_for(rig.model_copy(update={"daq": daq}), program)
    assert g.scan_step_um == pytest.approx(-2.0)
    assert g.scan_start_um == pytest.approx(4 * (0.2 + 1.5))
    assert g.y_origin_um == pytest.approx(-6.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no_opm", "no 'opm' section"),
        ("no_daq", "no 'daq' section"),
        ("other_line", "no analog channel on the rig's galvo line Dev1/ao0"),
        ("constant", "'galvo' is constant: it does not scan"),
        ("per_channel", "'galvo' is per channel: it does not scan"),
        ("non_uniform", "scans non-uniformly"),
        ("one_position", "1 scan position per volume"),
        ("no_motion", "does not move"),
    ],
)
def test_geometry_errors_name_the_problem(
    rig: RigSpec, change: str, message: str
) -> None:
    assert rig.program is not None
    program = rig.program
    if change == "no_opm":
        rig = rig.model_copy(update={"opm": None})
    elif change == "no_daq":
        rig = rig.model_copy(update={"daq": None})
    elif change == "other_line":
        program = _galvo(program, physical_channel="Dev1/ao1")
    elif change == "constant":
        program = _galvo(program, shape={"kind": "constant", "value": 1.0})
    elif change == "per_channel":
        values = dict.fromkeys(program.channels, 1.0)
        program = _galvo(program, shape={"kind": "per_channel", "values": values})
    elif change == "non_uniform":
        program = _galvo(
            _with(program, positions_per_volume=4),
            shape={"kind": "custom", "values": [0.0, 1.0, 2.5, 3.0]},
        )
    elif change == "one_position":
        program = _with(program, positions_per_volume=1)
    elif change == "no_motion":
        program = _galvo(program, shape={"kind": "sawtooth", "start": 2, "stop": 2})
    with pytest.raises(GeometryError, match=message):
        geometry_for(rig, program)


@pytest.mark.parametrize(
    ("opm", "field"),
    [
        ({"pixel_um": 0, "sheet_angle_deg": 30}, "pixel_um"),
        ({"pixel_um": 0.5, "sheet_angle_deg": 90}, "sheet_angle_deg"),
        ({"pixel_um": 0.5}, "sheet_angle_deg"),
    ],
)
def test_rig_file_opm_section_is_validated(
    tmp_path: Path, opm: dict, field: str
) -> None:
    raw = json.loads(default_rig_file().read_text(encoding="utf-8"))
    raw["opm"] = opm
    path = tmp_path / "rig.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(RigError, match=rf"opm\.{field}"):
        read_rig_spec(path)


def test_geometry_refuses_impossible_values() -> None:
    with pytest.raises(GeometryError, match="at least 2 scan positions"):
        OpmGeometry(0.5, 30.0, 1.0, 1)
    with pytest.raises(GeometryError, match="scan_step_um"):
        OpmGeometry(0.5, 30.0, 0.0, 10)
    with pytest.raises(GeometryError, match="sheet_angle_deg"):
        OpmGeometry(0.5, 0.0, 1.0, 10)
    with pytest.raises(GeometryError, match="pixel_um"):
        OpmGeometry(-1.0, 30.0, 1.0, 10)


# --- deskew -------------------------------------------------------------------
def _centroids(volume: np.ndarray, threshold: float, radius: int) -> np.ndarray:
    """Intensity-weighted centroids (voxels) around each local maximum above
    `threshold`, the window re-centred on the centroid three times."""
    peaks = (volume == ndimage.maximum_filter(volume, size=5)) & (volume > threshold)
    found = []
    for peak in np.argwhere(peaks):
        centre = peak.astype(np.float64)
        for _ in range(3):
            lo = np.maximum(np.rint(centre).astype(int) - radius, 0)
            window = volume[tuple(slice(a, a + 2 * radius + 1) for a in lo)]
            grid = np.indices(window.shape).reshape(3, -1).T + lo
            centre = (grid * window.reshape(-1, 1)).sum(0) / window.sum()
        found.append(centre)
    return np.array(found)


def _bead_errors(g: OpmGeometry, assumed: OpmGeometry) -> np.ndarray:
    """Distance (voxels) from each checked true bead to the nearest centroid
    found in planes scanned with `g` and deskewed as if scanned with `assumed`.
    """
    upright = deskew(_render(g), assumed).astype(np.float64) - DARK_LEVEL
    upright[upright < 0] = 0  # outside the scan (0) -> no signal
    origin = assumed.output_origin_um()
    found = _centroids(upright, threshold=100, radius=3) * g.pixel_um + origin
    found_xyz = found[:, ::-1]

    a = math.radians(g.sheet_angle_deg)
    margin = 3.0
    depth = (ROWS - 1) * g.pixel_um * math.sin(a)
    s_first, s_last = g.scan_start_um, g.scan_start_um + g.scan_span_um
    everywhere = sample.beads_in_box(
        (-10, min(s_first, s_last) - 10, -10),
        (COLS * g.pixel_um + 10, max(s_first, s_last) + 70, depth + 10),
        (ROWS, COLS),
    )[:, :3]
    x, y, z = everywhere.T
    scan = y - z / math.tan(a)  # the scan position whose sheet holds the bead
    inside = (
        (x > margin)
        & (x < (COLS - 1) * g.pixel_um - margin)
        & (z > margin)
        & (z < depth - margin)
        & (scan > min(s_first, s_last) + margin)
        & (scan < max(s_first, s_last) - margin)
    )
    gaps = np.linalg.norm(everywhere[:, None] - everywhere[None], axis=2)
    np.fill_diagonal(gaps, np.inf)
    isolated = gaps.min(axis=1) > 4.0
    truth = everywhere[inside & isolated]
    assert len(truth) >= 40
    distance = np.linalg.norm(truth[:, None] - found_xyz[None], axis=2).min(axis=1)
    return distance / g.pixel_um


def test_deskew_recovers_the_simulated_beads(rig: RigSpec) -> None:
    """Deskewing the simulated camera's oblique planes puts each bead where the
    sample has it.

    Planes: `oblique_slice` at the default program's scan (50/49 um steps, light
    100) for 96 x 96 frames; deskewed; centroids of local maxima above 100
    counts (window +-3 voxels, re-centred). Beads checked: every true bead at
    least 3 um inside the scanned volume (x, z and the scan) with no other bead
    within 4 um (closer neighbours' tails pull a centroid). Metric: distance
    from each true bead to the nearest centroid. Pass: >= 95 % within 1 voxel
    (0.5 um), median <= 0.25 voxel, at least 40 beads checked. The same check
    fails for a deskew with a 10 % wrong scan step.
    """
    assert rig.program is not None
    g = geometry_for(rig, rig.program)
    errors = _bead_errors(g, g)
    assert np.mean(errors <= 1.0) >= 0.95, np.sort(errors)[-10:]
    assert np.median(errors) <= 0.25

    wrong = dataclasses.replace(g, scan_step_um=g.scan_step_um * 1.1)
    assert np.mean(_bead_errors(g, wrong) <= 1.0) < 0.95


@pytest.mark.parametrize("step", [0.7, -1.3])
def test_deskew_matches_scipy_affine_transform(step: float) -> None:
    """Same output grid; values within 1 count (float32 vs float64 weights and
    rounding of exact halves), the zero region outside the scan identical."""
    g = OpmGeometry(0.5, 30.0, step, 30, scan_start_um=4.0)
    volume = _render(g, 64, 40)
    fast = deskew(volume, g)
    reference = deskew_reference(volume, g)
    assert fast.shape == reference.shape == g.output_shape(64, 40)
    assert fast.dtype == np.uint16
    assert np.abs(fast.astype(np.int32) - reference.astype(np.int32)).max() <= 1
    np.testing.assert_array_equal(fast == 0, reference == 0)
    assert (fast > 0).mean() > 0.3  # the scanned parallelogram is filled


def test_deskew_of_a_reversed_scan_lands_on_the_same_grid() -> None:
    """Planes in the opposite order with the opposite step: the same volume."""
    forward = OpmGeometry(0.5, 30.0, 1.0, 20, scan_start_um=0.0)
    backward = OpmGeometry(0.5, 30.0, -1.0, 20, scan_start_um=19.0)
    volume = _render(forward, 48, 32)
    a = deskew(volume, forward)
    b = deskew(np.ascontiguousarray(volume[::-1]), backward)
    assert backward.output_origin_um() == forward.output_origin_um()
    assert np.abs(a.astype(np.int32) - b.astype(np.int32)).max() <= 1


def test_deskew_uint8_and_a_constant_volume() -> None:
    """Linear interpolation of a constant is that constant inside the scan."""
    g = OpmGeometry(0.5, 30.0, 0.9, 12)
    volume = np.full((12, 20, 8), 200, dtype=np.uint8)
    out = deskew(volume, g)
    assert out.dtype == np.uint8
    assert set(np.unique(out)) == {0, 200}
    np.testing.assert_array_equal(out, deskew_reference(volume, g))


@pytest.mark.parametrize(
    ("step", "angle", "dtype"),
    [(1.0204, 30.0, np.uint16), (-0.7, 45.0, np.uint16), (2.0, 60.0, np.uint8)],
)
def test_deskew_max_projection_is_the_mip_of_the_deskewed_volume(
    step: float, angle: float, dtype: type
) -> None:
    """The fused kernel gives exactly max_projection(deskew(...)), also for
    random (not smooth) data and saturated voxels."""
    g = OpmGeometry(0.5, angle, step, 16, scan_start_um=3.0)
    top = np.iinfo(dtype).max
    volume = np.random.default_rng(7).integers(0, top, (16, 40, 24), dtype=dtype)
    volume[3, 5:9, :] = top
    fused = deskew_max_projection(volume, g)
    assert fused.dtype == volume.dtype
    np.testing.assert_array_equal(fused, max_projection(deskew(volume, g)))
    with pytest.raises(ValueError, match="9 planes but the geometry 16"):
        deskew_max_projection(volume[:9].copy(), g)


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (np.zeros((10, 8), np.uint16), "3-D volume"),
        (np.zeros((10, 8, 8), np.float32), "uint16 .or uint8. frames, not float32"),
        (np.zeros((9, 8, 8), np.uint16), "9 planes but the geometry 10 scan"),
        (np.zeros((10, 1, 8), np.uint16), "too small"),
        (np.zeros((10, 8, 16), np.uint16)[:, :, ::2], "C-contiguous"),
        ([[[0]]], "numpy array, not list"),
    ],
)
def test_deskew_errors(volume: np.ndarray, message: str) -> None:
    g = OpmGeometry(0.5, 30.0, 1.0, 10)
    with pytest.raises(ValueError, match=message):
        deskew(volume, g)


# --- MIP, binning, background -------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.float32])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_max_projection_is_numpys(dtype: type, axis: int) -> None:
    rng = np.random.default_rng(1)
    volume = (rng.random((5, 7, 9)) * 250).astype(dtype)
    out = max_projection(volume, axis)
    assert out.dtype == volume.dtype
    np.testing.assert_array_equal(out, volume.max(axis=axis))


def test_max_projection_errors() -> None:
    with pytest.raises(ValueError, match="3-D array, not 2-D"):
        max_projection(np.zeros((3, 3), np.uint16))
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        max_projection(np.zeros((3, 3, 3), np.uint16), 3)
    with pytest.raises(ValueError, match="does not take int64"):
        max_projection(np.zeros((3, 3, 3), np.int64))


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.float64])
@pytest.mark.parametrize("factor", [1, 2, 3])
def test_bin_image_is_the_block_mean(dtype: type, factor: int) -> None:
    """Edges past the last whole block are cropped; integers round half up."""
    rng = np.random.default_rng(2)
    image = rng.integers(0, 250, (11, 14)).astype(dtype)  # float sums exact
    rows, cols = 11 // factor, 14 // factor
    blocks = image[: rows * factor, : cols * factor].astype(np.float64)
    mean = blocks.reshape(rows, factor, cols, factor).mean(axis=(1, 3))
    expected = (
        np.floor(mean + 0.5).astype(dtype)
        if np.issubdtype(dtype, np.integer)
        else mean.astype(dtype)
    )
    out = bin_image(image, factor)
    assert out.dtype == image.dtype and out.shape == (rows, cols)
    np.testing.assert_array_equal(out, expected)


def test_bin_image_rounds_halves_up() -> None:
    image = np.array([[1, 2], [2, 2]], dtype=np.uint16)  # mean 1.75 -> 2
    assert bin_image(image, 2).tolist() == [[2]]
    image = np.array([[1, 2], [1, 2]], dtype=np.uint16)  # mean 1.5 -> 2
    assert bin_image(image, 2).tolist() == [[2]]


def test_bin_image_errors() -> None:
    image = np.zeros((4, 4), np.uint16)
    with pytest.raises(ValueError, match="factor must be >= 1, not 0"):
        bin_image(image, 0)
    with pytest.raises(ValueError, match="factor must be an integer"):
        bin_image(image, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="smaller than one 5 x 5 block"):
        bin_image(image, 5)
    with pytest.raises(ValueError, match="2-D image, not 3-D"):
        bin_image(np.zeros((2, 4, 4), np.uint16), 2)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.float32])
def test_subtract_background_saturates_at_zero(dtype: type) -> None:
    rng = np.random.default_rng(3)
    image = (rng.random((9, 13)) * 250).astype(dtype)
    background = (rng.random((9, 13)) * 250).astype(dtype)
    wide = image.astype(np.float64) - background.astype(np.float64)
    expected = np.maximum(wide, 0).astype(dtype)
    out = subtract_background(image, background)
    assert out.dtype == image.dtype
    np.testing.assert_array_equal(out, expected)
    assert (out == 0).any() and (out > 0).any()


def test_subtract_background_by_a_number() -> None:
    image = np.array([[99, 100, 101, 65535]], dtype=np.uint16)
    assert subtract_background(image, 100).tolist() == [[0, 0, 1, 65435]]
    assert subtract_background(image, 99.6).tolist() == [[0, 0, 1, 65435]]
    assert subtract_background(image, -5).tolist() == image.tolist()


def test_subtract_background_errors() -> None:
    image = np.zeros((4, 4), np.uint16)
    with pytest.raises(ValueError, match=r"background \(4, 3\) does not match"):
        subtract_background(image, np.zeros((4, 3), np.uint16))
    with pytest.raises(ValueError, match="background is uint8, the image uint16"):
        subtract_background(image, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="not finite"):
        subtract_background(image, float("nan"))
    with pytest.raises(ValueError, match="does not take int32"):
        subtract_background(np.zeros((4, 4), np.int32), 1)


# --- numba's cache ------------------------------------------------------------
CHILD = """
import json, os, sys
from pathlib import Path
import numpy as np
from mmapp.processing import max_projection, numba_cache
import numba
max_projection(np.zeros((2, 3, 4), np.uint16))
print(json.dumps({
    "env": os.environ.get("NUMBA_CACHE_DIR"),
    "numba": numba.config.CACHE_DIR,
    "default": str(numba_cache.default_cache_dir()),
    "package": str(Path(numba_cache.__file__).parent),
}))
"""


def _child(tmp_path: Path, code: str = CHILD, **env: str) -> dict:
    """Run `code` in a fresh interpreter (NUMBA_CACHE_DIR unset unless given);
    the JSON object it prints last."""
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), environ.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _index_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.nbi") if "kernels" in p.name]


def test_numba_cache_goes_to_the_user_cache_folder(tmp_path: Path) -> None:
    """Not set by the user: the platform's user cache folder (here made to be
    under tmp_path through XDG_CACHE_HOME on Linux)."""
    cache_home = tmp_path / "cache"
    report = _child(tmp_path, XDG_CACHE_HOME=str(cache_home))
    assert report["env"] == report["numba"] == report["default"]
    folder = Path(report["default"])
    assert folder.is_dir() and os.access(folder, os.W_OK)
    assert not folder.is_relative_to(report["package"])
    if sys.platform.startswith("linux"):
        assert folder == cache_home / "mmapp" / "numba"
        assert _index_files(folder)


def test_numba_cache_honours_the_users_setting(tmp_path: Path) -> None:
    """A compiled kernel writes its cache to NUMBA_CACHE_DIR, none beside the
    source."""
    chosen = tmp_path / "numba-cache"
    package = Path(__file__).resolve().parent.parent / "mmapp" / "processing"
    before = set(_index_files(package))
    report = _child(tmp_path, NUMBA_CACHE_DIR=str(chosen))
    assert report["env"] == report["numba"] == str(chosen)
    assert _index_files(chosen)
    assert set(_index_files(package)) == before == set()


# --- several threads at once ----------------------------------------------------
THREADS_CHILD = """
import json, threading
import numba
import numpy as np
from mmapp.processing import (OpmGeometry, bin_image, deskew, deskew_max_projection,
                              max_projection, subtract_background)
g = OpmGeometry(0.5, 30.0, 1.0, 12)
volume = np.random.default_rng(3).integers(0, 4000, (12, 40, 64), dtype=np.uint16)
want = [deskew(volume, g).sum(), deskew_max_projection(volume, g).sum(),
        max_projection(volume).sum(), subtract_background(volume[0], 100).sum(),
        bin_image(volume[0], 2).sum()]
bad = []
def work():
    for _ in range(40):
        got = [deskew(volume, g).sum(), deskew_max_projection(volume, g).sum(),
               max_projection(volume).sum(), subtract_background(volume[0], 100).sum(),
               bin_image(volume[0], 2).sum()]
        if got != want:
            bad.append(got)
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"layer": numba.threading_layer(), "bad": len(bad)}))
"""


@pytest.mark.parametrize("layer", ["workqueue", "default"])
def test_kernels_from_several_threads_at_once(tmp_path: Path, layer: str) -> None:
    """The processing pool calls the kernels from several threads: numba's
    workqueue layer (what a machine without OpenMP or TBB gets) aborts the
    process on concurrent parallel calls unless they take turns."""
    env = {"NUMBA_THREADING_LAYER": layer} if layer != "default" else {}
    report = _child(tmp_path, THREADS_CHILD, **env)
    assert report["bad"] == 0
    if layer != "default":
        assert report["layer"] == layer


WARM_CHILD = """
import json
from mmapp.processing import kernels
from mmapp.processing.builtins import BUILTINS
from mmapp.processing.registry import NoParams
kernels_ = [kernels._deskew_kernel, kernels._deskew_mip_kernel,
            kernels._subtract_value_kernel, kernels._bin_kernel]
before = [len(k.signatures) for k in kernels_]
BUILTINS["background"].make(BUILTINS["background"].params(value=100), None)
BUILTINS["bin"].make(BUILTINS["bin"].params(factor=2), None)
kernels.warm_up("deskew")
print(json.dumps({"before": before, "after": [len(k.signatures) for k in kernels_]}))
"""


def test_steps_compile_their_kernels_when_the_run_is_set_up(tmp_path: Path) -> None:
    """8- and 16-bit versions exist before the first frame arrives."""
    report = _child(tmp_path, WARM_CHILD)
    assert report["before"] == [0, 0, 0, 0]
    assert report["after"] == [2, 2, 2, 2]
