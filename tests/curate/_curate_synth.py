"""Synthetic inputs for the curation tests: transcripts, subtitle files in real formats, small videos, fake
backends, and a tiny OpenAI chat-completions server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from vidla.curate.summarize import SUMMARY_PROMPT

WORDS = ("the cat sat on a mat while dogs ran in the park and we saw red balls fly over green trees near "
         "water people cook food at home every day then read books about space stars light music").split()
PALETTE = [(230, 30, 30), (30, 230, 30), (30, 30, 230), (230, 230, 30), (30, 230, 230), (230, 30, 230)]

Transcript = list[list[tuple[float, float, str]]]  # sentences of (start, end, word)


def transcript(seed: int, duration: float) -> Transcript:
    """Sentences of 4-14 words, 0.25-0.45 s a word, 0.8-1.6 s of silence between sentences."""
    rng = random.Random(seed)
    sentences: Transcript = []
    t = 1.0
    while True:
        words = []
        for _ in range(rng.randint(4, 14)):
            length = rng.uniform(0.25, 0.45)
            words.append((round(t, 3), round(t + length, 3), rng.choice(WORDS)))
            t += length
        if t > duration - 1.0:
            return sentences
        sentences.append(words)
        t += rng.uniform(0.8, 1.6)


def sentence_spans(script: Transcript) -> list[tuple[float, float]]:
    return [(s[0][0], s[-1][1]) for s in script]


def _chunks(sentence, size):
    return [sentence[i:i + size] for i in range(0, len(sentence), size)]


def _ts(seconds: float, comma: bool) -> str:
    ms = round(seconds * 1000)
    text = f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
    return text.replace(".", ",") if comma else text


def to_srt(script: Transcript, chunk: int = 7) -> str:
    """ASR-style SRT: lower case, no punctuation, cues of up to `chunk` words (never across sentences)."""
    blocks = []
    cues = [c for sentence in script for c in _chunks(sentence, chunk)]
    for number, cue in enumerate(cues, 1):
        text = " ".join(w for _, _, w in cue)
        blocks.append(f"{number}\n{_ts(cue[0][0], True)} --> {_ts(cue[-1][1], True)}\n<i>{text}</i>\n")
    return "\n".join(blocks)


def to_vtt(script: Transcript) -> str:
    """Human-style WebVTT: a cue per sentence, punctuated, with a header, a NOTE, settings and voice tags."""
    lines = ["WEBVTT - made by a test", "", "NOTE this block is a comment", "", "STYLE", "::cue { color: red }", ""]
    for number, sentence in enumerate(script):
        text = " ".join(w for _, _, w in sentence)
        lines += [f"cue-{number}", f"{_ts(sentence[0][0], False)} --> {_ts(sentence[-1][1], False)} align:start",
                  f"<v Speaker>{text[0].upper()}{text[1:]}.</v>", ""]
    return "\n".join(lines)


def to_json3(script: Transcript, chunk: int = 6) -> str:
    """YouTube json3: an event per chunk, a seg per word with its offset, newline 'aAppend' events between."""
    events = [{"tStartMs": 0, "dDurationMs": 999_000, "id": 1, "wpWinPosId": 1, "wsWinStyleId": 1}]
    for sentence in script:
        for cue in _chunks(sentence, chunk):
            start = round(cue[0][0] * 1000)
            segs = [{"utf8": (" " if i else "") + w, **({"tOffsetMs": round(s * 1000) - start} if i else {})}
                    for i, (s, _, w) in enumerate(cue)]
            events.append({"tStartMs": start, "dDurationMs": round(cue[-1][1] * 1000) - start, "wWinId": 1,
                           "segs": segs})
            events.append({"tStartMs": round(cue[-1][1] * 1000), "dDurationMs": 10, "wWinId": 1, "aAppend": 1,
                           "segs": [{"utf8": "\n"}]})
    return json.dumps({"wireMagic": "pb3", "pens": [{}], "events": events})


def make_video(path: Path, duration: float, fps: int = 2, srt: str | None = None, language: str = "eng") -> Path:
    """A 64x48 video whose colour changes every 10 s; `srt` adds a subtitle stream (use an .mkv path)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = fps * 2
        subtitle_packets = []
        if srt is not None:
            srt_path = path.with_suffix(".tmp.srt")
            srt_path.write_text(srt, encoding="utf-8")
            source = av.open(str(srt_path))
            subtitle_stream = out.add_stream_from_template(source.streams.subtitles[0])
            subtitle_stream.metadata["language"] = language
            subtitle_packets = [p for p in source.demux(source.streams.subtitles[0]) if p.dts is not None]
        for index in range(int(duration * fps)):
            colour = PALETTE[int(index / fps // 10) % len(PALETTE)]
            image = np.empty((48, 64, 3), np.uint8)
            image[:] = colour
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        for packet in subtitle_packets:
            packet.stream = subtitle_stream
            out.mux(packet)
        if srt is not None:
            source.close()
            srt_path.unlink()
    return path


OUTPUTS = ("manifest.jsonl", "failures.jsonl", "stats.json")


def make_corpus(root: Path) -> Path:
    """Four good videos (SRT, json3, VTT and an embedded stream), one broken file, one without subtitles."""
    videos = root / "videos"
    for index, (duration, fmt) in enumerate([(150, "srt"), (120, "json3"), (90, "vtt"), (100, "embedded")]):
        script = transcript(seed=index, duration=duration)
        if fmt == "embedded":
            make_video(videos / f"v{index}.mkv", duration, srt=to_srt(script))
            continue
        make_video(videos / f"v{index}.mp4", duration)
        writer = {"srt": to_srt, "json3": to_json3, "vtt": to_vtt}[fmt]
        name = f"v{index}.en.{fmt}" if fmt == "json3" else f"v{index}.{fmt}"
        (videos / name).write_text(writer(script), encoding="utf-8")
    (videos / "broken.mp4").write_bytes(b"\x00" * 1000)
    (videos / "broken.srt").write_text(to_srt(transcript(9, 30)), encoding="utf-8")
    make_video(videos / "silent.mp4", 20)
    return videos


class FakeCaptioner:
    """Names the dominant colour of each frame (deterministic, no model)."""

    def __init__(self):
        self.calls = 0

    def caption(self, frames):
        self.calls += len(frames)
        out = []
        for frame in frames:
            mean = frame.reshape(-1, 3).mean(0)
            nearest = min(range(len(PALETTE)), key=lambda i: float(((np.array(PALETTE[i]) - mean) ** 2).sum()))
            out.append(f"a flat picture painted in colour number {nearest}")
        return out


class FakeGenerator:
    """'Summarises' by keeping the first eight words of the input text."""

    def __init__(self):
        self.prompts: list[str] = []

    def generate(self, prompts):
        self.prompts.extend(prompts)
        return [fake_summary(p) for p in prompts]


def fake_summary(prompt: str) -> str:
    text = prompt[len(SUMMARY_PROMPT):].strip() if prompt.startswith(SUMMARY_PROMPT) else prompt
    return " ".join(text.split()[:8]).rstrip(".") + "."


# -- a tiny OpenAI-compatible chat-completions server ------------------------------------------------------------

@dataclass
class ChatServer:
    """Serves POST /v1/chat/completions. `script` holds actions taken by the next requests in order: 'ok',
    '429', '500', '400', 'slow' (sleeps `slow_seconds` first), 'malformed', 'empty', 'huge' (8 MB; 'huge-undeclared'
    without Content-Length), 'drip' (a byte every 50 ms for 10 s); then 'ok'. Replies
    are deterministic functions of the request."""

    delay: float = 0.0
    slow_seconds: float = 2.0
    script: list[str] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                owner._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(handler.headers.get("Authorization"))
            action = self.script.pop(0) if self.script else "ok"
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        left = False
        try:
            time.sleep(self.delay + (self.slow_seconds if action == "slow" else 0.0))
            # Out of flight before the reply is written: a client that has read it may send its next request
            # before this thread would otherwise get to `finally` (seen under heavy load).
            with self._lock:
                self._in_flight -= 1
                left = True
            if action in ("429", "500", "400"):
                self._send(handler, int(action), b'{"error": {"message": "scripted failure"}}',
                           {"Retry-After": "0"} if action == "429" else {})
            elif action == "malformed":
                self._send(handler, 200, b'{"choices": "not what you expected"')
            elif action in ("huge", "huge-undeclared"):  # a server that ignores max_tokens: 8 MB of text
                reply = {"choices": [{"message": {"role": "assistant", "content": "words " * ((8 << 20) // 6)}}]}
                self._send(handler, 200, json.dumps(reply).encode(), declare_length=action == "huge")
            elif action == "drip":  # a byte every 50 ms: each read is quick, the reply never ends in time
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.end_headers()
                for _ in range(200):
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
                    time.sleep(0.05)
            else:
                content = "" if action == "empty" else reply_for(body)
                reply = {"id": "x", "object": "chat.completion", "model": body.get("model"),
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": content}}]}
                self._send(handler, 200, json.dumps(reply).encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)
        finally:
            if not left:
                with self._lock:
                    self._in_flight -= 1

    @staticmethod
    def _send(handler, status: int, payload: bytes, headers: dict | None = None, declare_length: bool = True) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        if declare_length:
            handler.send_header("Content-Length", str(len(payload)))
        else:
            handler.close_connection = True  # the body ends when the connection closes
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)


def reply_for(body: dict) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, list):  # an image request: name the picture by the hash of its bytes
        url = next(p["image_url"]["url"] for p in content if p["type"] == "image_url")
        jpeg = base64.b64decode(url.split(",", 1)[1])
        return f"a picture with digest {hashlib.sha256(jpeg).hexdigest()[:8]}"
    return fake_summary(content)
