"""`tinykd label`: counting people in headless Chromium, every answer saved at once and safely; a broken
count.json is reported and never overwritten; nothing outside count.json's images is served."""

import http.client
import json
import threading
import urllib.error
import urllib.parse
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
    # the name shows before the browser has loaded the image: wait for it, then check it is the real one
    page.wait_for_function("document.getElementById('image').complete")
    assert page.evaluate("document.getElementById('image').naturalWidth") == 16
    assert "1 of 4 images labelled" in page.inner_text("#progress")
    page.click("#buttons button[data-count='3']")
    page.wait_for_selector("#name:has-text('img2.png')")
    assert counts_of(folder) == {"img0.png": 2, "img1.png": 3, "img2.png": None, "img3.png": None}
    assert json.loads((folder / "count.json.bak").read_text())["img1.png"] is None
    page.click("#buttons button[data-count='0']")
    page.wait_for_selector("#name:has-text('img3.png')")
    page.fill("#other", "20000")
    page.click("#save-other")
    page.wait_for_selector("#error:has-text('count 20000 is not a whole number from 0 to 10,000')")
    assert counts_of(folder)["img3.png"] is None
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


def post(server, path, body: bytes, headers=None):
    """POST raw bytes; (HTTP status, JSON answer)."""
    request = urllib.request.Request(server + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def announce_body(server, length):
    """POST that announces `length` bytes and sends the first 64 KB: the server must answer unread."""
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(server).netloc, timeout=10)
    connection.putrequest("POST", "/label")
    connection.putheader("Content-Length", str(length))
    connection.endheaders()
    connection.send(b"x" * 65536)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_requests_the_page_would_not_send_are_refused_and_nothing_is_written(folder, server):
    before = (folder / "count.json").read_bytes()
    for body, status, message in [
        ({"image": "img1.png", "count": 10 ** 26}, 400, "is not a whole number from 0 to 10,000"),
        ({"image": "img1.png", "count": -1}, 400, "is not a whole number"),
        ({"image": "img1.png", "count": True}, 400, "count true is not a whole number"),
        ({"image": "img1.png", "count": None}, 400, "count null is not a whole number"),
        ({"image": "secret.txt", "count": 1}, 400, '"secret.txt" is not an image count.json lists'),
        ({"image": "img1.png"}, 400, "malformed request"),
    ]:
        code, answer = post(server, "label", json.dumps(body).encode())
        assert (code, message in answer["error"]) == (status, True), (body, code, answer)
    for length in (50_000_000, 999_999_999_999):
        code, answer = announce_body(server, length)
        assert code == 413 and f"request of {length} bytes refused (at most 4096)" in answer["error"]
    assert (folder / "count.json").read_bytes() == before and not (folder / "count.json.bak").exists()


def test_undo_puts_back_what_the_last_answer_replaced(folder, server):
    assert post(server, "label", json.dumps({"image": "img1.png", "count": 4}).encode())[1]["can_undo"]
    post(server, "label", json.dumps({"image": "img2.png", "count": 5}).encode())
    code, answer = post(server, "undo", b"{}")
    assert code == 200 and counts_of(folder)["img2.png"] is None and answer["next"] == "img2.png"
    post(server, "undo", b"{}")
    assert counts_of(folder) == {"img0.png": 2, "img1.png": None, "img2.png": None, "img3.png": None}
    code, answer = post(server, "undo", b"{}")
    assert code == 400 and answer["error"] == "nothing to undo"


def test_digit_keys_save_and_u_undoes_and_small_images_are_shown_large(folder, page):
    page.wait_for_selector("#name:has-text('img1.png')")
    assert page.evaluate("document.getElementById('image').getBoundingClientRect().width") >= 240
    page.keyboard.press("7")
    page.wait_for_selector("#name:has-text('img2.png')")
    assert counts_of(folder)["img1.png"] == 7
    page.keyboard.press("u")
    page.wait_for_selector("#name:has-text('img1.png')")
    assert counts_of(folder)["img1.png"] is None


def test_listed_files_that_are_missing_are_skipped_and_unsafe_names_refused(folder, capsys, caplog):
    (folder / "count.json").write_text(json.dumps({"gone.png": None, "img1.png": None}))
    from tinykd.ui.label import Labels

    state = Labels(folder).state()
    assert "1 listed image(s) are not in the folder, such as \"gone.png\"" in caplog.text
    assert state["next"] == "img1.png" and "1 image(s) listed in count.json are not in the folder" in state["note"]
    capsys.readouterr()
    for name in ("../secret.txt", "/etc/hostname", "sub/img1.png"):
        (folder / "count.json").write_text(json.dumps({name: None}))
        assert main(["label", str(folder), "--port", "0"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f'"{name}" is not the name of a file in' in err


@pytest.mark.parametrize("args, message", [(["--port", "70000"], "--port 70000: a port is a number from 0 to 65535"),
                                           (["--port", "-1"], "--port -1: a port is a number from 0 to 65535")])
def test_bad_ports_and_a_file_instead_of_a_folder_are_one_line(folder, capsys, args, message):
    assert main(["label", str(folder), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert main(["label", str(folder / "img0.png")]) == 2
    assert "img0.png: not a folder" in capsys.readouterr().err
