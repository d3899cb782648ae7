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


# Every call to the card has a deadline: a frozen device server must never
# hang Stop. A call that carries its own timeout (reads, waits) gets that plus
# CALL_TIMEOUT_S. Once one call found the server unreachable, every later call
# on that channel fails at once (the run ends within one deadline, not one per
# call); a new channel (close(), the next run) tries again.
CALL_TIMEOUT_S = 5.0
_UNREACHABLE = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)

_channels: dict[int, grpc.Channel] = {}  # id(connection) -> its channel
_channels_lock = threading.Lock()


def _close_channel(key: int) -> None:
    with _channels_lock:
        channel = _channels.pop(key, None)
    if channel is not None:
        channel.close()


class DaqUnavailableError(RuntimeError):
    """The DAQ cannot be reached (no driver, server down, unknown device)."""


class _Unreachable(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """What every call answers once the server was found unreachable."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(reason)
        self._details = (
            f"the NI device server at {server} did not answer ({reason}); "
            "no further calls are sent on this connection"
        )

    def code(self) -> grpc.StatusCode:
        # nidaqmx rewords UNAVAILABLE as "Failed to connect"; this keeps ours
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return ()

    def initial_metadata(self) -> tuple:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False

    def result(self, timeout: float | None = None) -> Any:
        raise self

    def exception(self, timeout: float | None = None) -> BaseException:
        return self

    def traceback(self, timeout: float | None = None) -> Any:
        return None


class _Deadlines(grpc.UnaryUnaryClientInterceptor):
    """A deadline on every call, and fail-fast once the server is unreachable."""

    def __init__(self, server: str, timeout_s: float) -> None:
        self.server = server
        self.timeout_s = timeout_s
        self.unreachable: str | None = None

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        if self.unreachable is not None:
            return _Unreachable(self.server, self.unreachable)
        timeout = self.timeout_s
        own = getattr(request, "timeout", None)
        if isinstance(own, float) and 0 <= own < 3600:
            timeout += own
        details = client_call_details._replace(timeout=timeout)
        outcome = continuation(details, request)
        code = outcome.code() if isinstance(outcome, grpc.Call) else None
        if code in _UNREACHABLE:
            self.unreachable = (
                f"no answer within {timeout:g} s"
                if code is grpc.StatusCode.DEADLINE_EXCEEDED
                else "connection lost"
            )
        return outcome


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
                raw = grpc.insecure_channel(
                    self.server,
                    options=[
                        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                    ],
                )
                channel = grpc.intercept_channel(
                    raw, _Deadlines(self.server, CALL_TIMEOUT_S)
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
