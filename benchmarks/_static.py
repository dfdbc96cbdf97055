"""A static file server on 127.0.0.1 (a secure context) for the benchmarks' harness pages."""

from __future__ import annotations

import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from nbcall._testing.processes import HOST

_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def serve_files(files: dict[str, Path]) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``files`` (URL path -> file, read on every request, never cached); 404 for anything else.

    Returns the server (``shutdown()`` it) and its base URL.
    """

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            path = files.get(self.path.split("?", 1)[0])
            if path is None:
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", f"{_TYPES[path.suffix]}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer((HOST, 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://{HOST}:{httpd.server_address[1]}"
