"""A local HTTP server for download tests: serves bytes by path, honours Range requests,
and can be told to cut a response short, answer with an error, stream an endless body,
announce a size it does not send, send slowly, or accept a request and not answer at all."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, list[int]] = {}  # path -> byte counts at which to drop the next responses
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.endless: set[str] = set()  # paths answered with zeros forever, no Content-Length
        self.announce: dict[str, int] = {}  # path -> a Content-Length to claim instead of the real one
        self.sent: dict[str, int] = {}  # path -> bytes written for the last response
        self.delay: dict[str, float] = {}  # path -> seconds to wait after each 64 KiB block of the body
        self.stalled: set[str] = set()  # paths whose requests get no answer until `release` is set
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                path = self.path.split("?")[0]
                server.requests.append((path, self.headers.get("Range")))
                if path in server.stalled:
                    server.release.wait(60)  # a bound so a broken client cannot hang the test run
                    self.close_connection = True
                    return
                if path in server.endless:
                    self._endless(path)
                    return
                data = server.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                if_range = self.headers.get("If-Range")
                if self.headers.get("Range") and (if_range is None or if_range == etag):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(data):  # as real servers answer it: the size of the whole file
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:  # no range, or the file changed since the client's partial copy: all of it
                    self.send_response(200)
                self.send_header("ETag", etag)
                body = data[start:]
                self.send_header("Content-Length", str(server.announce.get(path, len(body))))
                self.end_headers()
                cuts = server.cut_after.get(path)
                if cuts:
                    self.wfile.write(body[: cuts.pop(0)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                delay = server.delay.get(path)
                if delay is None:
                    self.wfile.write(body)
                    return
                try:
                    for at in range(0, len(body), 1 << 16):
                        self.wfile.write(body[at:at + (1 << 16)])
                        self.wfile.flush()
                        time.sleep(delay)
                except OSError:  # the client hung up
                    self.close_connection = True

            def _endless(self, path: str) -> None:
                self.send_response(200)
                self.end_headers()
                block = bytes(1 << 16)
                server.sent[path] = 0
                try:
                    while server.sent[path] < 1 << 30:  # a bound so a broken client cannot hang the test run
                        self.wfile.write(block)
                        server.sent[path] += len(block)
                except OSError:  # the client hung up: what a careful client does
                    pass
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
