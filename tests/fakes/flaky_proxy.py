"""A TCP proxy on 127.0.0.1 that resets connections the way an overloaded server does.

It relays bytes both ways, except that the first `drops` requests whose first bytes contain `marker` are
forwarded, answered by the server, and then the client's connection is reset instead of getting the answer:
the server did the work, the client saw `Connection reset by peer`.
"""

from __future__ import annotations

import socket
import struct
import threading


class FlakyProxy:
    def __init__(self, upstream_port: int, *, marker: bytes, drops: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.marker, self.drops = marker, drops
        self.dropped = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.closing = True
        self.server.close()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take_drop(self, chunk: bytes) -> bool:
        with self.lock:
            if self.dropped < self.drops and self.marker in chunk:
                self.dropped += 1
                return True
            return False

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        doomed = threading.Event()  # the request on its way is one to answer with a reset
        threading.Thread(target=self._answer, args=(upstream, client, doomed), daemon=True).start()
        try:
            while chunk := client.recv(65536):
                if self._take_drop(chunk):
                    doomed.set()
                upstream.sendall(chunk)
        except OSError:
            pass
        finally:
            upstream.close()

    @staticmethod
    def _answer(upstream: socket.socket, client: socket.socket, doomed: threading.Event) -> None:
        try:
            while chunk := upstream.recv(65536):
                if doomed.is_set():  # the server has answered, so the work is done: reset instead of relaying
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client.shutdown(socket.SHUT_RDWR)  # wakes the reader; closing with linger 0 then resets
                    break
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()
