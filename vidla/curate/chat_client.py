"""A client for OpenAI-compatible chat-completions endpoints (OpenAI, vLLM, Ollama, llama.cpp, ...).

Standard library only. Every request has a timeout; failures that may pass (timeouts, refused or reset
connections, HTTP 408/409/429 and 5xx, replies that are not a chat completion) are retried with exponential
backoff and jitter, honouring `Retry-After`; other HTTP errors (400, 401, 404, ...) fail at once. `map` runs
requests on a thread pool owned by the client, so that however many callers share the client, at most
`max_concurrency` requests are in flight.

Replies are bounded: at most `max_reply_bytes` are read (a server that ignores `max_tokens`, or a hostile one,
gets a ChatError instead of filling memory) and a whole request, however slowly the server sends, ends after
`reply_deadline` seconds.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class ChatError(RuntimeError):
    """A request that failed for good (after its retries, or at once for a permanent HTTP error)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class ChatSettings:
    """Where and how to reach the endpoint; what it generates is set by the backend (model, max tokens)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"  # the *name* of the environment variable holding the key, if any
    timeout: float = 120.0               # seconds, per socket operation of one request
    max_retries: int = 5
    backoff_initial: float = 1.0         # seconds before the first retry; doubles each time
    backoff_max: float = 60.0
    max_concurrency: int = 8
    temperature: float = 0.0
    max_reply_bytes: int = 1 << 20      # a longer reply is refused (max_tokens of text is a few KB)
    reply_deadline: float = 600.0       # seconds for a whole request, against a server that drips bytes
    extra_body: dict[str, Any] = field(default_factory=dict)  # merged into every request (e.g. top_p, seed)


class ChatClient:
    def __init__(self, settings: ChatSettings, model: str, max_tokens: int = 128):
        if not model:
            raise ValueError("an OpenAI-compatible backend needs a model name (the name the server serves)")
        for name in ("timeout", "max_reply_bytes", "reply_deadline", "max_concurrency"):
            if not getattr(settings, name) > 0:
                raise ValueError(f"endpoint.{name} must be positive, got {getattr(settings, name)!r}")
        if max_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_tokens}")
        self.settings, self.model, self.max_tokens = settings, model, max_tokens
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self._pool = ThreadPoolExecutor(max_workers=max(1, settings.max_concurrency),
                                        thread_name_prefix="vidla-chat")
        self._random = random.Random()
        self._lock = threading.Lock()
        self.retries = 0  # requests retried so far (for reports)

    def complete(self, messages: list[dict[str, Any]]) -> str:
        """The reply's text; retries transient failures, then raises ChatError."""
        attempt = 0
        while True:
            try:
                return self._request(messages)
            except _Retryable as e:
                if attempt >= self.settings.max_retries:
                    raise ChatError(f"{self.url}: {e} (gave up after {attempt + 1} attempts)") from None
                with self._lock:
                    self.retries += 1
                time.sleep(self._delay(attempt, e.retry_after))
                attempt += 1

    def map(self, conversations: Sequence[list[dict[str, Any]]]) -> list[str]:
        """`complete` on each, at most `max_concurrency` at a time (across all callers); results in order.
        The first failure in order is raised, and the requests not yet started are cancelled."""
        futures = [self._pool.submit(self.complete, messages) for messages in conversations]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.settings.backoff_max)
        ceiling = min(self.settings.backoff_max, self.settings.backoff_initial * 2 ** attempt)
        with self._lock:
            return ceiling / 2 + self._random.uniform(0, ceiling / 2)  # jitter keeps clients from lock-step

    def _request(self, messages: list[dict[str, Any]]) -> str:
        body = {"model": self.model, "messages": messages, "temperature": self.settings.temperature,
                "max_tokens": self.max_tokens, **self.settings.extra_body}
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.settings.api_key_env, "") if self.settings.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                raw = self._read_bounded(response)
        except urllib.error.HTTPError as e:
            detail = e.read(500).decode("utf-8", "replace").strip()
            message = f"HTTP {e.code}: {detail or e.reason}"
            if e.code in _RETRY_STATUS:
                raise _Retryable(message, _retry_after(e.headers.get("Retry-After"))) from None
            raise ChatError(f"{self.url}: {message}") from None
        except TimeoutError as e:
            raise _Retryable(f"timed out after {self.settings.timeout}s") from e
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            raise _Retryable(f"connection failed: {getattr(e, 'reason', e)}") from e
        return _reply_text(raw)

    def _read_bounded(self, response) -> bytes:
        """The body, read in chunks: refused past `max_reply_bytes`, abandoned past `reply_deadline`."""
        limit, deadline = self.settings.max_reply_bytes, time.monotonic() + self.settings.reply_deadline
        declared = response.headers.get("Content-Length", "")
        chunks, size = [], 0
        while True:
            if (declared.isdigit() and int(declared) > limit) or size > limit:
                raise ChatError(f"{self.url}: the reply is larger than endpoint.max_reply_bytes={limit} bytes "
                                f"(asked for max_tokens={self.max_tokens}; does the server ignore it?)")
            if time.monotonic() > deadline:
                raise _Retryable(f"the reply took longer than endpoint.reply_deadline={self.settings.reply_deadline}s")
            chunk = response.read1(min(1 << 16, limit + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)


def _reply_text(raw: bytes) -> str:
    try:
        reply = json.loads(raw)
        content = reply["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise _Retryable(f"malformed reply: {raw[:200]!r}") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise _Retryable(f"empty reply: {raw[:200]!r}")
    return content.strip()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def image_message(prompt: str, jpeg: bytes) -> list[dict[str, Any]]:
    """One user message with a text part and an image given as a base64 data: URL."""
    import base64

    url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    return [{"role": "user", "content": [{"type": "text", "text": prompt},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def text_message(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]
