"""`mmapp sim-daq`: serve the simulated NI-DAQmx card over gRPC."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from mmapp.cli import EXIT_OK, EXIT_USAGE, whole_number


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `sim-daq` to the command's sub-parsers."""
    sim_daq = sub.add_parser(
        "sim-daq", help="serve the simulated NI-DAQmx card over gRPC (standalone)"
    )
    sim_daq.add_argument(
        "--port", type=whole_number, default=0, help="TCP port (0: any free)"
    )
    sim_daq.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim_daq.add_argument("--device", default="Dev1", help="device name")
    sim_daq.add_argument(
        "--max-config",
        metavar="INI",
        help="an NI MAX configuration file whose custom scales the card knows",
    )


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or SIGTERM / Ctrl-Break where the OS has them)."""
    from mmapp.rig.simulated import DeviceSpec, SimDaqDevice, SimDaqServer

    device = SimDaqDevice(DeviceSpec(name=args.device))
    if args.max_config:
        if not Path(args.max_config).is_file():
            print(f"mmapp: error: no such file: {args.max_config}")
            return EXIT_USAGE
        device.import_max_config(args.max_config)
    try:
        server = SimDaqServer(device, args.host, args.port).start()
    except (OSError, RuntimeError) as exc:
        print(f"mmapp: error: cannot serve on {args.host}:{args.port}: {exc}")
        return EXIT_USAGE
    print(
        f"mmapp: simulated NI-DAQmx device {args.device} (PCIe-6363) serving on "
        f"{server.address}\n"
        f"  nidaqmx.Task(grpc_options=GrpcSessionOptions("
        f"grpc_channel=grpc.insecure_channel({server.address!r}), session_name=''))"
        f"\n  Ctrl-C stops.",
        flush=True,
    )
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if inherited off
    for name in ("SIGTERM", "SIGBREAK"):  # SIGBREAK: Ctrl-Break on Windows
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(
                signum,
                lambda *_: threading.Thread(target=server.stop, daemon=True).start(),
            )
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK
