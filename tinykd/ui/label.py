"""`tinykd label DIR`: a small local web page to count the people in each unlabelled image.

The server listens on 127.0.0.1 only. Every answer is written to `count.json` at once: the file is read
again, the one answer applied (so edits made by hand meanwhile are kept), the previous version kept as
`count.json.bak`, and the new one written to a temporary file and renamed. A `count.json` that is not
valid is reported on the page and never overwritten.
"""

from __future__ import annotations

import json
import mimetypes
import shutil
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from tinykd.core.artifacts import write_bytes
from tinykd.train.data import COUNT_FILE, read_count_file
from tinykd.core.errors import TinykdError

HIGHEST_BUTTON = 9
"""Buttons 0..9; larger counts are typed into the number field."""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tinykd label</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 760px; margin: 2em auto; padding: 0 1em; }
img { max-width: 100%; max-height: 60vh; display: block; margin: 1em 0; image-rendering: pixelated; }
button { font-size: 1.3em; min-width: 2.4em; margin: 0.15em; }
#error { color: #c62828; font-weight: bold; }
</style></head>
<body>
<h1>How many people?</h1>
<p id="progress"></p>
<p id="error"></p>
<div id="task">
  <p id="name"></p>
  <img id="image" alt="image to label">
  <div id="buttons"></div>
  <p><input id="other" type="number" min="0" step="1" placeholder="more"> <button id="save-other">save</button></p>
</div>
<p id="done" hidden>Every image has a count. count.json is saved.</p>
<script>
const buttons = document.getElementById("buttons");
for (let n = 0; n <= HIGHEST_BUTTON; n++) {
  const b = document.createElement("button");
  b.textContent = n; b.dataset.count = n; b.onclick = () => save(n);
  buttons.appendChild(b);
}
document.getElementById("save-other").onclick = () => {
  const v = document.getElementById("other").value;
  if (v !== "" && Number.isInteger(Number(v)) && Number(v) >= 0) save(Number(v));
};
let current = null;
function show(state) {
  document.getElementById("error").textContent = state.error || "";
  document.getElementById("progress").textContent =
    state.labelled + " of " + state.total + " images labelled";
  current = state.next;
  document.getElementById("task").hidden = !current;
  document.getElementById("done").hidden = !!current || !!state.error;
  if (current) {
    document.getElementById("name").textContent = current;
    document.getElementById("image").src = "image/" + encodeURIComponent(current);
  }
}
async function refresh() { show(await (await fetch("state")).json()); }
async function save(count) {
  const response = await fetch("label", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify({image: current, count: count})});
  show(await response.json());
}
refresh();
</script>
</body></html>
"""


class Labels:
    """count.json of one folder, read fresh for every request and written atomically."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / COUNT_FILE
        self.lock = threading.Lock()
        read_count_file(self.folder)  # refuse to start on a missing or invalid file

    def state(self, error: str = "") -> dict:
        try:
            counts = read_count_file(self.folder)
        except TinykdError as exc:
            return {"error": f"{exc}; fix or restore it (count.json.bak), then reload this page",
                    "labelled": 0, "total": 0, "next": None}
        waiting = [name for name, count in counts.items() if count is None and (self.folder / name).is_file()]
        return {"error": error, "labelled": sum(c is not None for c in counts.values()), "total": len(counts),
                "next": waiting[0] if waiting else None}

    def save(self, image: str, count: int) -> dict:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return self.state(f"count {count!r} is not a whole number >= 0")
        with self.lock:
            try:
                counts = read_count_file(self.folder)
            except TinykdError:
                return self.state()  # reports the problem; the file stays as it is
            if image not in counts:
                return self.state(f"{image!r} is not in count.json")
            counts[image] = count
            shutil.copy2(self.path, self.path.with_name(COUNT_FILE + ".bak"))
            write_bytes(self.path, (json.dumps(counts, indent=2) + "\n").encode())
        return self.state()

    def image(self, name: str) -> Path | None:
        """The image file for `name`, only if count.json lists it (no other file is served)."""
        try:
            counts = read_count_file(self.folder)
        except TinykdError:
            return None
        path = self.folder / name
        return path if name in counts and path.is_file() and path.parent == self.folder else None


def make_server(folder: Path, port: int = 8765) -> ThreadingHTTPServer:
    """The labelling server on 127.0.0.1:`port` (0: any free port); call serve_forever() on it."""
    labels = Labels(folder)

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
                page = PAGE.replace("HIGHEST_BUTTON", str(HIGHEST_BUTTON))
                self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
            elif self.path == "/state":
                self._json(labels.state())
            elif self.path.startswith("/image/") and (path := labels.image(unquote(self.path[7:]))):
                self._send(HTTPStatus.OK, path.read_bytes(),
                           mimetypes.guess_type(path.name)[0] or "application/octet-stream")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

        def do_POST(self):
            if self.path != "/label":
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                image, count = body["image"], body["count"]
            except (ValueError, KeyError, TypeError):
                self._json(labels.state("malformed request"), HTTPStatus.BAD_REQUEST)
                return
            self._json(labels.save(str(image), count))

    try:
        return ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise TinykdError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; choose another --port") from None
