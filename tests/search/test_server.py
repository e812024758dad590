"""The HTTP API: search results as the library gives them, bounded input, 4xx on bad requests, no file outside the
index reachable, range requests, thumbnails from inside the moment, and `vidla serve` bound to 127.0.0.1."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from vidla.search import SearchIndex  # noqa: E402
from vidla.search.server import create_app  # noqa: E402

@pytest.fixture(scope="module")
def client(built_index):
    return TestClient(create_app(built_index))


def test_search_returns_the_library_results(client, built_index):
    response = client.get("/api/search", params={"q": "a red square moves right", "k": 4})
    assert response.status_code == 200
    body = response.json()
    expected = SearchIndex(built_index).search_text("a red square moves right", k=4)
    assert [(v["path"], [(m["start"], m["end"], m["window_id"]) for m in v["moments"]]) for v in body["results"]] == \
           [(v.path, [(m.start, m.end, m.window_id) for m in v.moments]) for v in expected]
    moment = body["results"][0]["moments"][0]
    assert moment["thumbnails"] == [f"/api/thumbnails/{moment['window_id']}/{i}" for i in range(4)]
    assert client.get("/api/info").json()["videos"] == 4
    page = client.get("/")
    assert page.status_code == 200 and "<input id=\"q\"" in page.text


@pytest.mark.parametrize("params, status, message", [
    ({"q": "x" * 501, "k": 5}, 422, "at most 500 characters"),
    ({"q": "dog", "k": 0}, 422, "greater than or equal to 1"),
    ({"q": "dog", "k": 10**9}, 422, "less than or equal to 100"),
    ({"q": "dog", "k": "lots"}, 422, "valid integer"),
    ({"q": "dog", "min_score": 7}, 422, "less than or equal to 1"),
    ({"k": 5}, 422, "Field required"),
    ({"q": "   "}, 400, "the query is empty"),
    ({"q": "dog", "nprobe": 0}, 422, "greater than or equal to 1"),
    ({"q": "dog", "nprobe": 10**6}, 422, "less than or equal to 4096"),
    ({"q": "dog", "ef_search": -3}, 422, "greater than or equal to 1"),
])
def test_bad_search_requests_get_a_4xx_that_says_why(client, params, status, message):
    response = client.get("/api/search", params=params)
    assert response.status_code == status
    assert message in response.text


def test_search_accepts_a_bounded_nprobe_and_ef_search(client, built_index):
    response = client.get("/api/search", params={"q": "a red square moves right", "k": 4, "nprobe": 2,
                                                  "ef_search": 16})
    assert response.status_code == 200
    expected = SearchIndex(built_index).search_text("a red square moves right", k=4)  # exact: both are ignored
    assert [m["window_id"] for v in response.json()["results"] for m in v["moments"]] == \
           [m.window_id for v in expected for m in v.moments]


@pytest.mark.parametrize("url", [
    "/api/videos/../../../../etc/passwd", "/api/videos/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/api/videos/-1",
    "/api/videos/999999", "/api/videos//etc/passwd", "/api/thumbnails/999999/0", "/api/thumbnails/1/4",
    "/api/thumbnails/..%2f..%2fetc%2fpasswd/0", "/static/../../etc/passwd", "/../../etc/passwd",
    "/api/similar/999999",
])
def test_nothing_outside_the_index_is_reachable(client, url):
    response = client.get(url)
    assert 400 <= response.status_code < 500, (url, response.status_code)
    assert b"root:" not in response.content


def test_videos_are_served_by_id_with_range_requests(client, built_index, collection):
    video_id = next(v for v in client.get("/api/search", params={"q": "x", "k": 20}).json()["results"]
                    if v["name"] == "host.mp4")["video_id"]
    data = collection["host"].read_bytes()
    full = client.get(f"/api/videos/{video_id}")
    assert full.status_code == 200 and full.content == data and full.headers["accept-ranges"] == "bytes"
    part = client.get(f"/api/videos/{video_id}", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    assert part.content == data[100:1100]
    tail = client.get(f"/api/videos/{video_id}", headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 500}-{len(data) - 1}/{len(data)}"
    assert client.get(f"/api/videos/{video_id}", headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416


def test_thumbnails_show_a_frame_from_inside_the_moment_and_are_cached(client, built_index, collection):
    from PIL import Image

    import vidla
    from vidla.search.windows import Window, window_timestamps

    from vidla.search import IndexStore

    with IndexStore(built_index, readonly=True) as store:  # the window of the red square's move
        video = store.videos()[str(collection["host"])]
        window_id, = [i for i, w in store.windows(range(1000)).items()
                      if w.video_id == video.id and (w.start, w.end) == (12.0, 16.0)]
        moment = {"start": 12.0, "end": 16.0, "scale": "short",
                  "thumbnails": [f"/api/thumbnails/{window_id}/{i}" for i in range(4)]}
    response = client.get(moment["thumbnails"][2])
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.float32)
    instant = window_timestamps(Window(moment["start"], moment["end"], moment["scale"]), 4)[2]
    assert moment["start"] <= instant <= moment["end"]
    frame = vidla.load_video(collection["host"], 1, start=instant, end=instant + 1e-3)[0].numpy()
    expected = np.asarray(Image.fromarray(frame).resize(image.shape[1::-1], Image.BICUBIC), dtype=np.float32)
    assert np.abs(image - expected).mean() < 6  # the same picture, up to JPEG
    red = (image[..., 0] > 150) & (image[..., 1] < 100)
    assert red.sum() > 20  # the red square is in it
    cached = list((built_index / "thumbnails").glob("*.jpg"))
    assert cached and client.get(moment["thumbnails"][2]).content == response.content


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on `port`, from the kernel's table (/proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add(address)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads the Linux socket table")
def test_vidla_serve_listens_on_127_0_0_1_only_by_default(served):
    process, port = served
    assert _listening_addresses(port) == {"127.0.0.1"}
