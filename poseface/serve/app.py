"""The restore service behind the page, and its HTTP server (standard library only).

    service = RestoreService.load(["GPEN-BFR-512.pth"], device="auto")   # models loaded once
    server = start_server(service, "127.0.0.1", 7860)                     # port 0 = any free port
    server.serve_forever()

Requests are restored one at a time (`RestoreService.restore` holds a lock from decoding to the
encoded result), so memory stays at one photo whatever the number of open pages. Every failure a
user can cause comes back as `{"error": "one line"}`; anything else is logged here, in the terminal,
and the page gets one line saying so.
"""

from __future__ import annotations

import base64
import html
import http.server
import ipaddress
import json
import logging
import re
import secrets
import socket
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import torch

from poseface.devices import resolve_device
from poseface.errors import PoseFaceError, for_cli
from poseface.faces.restorer import FaceResult, Restorer, load_restoration_model
from poseface.faces.run import too_large_output_reason
from poseface.faces.visualize import draw_boxes
from poseface.imageio import DEFAULT_MAX_PIXELS, png_bytes, read_rgb_bytes

log = logging.getLogger("poseface.serve")

BUNDLED = "bundled"  # the model choice that means the bundled model
PAGE_TEMPLATE = Path(__file__).with_name("page.html")
PREVIEW_SIDE = 1024  # longest side of the input/output previews on the page; the download is full size
KEPT_RESULTS = 4  # restored photos held for their download links, newest first
DEFAULT_MAX_UPLOAD_MB = 64
UPSCALES = (1.0, 1.5, 2.0, 3.0, 4.0)  # the page's choices; the server takes anything Restorer takes


class UploadRefused(PoseFaceError):
    """An upload refused before its body is read: answered with HTTP `status`, the connection closed."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ServeLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS  # decoded input pixels, and output pixels after upscale
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20


def upload_too_large(name: str, size: str, limit_bytes: int) -> str:
    """The one wording for an upload over the byte limit (the page fills in NAME and SIZE itself)."""
    return (
        f"{name}: {size} bytes is more than the upload limit of {limit_bytes} bytes; "
        "send a smaller file or restart poseface serve with a larger --max-upload-mb"
    )


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """One line when `host` is not a loopback address (the page is then reachable from other machines)."""
    if is_loopback(host):
        return None
    return (
        f"poseface: warning: --host {host} is not a loopback address: anyone who can reach this machine "
        "can use this page and its model; use --host 127.0.0.1 to keep it local"
    )


def _number(query: dict[str, list[str]], key: str, default: float) -> float:
    text = query.get(key, [str(default)])[-1]
    try:
        return float(text)
    except ValueError:
        raise PoseFaceError(f"{key} {text!r}: not a number; choose a value on the page") from None


def _file_name(text: str) -> str:
    """The uploaded file's own name (no folders), as shown in messages; 'upload' when none was sent."""
    return re.split(r"[\\/]", text.strip())[-1] or "upload"


def download_name(name: str) -> str:
    """NAME_restored.png for the restored photo, with only safe characters."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rsplit(".", 1)[0]).strip("._") or "photo"
    return f"{stem}_restored.png"


@dataclass(frozen=True)
class RestoreRequest:
    """What the page asks for, besides the image itself (the request body)."""

    model: str
    fidelity: float
    upscale: float
    name: str  # the uploaded file's name, for messages and the download

    @classmethod
    def from_query(cls, query: str, models: dict[str, torch.nn.Module]) -> RestoreRequest:
        fields = parse_qs(query)
        model = fields.get("model", [BUNDLED])[-1]
        if model not in models:
            raise PoseFaceError(
                f"model {model!r}: not loaded by this server; choose one of {', '.join(models)}, or restart poseface serve with "
                f"--weights {model}"
            )
        return cls(
            model,
            _number(fields, "fidelity", 1.0),
            _number(fields, "upscale", 1.0),
            _file_name(fields.get("name", [""])[-1]),
        )


def preview(image: np.ndarray, faces: list[FaceResult], scale: float) -> np.ndarray:
    """`image` shrunk to PREVIEW_SIDE at most, with the face boxes drawn (`scale`: input -> `image` pixels)."""
    shrink = min(1.0, PREVIEW_SIDE / max(image.shape[:2]))
    if shrink < 1.0:
        size = (max(1, round(image.shape[1] * shrink)), max(1, round(image.shape[0] * shrink)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return draw_boxes(image, faces, scale * shrink)


def data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def summary_line(request: RestoreRequest, faces: int, seconds: float, min_face_size: int) -> str:
    """What the page says under a result."""
    settings = f"model {request.model}, fidelity {request.fidelity:g}, upscale {request.upscale:g}"
    if not faces:
        return f"{request.name}: no face found (faces from {min_face_size} px are looked for); the photo comes back unchanged ({settings})"
    return f"{request.name}: {faces} face{'s' * (faces != 1)} restored in {seconds:.2f} s ({settings})"


class RestoreService:
    """Models loaded once; `restore` turns one upload into what the page shows, one request at a time."""

    def __init__(
        self,
        models: dict[str, torch.nn.Module],
        device: str | torch.device = "cpu",
        limits: ServeLimits = ServeLimits(),
    ):
        if not models:
            raise PoseFaceError("no model to serve; pass --weights or leave it out for the bundled model")
        self.models = models
        self.device = resolve_device(device)
        self.limits = limits
        self._lock = threading.Lock()
        self._results: OrderedDict[str, tuple[str, bytes]] = OrderedDict()

    @classmethod
    def load(
        cls, weights: list[str] | None = None, device: str = "auto", limits: ServeLimits = ServeLimits()
    ) -> RestoreService:
        """The bundled model plus each of `weights` (files or zoo names), loaded now."""
        device = resolve_device(device)
        models = {BUNDLED: load_restoration_model(None, device)}
        for value in weights or []:
            models[str(value)] = load_restoration_model(value, device)
        return cls(models, device, limits)

    @property
    def default_model(self) -> str:
        """The first model given with --weights, else the bundled one."""
        return next((name for name in self.models if name != BUNDLED), BUNDLED)

    def restore(self, data: bytes, request: RestoreRequest) -> dict[str, object]:
        """The page's answer for one upload: previews with boxes, a download link and a summary line."""
        with self._lock:
            image = read_rgb_bytes(data, request.name, self.limits.max_pixels)
            restorer = Restorer(
                model=self.models[request.model], device=self.device, upscale=request.upscale, fidelity=request.fidelity
            )
            too_large = too_large_output_reason(Path(request.name), image, restorer, self.limits.max_pixels)
            if too_large:
                raise PoseFaceError(too_large)
            start = time.perf_counter()
            result = restorer.restore_image(image)
            seconds = time.perf_counter() - start
            scale = result.image.shape[1] / image.shape[1]
            token = self._keep(download_name(request.name), png_bytes(result.image))
            return {
                "input": data_url(preview(image, result.faces, 1.0)),
                "output": data_url(preview(result.image, result.faces, scale)),
                "download": f"/result/{token}/{self._results[token][0]}",
                "faces": len(result.faces),
                "boxes": [
                    [round(float(v), 1) for v in face.box] for face in result.faces if face.box is not None
                ],  # input pixels
                "message": summary_line(request, len(result.faces), seconds, restorer.detector.min_face_size),
            }

    def _keep(self, name: str, png: bytes) -> str:
        token = secrets.token_urlsafe(12)
        self._results[token] = (name, png)
        while len(self._results) > KEPT_RESULTS:
            self._results.popitem(last=False)
        return token

    def result(self, token: str) -> tuple[str, bytes] | None:
        """(file name, PNG bytes) of a kept result, None once it has been dropped."""
        return self._results.get(token)


