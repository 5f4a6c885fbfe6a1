"""`tinykd label DIR`: a small local web page to count the people in each unlabelled image.

The server listens on 127.0.0.1 only. Every answer is written to `count.json` at once: the file is read
again, the one answer applied (so edits made by hand meanwhile are kept), the previous version kept as
`count.json.bak`, and the new one written to a temporary file and renamed. A `count.json` that is not
valid is reported on the page and never overwritten.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import shutil
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from tinykd.core.artifacts import write_bytes
from tinykd.core.errors import TinykdError
from tinykd.core.templates import environment
from tinykd.train.data import COUNT_FILE, MAX_COUNT, read_count_file

log = logging.getLogger(__name__)

HIGHEST_BUTTON = 9
"""Buttons (and keys) 0..9; larger counts are typed into the number field."""
MAX_BODY_BYTES = 4096
"""A label request is one image name and one number: anything longer is refused unread."""


class LabelError(ValueError):
    """A request the page should not have sent: answered 400 with the message."""


class Labels:
    """count.json of one folder, read fresh for every request and written atomically."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / COUNT_FILE
        self.lock = threading.Lock()
        self.answers: list[tuple[str, int | None]] = []  # (image, the value an answer replaced), for undo
        counts = read_count_file(self.folder)  # refuse to start on a missing or invalid file
        missing = [name for name in counts if not (self.folder / name).is_file()]
        if missing:
            log.warning(f"{self.path}: {len(missing)} listed image(s) are not in the folder, such as "
                        f"{json.dumps(missing[0])}: they are skipped")

    def state(self, error: str = "") -> dict:
        try:
            counts = read_count_file(self.folder)
        except TinykdError as exc:
            return {"error": f"{exc}; fix or restore it (count.json.bak), then reload this page",
                    "labelled": 0, "total": 0, "next": None, "note": "", "can_undo": False}
        unlabelled = [name for name, count in counts.items() if count is None]
        waiting = [name for name in unlabelled if (self.folder / name).is_file()]
        missing = len(unlabelled) - len(waiting)
        note = f"{missing} image(s) listed in count.json are not in the folder: skipped" if missing else ""
        return {"error": error, "labelled": sum(c is not None for c in counts.values()), "total": len(counts),
                "next": waiting[0] if waiting else None, "note": note, "can_undo": bool(self.answers)}

    def save(self, image: str, count) -> dict:
        """Write one answer; a count or image the page should not send raises LabelError."""
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
            raise LabelError(f"count {json.dumps(count)} is not a whole number from 0 to {MAX_COUNT:,}")
        with self.lock:
            counts = self._counts()
            if counts is None:
                return self.state()  # reports the problem; the file stays as it is
            if image not in counts or not (self.folder / image).is_file():
                raise LabelError(f"{json.dumps(image)} is not an image count.json lists in {self.folder}")
            self.answers.append((image, counts[image]))
            self._write(counts | {image: count})
        return self.state()

    def undo(self) -> dict:
        """Put back the value the last answer of this server replaced."""
        with self.lock:
            counts = self._counts()
            if counts is None:
                return self.state()
            if not self.answers:
                raise LabelError("nothing to undo")
            image, previous = self.answers.pop()
            if image in counts:
                self._write(counts | {image: previous})
        return self.state()

    def _counts(self) -> dict | None:
        try:
            return read_count_file(self.folder)
        except TinykdError:
            return None

    def _write(self, counts: dict) -> None:
        shutil.copy2(self.path, self.path.with_name(COUNT_FILE + ".bak"))
        write_bytes(self.path, (json.dumps(counts, indent=2) + "\n").encode())

    def image(self, name: str) -> Path | None:
        """The image file for `name`, only if count.json lists it (no other file is served)."""
        counts = self._counts()
        path = self.folder / name
        return path if counts and name in counts and path.is_file() else None


def make_server(folder: Path, port: int = 8765) -> ThreadingHTTPServer:
    """The labelling server on 127.0.0.1:`port` (0: any free port); call serve_forever() on it."""
    if not 0 <= port <= 65535:
        raise TinykdError(f"--port {port}: a port is a number from 0 to 65535 (0: any free port)")
    labels = Labels(folder)
    page = environment().get_template("label/label.html.j2").render(
        highest_button=HIGHEST_BUTTON, max_count=MAX_COUNT).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep the terminal for tinykd's own lines
            pass

        def _send(self, status, body: bytes, content_type: str):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, value, status=HTTPStatus.OK):
            self._send(status, json.dumps(value).encode(), "application/json")

        def do_GET(self):
            if self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif self.path == "/state":
                self._json(labels.state())
            elif self.path.startswith("/image/") and (path := labels.image(unquote(self.path[7:]))):
                self._send(HTTPStatus.OK, path.read_bytes(),
                           mimetypes.guess_type(path.name)[0] or "application/octet-stream")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

        def do_POST(self):
            actions = {"/label": lambda body: labels.save(str(body["image"]), body["count"]),
                       "/undo": lambda body: labels.undo()}
            if self.path not in actions:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._json(labels.state("a request needs a Content-Length"), HTTPStatus.LENGTH_REQUIRED)
                return
            if not 0 <= length <= MAX_BODY_BYTES:
                self.close_connection = True  # the body is never read
                self._json(labels.state(f"request of {length} bytes refused (at most {MAX_BODY_BYTES})"),
                           HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                return
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                self._json(actions[self.path](body))
            except LabelError as exc:
                self._json(labels.state(str(exc)), HTTPStatus.BAD_REQUEST)
            except (ValueError, KeyError, TypeError):
                self._json(labels.state("malformed request"), HTTPStatus.BAD_REQUEST)

    try:
        return ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise TinykdError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; choose another --port") from None
