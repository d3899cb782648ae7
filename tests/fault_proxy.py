"""A TCP proxy between the DAQ client and the simulated card's gRPC server,
to freeze (a hung server: nothing answers) or kill (connections reset) the
card mid-run at the network, whatever the server's code does."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

_RESET = struct.pack("ii", 1, 0)


class FaultProxy:
    """Forwards 127.0.0.1:port to `target` until frozen or killed."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._open = threading.Event()
        self._open.set()
        self._killed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._killed:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                thread = threading.Thread(
                    target=self._pump, args=(src, dst), daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            self._open.wait()  # frozen: held here, never forwarded
            if self._killed:
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def freeze(self) -> None:
        """Connections stay open; nothing is forwarded any more (kill -STOP)."""
        self._open.clear()

    def kill(self) -> None:
        """Every connection reset and no new one accepted (kill -9)."""
        with self._lock:
            self._killed = True
            sockets, self._sockets = self._sockets, []
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.SOL_SOCKET,
                    socket.SO_LINGER,
                    b"\x01\x00\x00\x00\x00\x00\x00\x00",
                )
            with contextlib.suppress(OSError):
                sock.close()
        self._open.set()

    def close(self) -> None:
        self.kill()
        for thread in self._threads:
            thread.join(5)
