"""`tinykd label`: counting people in headless Chromium, every answer saved at once and safely; a broken
count.json is reported and never overwritten; nothing outside count.json's images is served."""

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tinykd.cli import main
from tinykd.ui.label import make_server


@pytest.fixture
def folder(tmp_path):
    counts = {}
    for i in range(4):
        Image.fromarray(np.full((16, 16), 60 * i, np.uint8)).save(tmp_path / f"img{i}.png")
        counts[f"img{i}.png"] = 2 if i == 0 else None
    (tmp_path / "count.json").write_text(json.dumps(counts))
    (tmp_path / "secret.txt").write_text("not for the browser")
    return tmp_path


@pytest.fixture
def server(folder):
    server = make_server(folder, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server)
        yield page
        browser.close()


def counts_of(folder):
    return json.loads((folder / "count.json").read_text())


def test_each_click_is_saved_at_once_with_a_backup(folder, page):
    page.wait_for_selector("#name:has-text('img1.png')")
    assert page.evaluate("document.getElementById('image').naturalWidth") == 16
    assert "1 of 4 images labelled" in page.inner_text("#progress")
    page.click("#buttons button[data-count='3']")
    page.wait_for_selector("#name:has-text('img2.png')")
    assert counts_of(folder) == {"img0.png": 2, "img1.png": 3, "img2.png": None, "img3.png": None}
    assert json.loads((folder / "count.json.bak").read_text())["img1.png"] is None
    page.click("#buttons button[data-count='0']")
    page.wait_for_selector("#name:has-text('img3.png')")
    page.fill("#other", "12")
    page.click("#save-other")
    page.wait_for_selector("#done:not([hidden])")
    assert counts_of(folder) == {"img0.png": 2, "img1.png": 3, "img2.png": 0, "img3.png": 12}
    assert "4 of 4 images labelled" in page.inner_text("#progress")


def test_hand_edits_are_kept_and_a_corrupt_file_is_never_overwritten(folder, page):
    page.wait_for_selector("#name:has-text('img1.png')")
    edited = counts_of(folder) | {"img0.png": 5}  # someone edits the file while the page is open
    (folder / "count.json").write_text(json.dumps(edited))
    page.click("#buttons button[data-count='1']")
    page.wait_for_selector("#name:has-text('img2.png')")
    assert counts_of(folder)["img0.png"] == 5 and counts_of(folder)["img1.png"] == 1
    (folder / "count.json").write_text('{"img0.png": 5, "img1.png": ')  # broken by hand
    page.click("#buttons button[data-count='4']")
    page.wait_for_selector("#error:has-text('not valid JSON')")
    assert (folder / "count.json").read_text() == '{"img0.png": 5, "img1.png": '


def test_only_listed_images_are_served(server):
    assert urllib.request.urlopen(server + "image/img2.png").status == 200
    for name in ("secret.txt", "..%2Fcount.json", "count.json"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server + "image/" + name)
        assert error.value.code == 404


def test_server_listens_on_loopback_only(folder):
    server = make_server(folder, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_an_invalid_count_file_stops_the_command_with_one_line(folder, capsys):
    (folder / "count.json").write_text('{"img0.png": -1}')
    assert main(["label", str(folder), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "count.json" in err and "-1" in err
    assert (folder / "count.json").read_text() == '{"img0.png": -1}'
