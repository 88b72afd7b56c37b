"""Backends that hold an exporter up, on real sockets on 127.0.0.1, served from threads.

`trickling_http_peer` answers an HTTP request's headers at once and then its body one byte
at a time (a broken proxy): every read returns quickly, the answer never ends.
`silent_peer` accepts connections and never says a word (a hung collector, for HTTP and
gRPC alike: the gRPC client waits for an HTTP/2 handshake that never comes).

Both are context managers; leaving one closes its listener and every accepted connection
and joins its threads, so nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Peer:
    port: int
    # Set once the peer has answered a request's headers (trickling) or accepted (silent).
    answering: threading.Event = field(default_factory=threading.Event)

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return f"{self.http_endpoint}/v1/traces"


class _Server:
    def __init__(self, handle) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.stop = threading.Event()
        self.peer = Peer(self.listener.getsockname()[1])
        self._handle = handle
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(connection)
            thread = threading.Thread(target=self._handle, args=(self, connection), daemon=True)
            self._threads.append(thread)
            thread.start()

    def close(self) -> None:
        self.stop.set()
        self._accepting.join(5)
        self.listener.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        for thread in self._threads:
            thread.join(5)


def _trickle(server: _Server, connection: socket.socket, byte_interval: float) -> None:
    with contextlib.suppress(OSError):
        connection.settimeout(5.0)
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        server.peer.answering.set()
        while not server.stop.wait(byte_interval):
            connection.sendall(b"x")


def _say_nothing(server: _Server, connection: socket.socket) -> None:
    server.peer.answering.set()
    server.stop.wait()


@contextlib.contextmanager
def trickling_http_peer(byte_interval: float = 0.2) -> Iterator[Peer]:
    server = _Server(lambda s, c: _trickle(s, c, byte_interval))
    try:
        yield server.peer
    finally:
        server.close()


@contextlib.contextmanager
def silent_peer() -> Iterator[Peer]:
    server = _Server(_say_nothing)
    try:
        yield server.peer
    finally:
        server.close()