def render_page(service: RestoreService) -> str:
    """page.html with this server's models, upscale choices and upload limit filled in."""

    def option(value: str, label: str, selected: bool) -> str:
        return f'<option value="{html.escape(value)}"{" selected" * selected}>{html.escape(label)}</option>'

    models = "".join(
        option(name, "bundled (poseface-small-utkface)" if name == BUNDLED else name, name == service.default_model)
        for name in service.models
    )
    upscales = "".join(option(f"{value:g}", f"x{value:g}", value == 1.0) for value in UPSCALES)
    limit = service.limits.max_upload_bytes
    values = {
        "models": models,
        "upscales": upscales,
        "limit_bytes": json.dumps(limit),
        "too_large": json.dumps(upload_too_large("NAME", "SIZE", limit)),
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], PAGE_TEMPLATE.read_text(encoding="utf-8"))


class _Handler(http.server.BaseHTTPRequestHandler):
    server: PageServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, content_type: str, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, answer: dict[str, object]) -> None:
        self._send(status, "application/json", json.dumps(answer).encode("utf-8"))

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        parts = path.strip("/").split("/")
        if path == "/":
            self._send(200, "text/html; charset=utf-8", self.server.page.encode("utf-8"))
        elif len(parts) == 3 and parts[0] == "result" and (kept := self.server.service.result(parts[1])):
            name, png = kept
            self._send(200, "image/png", png, {"Content-Disposition": f'attachment; filename="{name}"'})
        elif parts[0] == "result":
            self._send_json(
                404,
                {
                    "error": f"{path}: this result is no longer kept (only the last {KEPT_RESULTS} are); restore the photo again"
                },
            )
        else:
            self._send_json(404, {"error": f"{path}: no such page; open / instead"})

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path != "/restore":
            self._send_json(404, {"error": f"{url.path}: nothing to post here; post the image to /restore"})
            return
        try:
            request = RestoreRequest.from_query(url.query, self.server.service.models)
            answer = self.server.service.restore(self._body(request.name), request)
        except UploadRefused as exc:
            self.close_connection = True  # the body was not read
            self._send_json(exc.status, {"error": str(exc)})
        except PoseFaceError as exc:
            self._send_json(400, {"error": for_cli(exc)})
        except Exception as exc:  # a bug, not the user's doing: the traceback goes to the terminal only
            log.exception("poseface serve: restoring %s failed", self.path)
            self._send_json(
                500,
                {
                    "error": f"internal error ({type(exc).__name__}); the terminal running poseface serve has the details"
                },
            )
        else:
            self._send_json(200, answer)

    def _body(self, name: str) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise UploadRefused(
                f"{name}: the upload has no Content-Length; send the file as the request body (the page does)", 411
            )
        limit = self.server.service.limits.max_upload_bytes
        if int(length) > limit:
            raise UploadRefused(upload_too_large(name, length, limit), 413)
        return self.rfile.read(int(length))


class PageServer(http.server.ThreadingHTTPServer):
    """The page's HTTP server: one thread per connection, restores serialised by the service's lock."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: RestoreService):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.service = service
        self.page = render_page(service)

    def handle_error(self, request, client_address) -> None:
        """A browser that closed its connection is normal (one log line); anything else is logged in full."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.info("%s closed the connection", client_address[0])
        else:
            log.exception("poseface serve: a request from %s failed", client_address[0])

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def start_server(service: RestoreService, host: str = "127.0.0.1", port: int = 7860) -> PageServer:
    """Bind the page's server (port 0 = a free port); the caller runs `serve_forever`."""
    try:
        return PageServer((host, port), service)
    except OSError as exc:
        raise PoseFaceError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); choose another --port or --host"
        ) from None
