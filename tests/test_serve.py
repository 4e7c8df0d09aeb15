"""`poseface serve`: the page's server over real HTTP on a free loopback port, and the page in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from poseface.cli import main
from poseface.errors import PoseFaceError
from poseface.faces.visualize import GREEN
from poseface.serve.app import RestoreService, ServeLimits, exposure_warning, start_server

REPO = Path(__file__).resolve().parents[1]
README_SCREENSHOT = REPO / "docs" / "images" / "serve_page.png"  # refreshed only with POSEFACE_UPDATE_FIGURES=1
SERVER_SECONDS = 240  # a server still running after this stops itself, whatever the test does
REQUEST_SECONDS = 120


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def decode_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return decode(base64.b64decode(url.split(",", 1)[1]))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def service() -> RestoreService:
    return RestoreService.load(device="cpu")  # the bundled model, loaded once for the module


@contextmanager
def running(service: RestoreService) -> Iterator[str]:
    """The page's server on a free loopback port in a thread; stopped on exit or after SERVER_SECONDS."""
    server = start_server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    stopper = threading.Timer(SERVER_SECONDS, server.shutdown)
    stopper.daemon = True
    thread.start()
    stopper.start()
    try:
        yield server.url
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def url(service: RestoreService) -> Iterator[str]:
    with running(service) as address:
        yield address


def post(url: str, body: bytes, **query) -> tuple[int, dict]:
    request = urllib.request.Request(url + "restore?" + urlencode(query), data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_SECONDS) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def green_pixels(image: np.ndarray) -> int:
    return int(np.all(image == np.array(GREEN, np.uint8), axis=2).sum())


def test_page_lists_the_loaded_models_and_choices(url: str):
    status, content_type, body = fetch(url)
    page = body.decode("utf-8")
    assert status == 200 and content_type.startswith("text/html")
    assert '<option value="bundled" selected>' in page and '<option value="2">x2</option>' in page
    assert "{{" not in page  # every placeholder was filled
    assert fetch(url + "nothing-here")[0] == 404
    status, _, body = fetch(url + "result/no-such-token/a_restored.png")
    assert status == 404 and "this result is no longer kept" in json.loads(body)["error"]


def test_posted_photo_comes_back_restored_in_the_face_region(url: str, astronaut: np.ndarray):
    status, answer = post(url, png(astronaut), name="astronaut.png", fidelity=1, upscale=1)
    assert status == 200, answer
    assert answer["faces"] == 1 and "astronaut.png: 1 face restored" in answer["message"]
    got, content_type, body = fetch(url.rstrip("/") + answer["download"])
    assert got == 200 and content_type == "image/png" and answer["download"].endswith("/astronaut_restored.png")
    restored = decode(body)
    assert restored.shape == astronaut.shape
    x0, y0, x1, y1 = (int(round(v)) for v in answer["boxes"][0])
    change = np.abs(restored.astype(np.int16) - astronaut.astype(np.int16))
    assert (
        change[y0:y1, x0:x1].mean() > 1.5
    )  # restored (2.8 here); fidelity 0, the resampling round trip alone, gives 0.7
    assert change[400:, 400:].max() == 0  # far from the face nothing moved
    # the previews carry the face boxes (draw_boxes); the download does not
    assert green_pixels(decode_data_url(answer["input"])) > (x1 - x0) and green_pixels(
        decode_data_url(answer["output"])
    ) > (x1 - x0)
    assert green_pixels(restored) < green_pixels(decode_data_url(answer["output"])) // 10


def test_upscale_and_model_choice(url: str, astronaut: np.ndarray):
    status, answer = post(url, png(astronaut), name="a.png", upscale=2, fidelity=0.5)
    assert status == 200, answer
    assert decode(fetch(url.rstrip("/") + answer["download"])[2]).shape == (1024, 1024, 3)
    assert "fidelity 0.5, upscale 2" in answer["message"]
    status, answer = post(url, png(astronaut), name="a.png", model="GPEN-BFR-512")
    assert status == 400 and "model 'GPEN-BFR-512': not loaded by this server" in answer["error"]
    assert "--weights GPEN-BFR-512" in answer["error"]


@pytest.mark.parametrize(
    "body, name, query, expected",
    [
        (b"just some notes", "notes.txt", {}, "notes.txt: not a readable image"),
        (b"", "empty.png", {}, "empty.png: empty file (0 bytes)"),
        ("truncated", "cut.png", {}, "cut.png: not a readable image"),
        ("astronaut", "a.png", {"fidelity": "high"}, "fidelity 'high': not a number"),
        ("astronaut", "a.png", {"upscale": 40}, "--upscale 40: must be between 1 and 16"),
    ],
)
def test_bad_upload_gives_one_line_error(url: str, astronaut: np.ndarray, body, name: str, query: dict, expected: str):
    data = {"truncated": png(astronaut)[:5000], "astronaut": png(astronaut)}.get(body, body)
    status, answer = post(url, data, name=name, **query)
    assert status == 400 and set(answer) == {"error"}
    assert expected in answer["error"]
    assert "\n" not in answer["error"] and "Traceback" not in answer["error"]


