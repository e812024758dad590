import base64
import time

import pytest
from _curate_synth import ChatServer

from vidla.curate.backends import BackendConfig, ChatCaptioner, ChatGenerator
from vidla.curate.chat_client import ChatClient, ChatError, ChatSettings
from vidla.curate.summarize import SUMMARY_PROMPT, summary_prompt


@pytest.fixture
def server():
    server = ChatServer()
    yield server
    server.close()


def _client(server, **overrides) -> ChatClient:
    settings = ChatSettings(base_url=server.url, timeout=5, max_retries=3, backoff_initial=0.01,
                            backoff_max=0.05, api_key_env="VIDLA_TEST_KEY")
    for key, value in overrides.items():
        setattr(settings, key, value)
    return ChatClient(settings, model="tiny-model", max_tokens=16)


def _ask(client, text="say hi"):
    return client.complete([{"role": "user", "content": summary_prompt(text)}])


def test_reply_and_request_shape(server, monkeypatch):
    monkeypatch.setenv("VIDLA_TEST_KEY", "sk-test")
    assert _ask(_client(server), "one two three") == "one two three."
    body = server.requests[0]
    assert body["model"] == "tiny-model" and body["max_tokens"] == 16 and body["temperature"] == 0.0
    assert server.authorizations == ["Bearer sk-test"]


@pytest.mark.parametrize("script", [["429", "500"], ["malformed", "empty"], ["500", "429", "malformed"]])
def test_transient_failures_are_retried(server, script):
    server.script = list(script)
    client = _client(server)
    assert _ask(client) == "say hi."
    assert len(server.requests) == len(script) + 1
    assert client.retries == len(script)


def test_timeouts_are_retried(server):
    server.script, server.slow_seconds = ["slow"], 1.0
    client = _client(server, timeout=0.2)
    started = time.monotonic()
    assert _ask(client) == "say hi."
    assert time.monotonic() - started < 0.9  # gave up on the slow request instead of waiting for it
    assert client.retries == 1


def test_gives_up_after_max_retries(server):
    server.script = ["500"] * 10
    with pytest.raises(ChatError, match="HTTP 500.*gave up after 3 attempts"):
        _ask(_client(server, max_retries=2))
    assert len(server.requests) == 3


def test_permanent_errors_fail_at_once(server):
    server.script = ["400"]
    with pytest.raises(ChatError, match="HTTP 400"):
        _ask(_client(server))
    assert len(server.requests) == 1


def test_unreachable_server(server):
    client = _client(server, max_retries=1)
    server.close()
    with pytest.raises(ChatError, match="connection failed"):
        _ask(client)


def test_backoff_is_exponential_and_capped():
    client = ChatClient(ChatSettings(backoff_initial=1.0, backoff_max=6.0), model="m")
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (3, 6), (3, 6)]):
        assert all(low <= client._delay(attempt, None) <= high for _ in range(20))
    assert client._delay(0, retry_after=2.5) == 2.5 and client._delay(0, retry_after=100) == 6.0


def test_concurrency_is_bounded_and_order_kept(server):
    server.delay = 0.05
    client = _client(server, max_concurrency=3)
    texts = [f"text number {i}" for i in range(12)]
    replies = client.map([[{"role": "user", "content": summary_prompt(t)}] for t in texts])
    assert replies == [t + "." for t in texts]
    assert server.max_in_flight == 3


def test_chat_captioner_sends_jpeg_data_urls(server):
    import numpy as np

    config = BackendConfig(kind="openai", model="vlm", prompt="Caption it.",
                           endpoint=ChatSettings(base_url=server.url, backoff_initial=0.01))
    frames = [np.full((48, 64, 3), value, np.uint8) for value in (10, 200)]
    captions = ChatCaptioner(config).caption(frames)
    assert len(captions) == 2 and all(c.startswith("a picture with digest") for c in captions)
    text_part, image_part = server.requests[0]["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "Caption it."}
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1])[:2] == b"\xff\xd8"


def test_chat_generator_sends_the_paper_prompt(server):
    config = BackendConfig(kind="openai", model="llm", endpoint=ChatSettings(base_url=server.url))
    ChatGenerator(config).generate([summary_prompt("A man walks. He sits.")])
    assert server.requests[0]["messages"] == [
        {"role": "user", "content": SUMMARY_PROMPT + " A man walks. He sits."}]


@pytest.mark.parametrize("action", ["huge", "huge-undeclared"])
def test_a_reply_past_max_reply_bytes_is_refused_at_once(server, action):
    server.script = [action]
    with pytest.raises(ChatError, match="larger than endpoint.max_reply_bytes=1048576"):
        _ask(_client(server))
    assert len(server.requests) == 1  # refused, not retried: the server would do it again


def test_a_dripping_reply_is_abandoned_at_the_deadline(server):
    server.script = ["drip"]
    client = _client(server, reply_deadline=0.5, timeout=2)
    started = time.monotonic()
    assert _ask(client) == "say hi."  # the retry gets a normal reply
    assert time.monotonic() - started < 3 and client.retries == 1


def test_settings_are_checked():
    with pytest.raises(ValueError, match="endpoint.max_reply_bytes must be positive"):
        ChatClient(ChatSettings(max_reply_bytes=0), model="m")
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1"):
        ChatClient(ChatSettings(), model="m", max_tokens=0)
