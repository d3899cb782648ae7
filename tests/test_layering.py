"""Imports run one way: gui -> engine -> (daq, data, processing, sim) -> presets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mmapp"
LOWER = ("data", "daq", "processing", "rig", "sim", "presets")
FORBIDDEN = {
    **{
        layer: ("mmapp.engine", "mmapp.gui", "mmapp.cli", "mmapp.bench")
        for layer in LOWER
    },
    "engine": ("mmapp.gui", "mmapp.cli", "mmapp.bench"),
}
QT = ("PyQt6", "pyqtgraph", "qtpy", "pymmcore_widgets", "superqt")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import_upwards(layer: str) -> None:
    bad = [
        f"{py.relative_to(PACKAGE.parent)} imports {name}"
        for py in (PACKAGE / layer).rglob("*.py")
        for name in _imports(py)
        if name.startswith(FORBIDDEN[layer])
    ]
    assert not bad, bad


def test_only_gui_imports_qt() -> None:
    bad = [
        f"{py.relative_to(PACKAGE.parent)} imports {name}"
        for py in PACKAGE.rglob("*.py")
        if "gui" not in py.relative_to(PACKAGE).parts
        for name in _imports(py)
        if name.split(".")[0] in QT
    ]
    assert not bad, bad


# Only the rig loader (and the simulated rig's tools) may build on the
# simulator: real-hardware code never depends on it.
MAY_IMPORT_SIM = ("rig/loader.py", "rig/simulated.py")


def test_only_the_rig_loader_imports_the_simulator() -> None:
    bad = [
        f"{py.relative_to(PACKAGE.parent)} imports {name}"
        for py in PACKAGE.rglob("*.py")
        if py.relative_to(PACKAGE).parts[0] != "sim"
        and py.relative_to(PACKAGE).as_posix() not in MAY_IMPORT_SIM
        for name in _imports(py)
        if name == "mmapp.sim" or name.startswith("mmapp.sim.")
    ]
    assert not bad, bad


def test_the_rig_package_depends_on_no_simulated_device() -> None:
    """rig/ (but its loader and tools) builds on nothing simulated."""
    bad = [
        f"{py.relative_to(PACKAGE.parent)} imports {name}"
        for py in (PACKAGE / "rig").rglob("*.py")
        if py.relative_to(PACKAGE).as_posix() not in MAY_IMPORT_SIM
        for name in _imports(py)
        if name.startswith("mmapp.sim")
    ]
    assert not bad, bad


def test_gui_code_uses_no_private_attribute_of_another_object() -> None:
    """The window's helpers (preset bridge, File menu, DAQ program, self-test,
    bench gui...) use the window's and panels' public names, never `obj._x`."""
    files = [*(PACKAGE / "gui").rglob("*.py"), PACKAGE / "bench" / "gui.py"]
    bad = [
        f"{py.relative_to(PACKAGE.parent)}:{node.lineno} {ast.unparse(node)}"
        for py in files
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert not bad, bad
