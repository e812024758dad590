"""`vidla serve`: a FastAPI app over a search index (docs/search.md).

    GET /                                  the search page (plain HTML + JS, no build step)
    GET /api/info                          what the index holds
    GET /api/search?q=TEXT&k=10&min_score  moments for a text query, grouped per video (&nprobe=, &ef_search=:
                                           an approximate index's recall/speed trade-off for this query;
                                           &rerank=N: re-score the best N windows with text-guided key frames)
    GET /api/similar/{window_id}?k=10      moments like a window of the index ("more like this")
    GET /api/thumbnails/{window_id}/{i}    JPEG of the i-th frame the model saw in that window, or a
                                           nearby one when it is flat (black, a fade); cached
    GET /api/videos/{video_id}             the video file, with HTTP range requests (206) for seeking

Files are reached only through ids of the index: no request names a path, so nothing outside the index can be read.
Every bad request gets a 4xx with a message saying what was wrong.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from vidla.search.query import SearchIndex, VideoHits

MAX_QUERY_CHARS = 500
MAX_K = 100
MAX_TUNING = 4096  # nprobe / ef_search per request: 4096 cells is already an exact scan at a million windows
MAX_RERANK = 200  # windows re-encoded per request: each costs a model call on T frames (seconds on a CPU)
THUMBNAIL_WIDTH = 160
STRIP = 4  # thumbnails per result card
# A frame whose luma varies less than this (black, a fade, a blank card; grey levels, 0-255) makes a poor thumbnail:
# a nearby frame of the same strip slot is shown instead, when one is not flat.
FLAT_LUMA_STD = 4.0


def _jpeg(frame, width: int = THUMBNAIL_WIDTH) -> bytes:
    from PIL import Image

    image = Image.fromarray(frame)
    height = max(1, round(image.height * width / image.width))
    out = io.BytesIO()
    image.resize((width, height), Image.BICUBIC).save(out, format="JPEG", quality=85)
    return out.getvalue()


def is_flat(frame: np.ndarray) -> bool:
    """True for a frame [H, W, 3] (uint8 RGB) whose luma (BT.601) has a standard deviation under FLAT_LUMA_STD."""
    luma = frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(luma.std()) < FLAT_LUMA_STD


def slot_positions(position: int, frames: int) -> list[int]:
    """The window frames a thumbnail may show for `position`, best first: itself, then its neighbours in its strip
    slot (later first: a fade from black ends later), within half a slot so that neighbouring cards differ."""
    reach = max(1, frames // (2 * STRIP))
    order = [position]
    for d in range(1, reach + 1):
        order += [p for p in (position + d, position - d) if 0 <= p < frames]
    return order


class Thumbnails:
    """Frames from inside a window, as JPEG, made on first request and cached on disk (in the index folder when
    it is writable) or in memory. Keys hash the video's content and the instant, so a changed video never shows a
    stale picture."""

    def __init__(self, index: SearchIndex, folder: Path | None):
        self.index, self.folder, self.memory = index, folder, {}
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                self.folder = None

    def get(self, window_id: int, position: int) -> bytes | None:
        from vidla.search.windows import Window, window_timestamps

        rows = self.index.store.windows([window_id])
        if window_id not in rows:
            return None
        row = rows[window_id]
        video = self.index.store.video(row.video_id)
        frames = self.index.identity["model"]["num_frames"]
        instants = window_timestamps(Window(row.start, row.end, row.scale), frames)
        candidates = [instants[i] for i in slot_positions(position, frames)]
        key = hashlib.sha256(f"{video.sha256}:{candidates}:{THUMBNAIL_WIDTH}:{FLAT_LUMA_STD}".encode()).hexdigest()[:32]
        cached = self._read(key)
        if cached is not None:
            return cached
        data = _jpeg(self._decode_informative(video.path, candidates))
        self._write(key, data)
        return data

    @staticmethod
    def _decode_informative(path: str, candidates: list[float]) -> np.ndarray:
        """The first candidate's frame, or, when it is flat, the nearest candidate's that is not (else the first)."""
        from vidla.data.decode import open_video
        from vidla.data.transforms import decode_size

        # A thumbnail's shorter side is at most its width: decode to the rule's size for that, not the source's (PIL's
        # antialiased resize does the last step, as the model's transform does for the index).
        with open_video(path, resize_to=decode_size(THUMBNAIL_WIDTH)) as reader:
            first = reader.frames_at(candidates[:1]).frames[0]
            if not is_flat(first) or len(candidates) == 1:
                return first
            others = sorted(candidates[1:])  # one forward pass over the rest
            decoded = dict(zip(others, reader.frames_at(others).frames))
        return next((decoded[t] for t in candidates[1:] if not is_flat(decoded[t])), first)

    def _read(self, key: str) -> bytes | None:
        if key in self.memory:
            return self.memory[key]
        if self.folder is not None and (self.folder / f"{key}.jpg").is_file():
            return (self.folder / f"{key}.jpg").read_bytes()
        return None

    def _write(self, key: str, data: bytes) -> None:
        if self.folder is not None:
            from vidla.io import atomic_write

            try:
                with atomic_write(self.folder / f"{key}.jpg", "wb") as f:
                    f.write(data)
                return
            except OSError:
                pass
        if len(self.memory) > 10_000:
            self.memory.clear()
        self.memory[key] = data


def create_app(index: SearchIndex | str | Path, checkpoint: str | Path | None = None, nprobe: int | None = None,
               ef_search: int | None = None):
    """The FastAPI app. The model is loaded (and checked against the index) before the first request.
    `nprobe` / `ef_search`: the server's default recall/speed trade-off (a request may ask for another)."""
    from fastapi import FastAPI, HTTPException, Path as PathParam, Query
    from fastapi.responses import FileResponse, HTMLResponse, Response

    if not isinstance(index, SearchIndex):
        index = SearchIndex(index, checkpoint=checkpoint, nprobe=nprobe, ef_search=ef_search)
    index.model  # noqa: B018 - load and check the model now, not on the first query
    lock = threading.Lock()  # one query at a time through the model and the SQLite connection
    thumbnails = Thumbnails(index, index.folder / "thumbnails")
    frames = int(index.identity["model"]["num_frames"])
    shown = min(STRIP, frames)
    strip = [int((i + 0.5) * frames / shown) for i in range(shown)]  # frames spread evenly over the window
    app = FastAPI(title="vidla search", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.index = index

    def hits_json(results: list[VideoHits]) -> list[dict[str, Any]]:
        out = []
        for video in results:
            item = video.to_json()
            item["name"] = Path(video.path).name
            item["video_url"] = f"/api/videos/{video.video_id}"
            for moment in item["moments"]:
                moment["thumbnails"] = [f"/api/thumbnails/{moment['window_id']}/{i}" for i in strip]
            out.append(item)
        return out

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return resources.files("vidla.search").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        with lock:
            return {"videos": len(index.store.videos()), "windows": int(index.vectors.ntotal),
                    "vector_index": index.vector_kind,
                    "model": index.identity["model"], "windows_config": index.identity["windows"]}

    @app.get("/api/search")
    def search(q: str = Query(..., min_length=1, max_length=MAX_QUERY_CHARS, description="what to look for"),
               k: int = Query(10, ge=1, le=MAX_K, description="moments to return"),
               min_score: float | None = Query(None, ge=-1.0, le=1.0, description="cosine similarity floor"),
               nprobe: int | None = Query(None, ge=1, le=MAX_TUNING, description="ivf: cells scanned"),
               ef_search: int | None = Query(None, ge=1, le=MAX_TUNING, description="hnsw: search breadth"),
               rerank: int | None = Query(None, ge=1, le=MAX_RERANK,
                                          description="frame-selection models: windows re-scored (>= k)")):
        if not q.strip():
            raise HTTPException(400, "the query is empty")
        with lock:
            try:
                results = index.search_text(q, k=k, min_score=min_score, nprobe=nprobe, ef_search=ef_search,
                                            rerank=rerank)
            except ValueError as e:  # rerank < k, or a model without frame selection (SearchIndexError)
                raise HTTPException(400, str(e)) from None
        return {"query": q, "k": k, "min_score": min_score, "rerank": rerank, "results": hits_json(results)}

    @app.get("/api/similar/{window_id}")
    def similar(window_id: int = PathParam(..., ge=0), k: int = Query(10, ge=1, le=MAX_K),
                min_score: float | None = Query(None, ge=-1.0, le=1.0),
                nprobe: int | None = Query(None, ge=1, le=MAX_TUNING),
                ef_search: int | None = Query(None, ge=1, le=MAX_TUNING)):
        with lock:
            try:
                results = index.search_window(window_id, k=k, min_score=min_score, nprobe=nprobe,
                                              ef_search=ef_search)
            except KeyError:
                raise HTTPException(404, f"no window {window_id} in this index") from None
        return {"window_id": window_id, "k": k, "results": hits_json(results)}

    @app.get("/api/thumbnails/{window_id}/{position}")
    def thumbnail(window_id: int = PathParam(..., ge=0), position: int = PathParam(..., ge=0, lt=frames)):
        with lock:
            data = thumbnails.get(window_id, position)
        if data is None:
            raise HTTPException(404, f"no window {window_id} in this index")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    @app.get("/api/videos/{video_id}")
    def video(video_id: int = PathParam(..., ge=0)):
        with lock:
            row = index.store.video(video_id)
        if row is None:
            raise HTTPException(404, f"no video {video_id} in this index")
        if not Path(row.path).is_file():
            raise HTTPException(410, f"video {video_id} was indexed but its file is gone; re-run vidla index")
        media = mimetypes.guess_type(row.path)[0] or "application/octet-stream"
        return FileResponse(row.path, media_type=media)  # answers Range requests with 206 / Content-Range

    return app


def serve(index: str | Path, host: str = "127.0.0.1", port: int = 8000, checkpoint: str | Path | None = None,
          nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Runs the app on uvicorn; bound to this machine only unless `host` says otherwise."""
    import uvicorn

    app = create_app(index, checkpoint, nprobe=nprobe, ef_search=ef_search)
    print(f"vidla search: http://{host}:{port}/  ({app.state.index.vectors.ntotal} windows)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
