"""Endpoints on 127.0.0.1 that misbehave the ways a broken proxy or a hostile emulator does.

- `silent_server`: accepts every connection and never answers (what held `ops due` for 181 s);
- `answering_server(answer)`: answers every Secrets Manager call (JSON 1.1, `X-Amz-Target`) with
  whatever `answer(operation, request)` returns: a listing whose NextToken never ends, a date in 9999,
  a stage list of another shape, a name with a newline in it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
Answer = Callable[[str, dict[str, Any]], Any]


@contextmanager
def silent_server() -> Iterator[str]:
    """A loopback port that accepts connections, reads nothing and answers nothing."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)  # kept open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


@contextmanager
def answering_server(answer: Answer) -> Iterator[tuple[str, list[str]]]:
    """A loopback Secrets Manager that answers each operation with `answer(operation, request)` (JSON).

    Yields the URL and the list of operations called, in order."""
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
            calls.append(operation)
            body = json.dumps(answer(operation, request)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
