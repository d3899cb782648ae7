"""Where the DAQ is: the local NI-DAQmx driver or a gRPC device server."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import grpc

MAX_MESSAGE_BYTES = (
    512 * 1024 * 1024
)  # a 2 x 300k-sample write exceeds the 4 MB default


_channels: dict[int, grpc.Channel] = {}  # id(connection) -> its channel
_channels_lock = threading.Lock()


def _close_channel(key: int) -> None:
    with _channels_lock:
        channel = _channels.pop(key, None)
    if channel is not None:
        channel.close()


class DaqUnavailableError(RuntimeError):
    """The DAQ cannot be reached (no driver, server down, unknown device)."""


@dataclass(frozen=True)
class DaqConnection:
    """A device name and, for gRPC, the server's host:port (None: local driver)."""

    device: str = "Dev1"
    server: str | None = None

    def grpc_options(self) -> Any:
        """`GrpcSessionOptions` for nidaqmx (None for the local driver); every
        call shares the connection's one channel until close()."""
        if self.server is None:
            return None
        from nidaqmx.grpc_session_options import GrpcSessionOptions

        with _channels_lock:
            channel = _channels.get(id(self))
            if channel is None:
                channel = grpc.insecure_channel(
                    self.server,
                    options=[
                        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                    ],
                )
                _channels[id(self)] = channel
                weakref.finalize(self, _close_channel, id(self))
        return GrpcSessionOptions(grpc_channel=channel, session_name="")

    def close(self) -> None:
        """Close the gRPC channel (a later call opens a new one)."""
        _close_channel(id(self))

    def describe(self) -> str:
        """'Dev1 @ 127.0.0.1:50051' or 'Dev1 (local driver)'."""
        where = f"@ {self.server}" if self.server else "(local driver)"
        return f"{self.device} {where}"