def test_limits_refuse_large_photos_outputs_and_uploads(service: RestoreService, astronaut: np.ndarray):
    data = png(astronaut)
    limited = RestoreService(service.models, "cpu", ServeLimits(max_pixels=600 * 600, max_upload_bytes=len(data) - 1))
    with running(limited) as url:
        status, answer = post(url, data, name="a.png")
        assert (
            status == 413
            and f"a.png: {len(data)} bytes is more than the upload limit of {len(data) - 1} bytes" in answer["error"]
        )
        small = png(np.zeros((700, 700, 3), np.uint8))  # 490,000 pixels, above the limit; small as a PNG
        status, answer = post(url, small, name="big.png")
        assert (
            status == 400
            and "big.png: image of 700x700 pixels is larger than the decoding limit of 360000 pixels" in answer["error"]
        )
        status, answer = post(url, png(astronaut[:400, :400]), name="a.png", upscale=2)
        assert (
            status == 400
            and "a.png: the output would be 800x800 pixels (--upscale 2), more than --max-pixels 360000"
            in answer["error"]
        )


class CountingModel(torch.nn.Module):
    """Wraps a model and records how many forwards ran at the same time."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config
        self.active = 0
        self.most_active = 0
        self.guard = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.guard:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(0.3)  # long enough for a second request to overlap, were there no lock
        try:
            return self.model(x)
        finally:
            with self.guard:
                self.active -= 1


def test_requests_are_restored_one_at_a_time(service: RestoreService, astronaut: np.ndarray):
    counting = CountingModel(service.models["bundled"])
    data = png(astronaut)
    answers: list[int] = []
    with running(RestoreService({"bundled": counting}, "cpu")) as url:
        threads = [threading.Thread(target=lambda: answers.append(post(url, data, name="a.png")[0])) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=REQUEST_SECONDS)
    assert answers == [200, 200, 200]
    assert counting.most_active == 1


def test_exposure_warning_only_off_loopback():
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        assert exposure_warning(host) is None
    for host in ("0.0.0.0", "192.168.1.5", "myhost.example"):
        line = exposure_warning(host)
        assert line is not None and f"--host {host} is not a loopback address" in line and "\n" not in line


def test_serve_command_refuses_bad_limits_in_one_line(capsys):
    assert main(["serve", "--max-upload-mb", "0", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "poseface: error: --max-upload-mb 0: must be more than 0 (MiB); the default is 64"


def test_serve_command_names_a_missing_weights_file(capsys):
    assert main(["serve", "--weights", "/nowhere/model.safetensors", "--port", "0", "--device", "cpu"]) == 2
    assert "/nowhere/model.safetensors: no such weights file" in capsys.readouterr().err


def test_port_in_use_is_one_line(service: RestoreService):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PoseFaceError, match=f"--host 127.0.0.1 --port {port}: cannot listen there"):
            start_server(service, "127.0.0.1", port)


def chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("headless Chromium test: no chromium/chromedriver here (apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.mark.slow
def test_page_in_headless_chromium(url: str, astronaut: np.ndarray, tmp_path: Path):
    browser, driver_path = chromium()
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="headless Chromium test: pip install selenium (the test extra)"
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo, notes = tmp_path / "astronaut.png", tmp_path / "notes.txt"
    photo.write_bytes(png(astronaut))
    notes.write_text("not a photo")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1200,1000",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(REQUEST_SECONDS)
    try:
        driver.get(url)
        element = driver.find_element

        def finished(_) -> bool:
            return bool(element(By.ID, "error").text or element(By.ID, "download").is_displayed())

        element(By.ID, "file").send_keys(str(notes))
        element(By.ID, "restore").click()
        WebDriverWait(driver, REQUEST_SECONDS).until(finished)
        error = element(By.ID, "error")
        assert error.is_displayed() and error.text.startswith("notes.txt: not a readable image")
        assert not element(By.ID, "download").is_displayed()

        element(By.ID, "file").send_keys(str(photo))
        assert element(By.ID, "error").text == ""  # choosing a new photo clears the error
        element(By.ID, "restore").click()
        WebDriverWait(driver, REQUEST_SECONDS).until(finished)
        assert element(By.ID, "error").text == ""
        assert "astronaut.png: 1 face restored" in element(By.ID, "status").text
        output_width = driver.execute_script("return document.getElementById('output-view').naturalWidth")
        assert output_width == astronaut.shape[1]
        href = element(By.ID, "download").get_attribute("href")
        assert decode(fetch(href)[2]).shape == astronaut.shape
        screenshot = tmp_path / "serve_page.png"
        assert driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    assert Image.open(screenshot).size[0] >= 1000
    if os.environ.get("POSEFACE_UPDATE_FIGURES") == "1":  # a test run never changes tracked files otherwise
        shutil.copyfile(screenshot, README_SCREENSHOT)
