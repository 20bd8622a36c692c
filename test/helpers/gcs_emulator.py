"""Runs gcp-storage-emulator (from .venv) for the tests and the benchmark, with two harness fixes.

1. Threaded HTTP server with a deeper accept queue. The emulator serves one request at a time with
   a 5-deep backlog, so a client with more connections than that (the engine reads several chunks
   at once) gets connection resets, and a slow reader stalls every other request.
2. In-memory mode does not re-serialise the whole object index after every upload. The emulator
   writes a JSON snapshot of all objects on each write even when nothing is persisted, which makes
   seeding n objects O(n^2) (2,500 small uploads took minutes).

Request handling itself (listing, ranged reads, checksums, errors) is the emulator's own code.
Usage: python gcs_emulator.py start --host 127.0.0.1 --port P --in-memory
"""
import http.server
import sys


class _ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


# gcp_storage_emulator.server builds its server as `http.server.HTTPServer(...)` when it starts.
http.server.HTTPServer = _ThreadingServer

from gcp_storage_emulator import storage as _storage  # noqa: E402
from gcp_storage_emulator.__main__ import main  # noqa: E402

if "--in-memory" in sys.argv:
    _storage.Storage._write_config_to_file = lambda self: None

if __name__ == "__main__":
    main()
