"""A pytest plugin that runs NI's nidaqmx-python tests against `mmapp sim-daq`.

Loaded with ``-p ni_sim_plugin`` into a run of NI's unchanged test folder:

- NI's ``GrpcServerProcess`` (which starts NI's Windows server) is replaced by
  the simulated card served in-process on 127.0.0.1 at an ephemeral port;
- the X-series device fixtures accept the simulated card (NI's ``real_*``
  fixtures reject simulated devices; this card is what they stand in for);
- only gRPC-interpreter tests that need an X-series device are kept, and of
  those only the ones in scope (see ``scope.py``) unless ``--ni-all`` is given.

``--ni-null-server`` serves a card that answers *success* to every call (every
response empty), to measure what a test suite fails to tell apart.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from scope import X_SERIES_FIXTURES, in_scope


def pytest_addoption(parser: pytest.Parser) -> None:
    """The harness's own options."""
    group = parser.getgroup("mmapp simulated NI card")
    group.addoption("--ni-all", action="store_true", help="every X-series test")
    group.addoption(
        "--ni-null-server",
        action="store_true",
        help="serve a card answering success to every call",
    )


_SERVER: Any = None  # the card, served for the whole session


def pytest_configure(config: pytest.Config) -> None:
    """Serve the card; `System.local()` (NI's module-level version checks) uses it."""
    global _SERVER
    if config.getoption("--ni-null-server"):
        from null_server import NullServer

        _SERVER = NullServer().start()
    else:
        from mmapp.rig.simulated import SimDaqDevice, SimDaqServer

        device = SimDaqDevice()
        # NI's test machines import this file into NI MAX (custom scales)
        max_config = config.rootpath / "tests" / "max_config" / "linux"
        device.import_max_config(str(max_config / "nidaqmxMaxConfig.ini"))
        _SERVER = SimDaqServer(device).start()
    import grpc
    import nidaqmx
    from nidaqmx.system import System

    channel = grpc.insecure_channel(f"127.0.0.1:{_SERVER.port}")

    def local() -> System:
        return System.remote(nidaqmx.GrpcSessionOptions(channel, session_name=""))

    System.local = staticmethod(local)  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop serving."""
    if _SERVER is not None:
        _SERVER.stop()


class _SimServerProcess:
    """Stands in for NI's GrpcServerProcess: the card served by this plugin."""

    def __init__(self) -> None:
        self.server_port = _SERVER.port

    def __enter__(self) -> _SimServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _accept_simulated(original: Callable[..., Any]) -> Callable[..., Any]:
    """NI's `_x_series_device`, with REAL meaning "any" (the card is simulated)."""

    def find(device_type: Any, system: Any, *args: Any, **kwargs: Any) -> Any:
        conftest = sys.modules["tests.conftest"]
        return original(conftest.DeviceType.ANY, system, *args, **kwargs)

    return find


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Point NI's fixtures at the simulated card; keep the selected tests."""
    conftest = sys.modules.get("tests.conftest")
    if conftest is not None and not getattr(conftest, "_mmapp_patched", False):
        conftest.GrpcServerProcess = _SimServerProcess
        conftest._x_series_device = _accept_simulated(conftest._x_series_device)
        conftest._mmapp_patched = True
    keep, drop = [], []
    everything = bool(config.getoption("--ni-all"))
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        grpc = callspec is not None and (
            callspec.params.get("init_kwargs") == "grpc_init_kwargs"
        )
        wanted = grpc and bool(names & X_SERIES_FIXTURES)
        if wanted and not everything:
            wanted = in_scope(item.nodeid)
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
