"""Runs survive a flaky OpenAI-compatible server: same records, retries counted, one-line stop.

The faults come from a real HTTP proxy in front of a server. :class:`FlakyProxy` listens on
``127.0.0.1`` (a free port) and forwards every POST to the server behind it, except where its
:class:`FaultSchedule` says to fail. Faults are decided per request, from the request's body
and how often that body was seen before, so a client that sends the same requests meets the
same faults in every run:

- ``server_error``: HTTP 500, the server is not asked;
- ``overloaded``: HTTP 429 with ``Retry-After``, the server is not asked;
- ``dropped``: the server answers, the proxy sends the headers and half the body, then closes;
- ``delayed``: the server answers, the proxy holds the answer past the client's time-out.

A dropped or delayed request reaches the server, so the server must answer a repeated request
as it did the first time: one slot, a seed per request, and no state carried from one request
to the next. llama-cpp-python's server carries one: it reuses the longest prompt prefix left in
its cache, and logits computed over a cached prefix differ from a fresh evaluation's (by up to
0.1 nat for SmolLM2), so that even two fault-free runs differ. The proxy therefore has the
server forget before each request, by first sending it a one-token completion that shares no
prefix with any chat prompt.
:attr:`FlakyProxy.down` makes it answer every request with HTTP 503: a server that never
recovers.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from valuegym.lm import load_language_model
from valuegym.lm.base import TransientLanguageModelError
from valuegym.lm.http_client import JsonClient, retry_after_seconds
from valuegym.records import EpisodeRecorder
from valuegym.runs.runner import RunError, run_scenario
from valuegym.scenarios.validation import validate_scenario

FAULTS = ("server_error", "overloaded", "dropped", "delayed")

#: A request that leaves the server's prompt cache holding nothing a chat prompt starts with.
FORGET = json.dumps({"prompt": "~", "max_tokens": 1, "temperature": 0}).encode()


@dataclass(frozen=True)
class FaultSchedule:
    """Which requests fail, and how.

    The ``i``-th distinct request body's first attempt gets ``first[i]`` (so that every kind
    of fault is met even by a short run); any other attempt fails with the given rates, drawn
    from a hash of the body and the attempt number.

    Attributes:
        server_error: Share of attempts answered HTTP 500.
        overloaded: Share answered HTTP 429 with ``Retry-After: retry_after_s``.
        dropped: Share cut off mid-answer.
        delayed: Share held for ``delay_s`` seconds (set it past the client's time-out).
        first: Faults of the first attempts of the first distinct requests, in order.
        retry_after_s: The ``Retry-After`` of a 429, in whole seconds.
        delay_s: How long a delayed answer is held.
    """

    server_error: float = 0.05
    overloaded: float = 0.05
    dropped: float = 0.05
    delayed: float = 0.03
    first: tuple[str, ...] = FAULTS
    retry_after_s: int = 1
    delay_s: float = 5.0

    def fault(self, body: bytes, attempt: int, distinct: int) -> str | None:
        """The fault of one attempt, or ``None`` to let it through.

        Args:
            body: The request's body.
            attempt: How often this body was seen before (0 for the first time).
            distinct: How many distinct bodies were seen before this one's first attempt.
        """
        if attempt == 0 and distinct < len(self.first):
            return self.first[distinct]
        digest = hashlib.sha256(body + b"#attempt=%d" % attempt).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        for kind, rate in zip(
            FAULTS, (self.server_error, self.overloaded, self.dropped, self.delayed), strict=True
        ):
            if draw < rate:
                return kind
            draw -= rate
        return None


class FlakyProxy:
    """A proxy in front of ``upstream`` (the server's root, e.g. ``http://127.0.0.1:8000``).

    Use it as a context manager; :attr:`url` is the API root to give a client. Without a
    schedule it forwards everything (the fault-free run through the same address).

    Attributes:
        schedule: The faults to inject, or ``None``.
        down: Answer every request with HTTP 503.
        injected: Faults injected so far, by kind.
        forwarded: Requests the server answered.
    """

    def __init__(self, upstream: str, schedule: FaultSchedule | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.schedule = schedule
        self.down = False
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._upstream_lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_port}/v1"

    def __enter__(self) -> FlakyProxy:
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    def inject(self, schedule: FaultSchedule | None) -> None:
        """Inject these faults from now on, as if no request had been seen yet."""
        with self._lock:
            self.schedule = schedule
            self.injected.clear()
            self._seen.clear()

    def _decide(self, body: bytes) -> str | None:
        key = hashlib.sha256(body).hexdigest()
        with self._lock:
            attempt, distinct = self._seen[key], len(self._seen)
            self._seen[key] += 1
            if self.down:
                return "down"
            fault = None if self.schedule is None else self.schedule.fault(body, attempt, distinct)
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.upstream + path,
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def _forward(self, path: str, body: bytes) -> tuple[int, bytes]:
        """The server's answer to a request, evaluated from an empty prompt cache."""
        with self._upstream_lock:  # a forgetting and its request are not interleaved
            self._post("/v1/completions", FORGET)
            answer = self._post(path, body)
            self.forwarded += 1
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self.close_connection = True
                fault = proxy._decide(body)
                schedule = proxy.schedule or FaultSchedule()
                if fault == "down":  # a gateway's page, over several lines
                    self._answer(503, b"<html>\n<h1>503 Service Unavailable</h1>\n</html>\n")
                elif fault == "server_error":
                    self._answer(500, b'{"error": "injected server error"}')
                elif fault == "overloaded":
                    self._answer(
                        429,
                        b'{"error": "injected overload"}',
                        {"Retry-After": str(schedule.retry_after_s)},
                    )
                else:
                    status, payload = proxy._forward(self.path, body)
                    if fault == "dropped":
                        self._send_head(status, len(payload))
                        self.wfile.write(payload[: len(payload) // 2])
                        self.wfile.flush()
                        return  # the connection closes with the body half sent
                    if fault == "delayed":
                        time.sleep(schedule.delay_s)
                    try:
                        self._send_head(status, len(payload))
                        self.wfile.write(payload)
                    except OSError:
                        pass  # the client gave up waiting

            def _send_head(
                self, status: int, length: int, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(length))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()

            def _answer(
                self, status: int, payload: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self._send_head(status, len(payload), headers)
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


STUB_ANSWER = {"choices": [{"index": 0, "text": " ok " * 50}]}


class StubServer:
    """An upstream that answers every POST with :data:`STUB_ANSWER`, at once."""

    def __init__(self) -> None:
        payload = json.dumps(STUB_ANSWER).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self._http.server_port}"

    def __enter__(self) -> StubServer:
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()


def only(fault: str, **settings: float | int) -> FaultSchedule:
    """A schedule whose first request meets ``fault``, and nothing else fails."""
    return FaultSchedule(0, 0, 0, 0, first=(fault,), **settings)


@pytest.mark.parametrize(
    ("fault", "kind", "message"),
    [
        ("server_error", "server_error", "HTTP 500: {"),
        ("overloaded", "overloaded", "HTTP 429"),
        ("dropped", "dropped", "the answer broke off (IncompleteRead"),
        ("delayed", "timeout", "no answer within 0.3 s"),
    ],
)
def test_each_fault_is_a_transient_error_of_its_kind(fault, kind, message):
    schedule = only(fault, delay_s=0.6, retry_after_s=2)
    with StubServer() as stub, FlakyProxy(stub.root, schedule) as proxy:
        client = JsonClient(proxy.url, api_key_env="VALUEGYM_NO_KEY", timeout=0.3)
        with pytest.raises(TransientLanguageModelError) as raised:
            client.post("completions", {"prompt": "hi"})
        assert raised.value.kind == kind
        assert message in str(raised.value)
        assert raised.value.retry_after == (2.0 if fault == "overloaded" else None)
        assert "\n" not in str(raised.value)
        # The same request again gets through, as it would from the server alone.
        assert client.post("completions", {"prompt": "hi"}) == STUB_ANSWER
    assert proxy.injected == {fault: 1}


def test_retry_after_is_read_as_seconds_or_a_date():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Sun, 06 Dec 2026 15:00:10 GMT", now=1796569200.0) == 10.0
    assert retry_after_seconds("Sun, 06 Dec 2026 14:00:00 GMT", now=1796569200.0) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


#: The client's time-out in the runs below; a delayed answer is held past it.
CLIENT_TIMEOUT_S = 6.0


def chat_scenario(base_url: str):
    """A short chat: one LM agent on the server, one greedy agent, two episodes."""
    lm = {"backend": "openai", "model": "smollm2-135m", "base_url": base_url, "max_new_tokens": 6}
    return validate_scenario(
        {
            "name": "chat-over-faults",
            "seed": 3,
            "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}},
            "agents": [
                {"id": "ann", "kind": "lm", "persona": "a baker", "lm": lm},
                {"id": "cy", "kind": "greedy"},
            ],
            "episodes": 2,
            "max_steps": 3,
        }
    )


def load_with_short_timeout(backend, model, **options):
    """The run's model loader, with a time-out the delayed answers can pass quickly."""
    return load_language_model(backend, model, timeout=CLIENT_TIMEOUT_S, **options)


def record_bytes(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((run_dir / "records").iterdir())}


@pytest.fixture(scope="module")
def proxy(llama_server):
    with FlakyProxy(llama_server.removesuffix("/v1")) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def fault_free_records(proxy, tmp_path_factory):
    """The records of the chat run through the proxy, without faults."""
    proxy.inject(None)
    run_dir = tmp_path_factory.mktemp("fault-free")
    run_scenario(
        chat_scenario(proxy.url), run_dir, progress=False, load_model=load_with_short_timeout
    )
    return record_bytes(run_dir)


@pytest.mark.slow
def test_a_run_through_faults_records_what_a_fault_free_run_records(
    proxy, fault_free_records, tmp_path
):
    proxy.inject(FaultSchedule(delay_s=CLIENT_TIMEOUT_S + 1))
    result = run_scenario(
        chat_scenario(proxy.url), tmp_path, progress=False, load_model=load_with_short_timeout
    )
    assert set(proxy.injected) == set(FAULTS)
    assert record_bytes(tmp_path) == fault_free_records
    # Every injected fault was retried once more; a busy machine may add time-outs of its own.
    total = result.folder.read_summary()["timing"]["total"]
    assert total["retries"] == sum(total["retries_by_kind"].values())
    assert total["retries"] >= sum(proxy.injected.values())
    for fault, count in proxy.injected.items():
        assert total["retries_by_kind"]["timeout" if fault == "delayed" else fault] >= count


@pytest.mark.slow
def test_a_server_that_never_recovers_stops_the_run_in_one_line_and_it_resumes(
    proxy, fault_free_records, tmp_path, monkeypatch
):
    proxy.inject(None)
    finish = EpisodeRecorder.finish

    def finish_then_go_down(recorder):
        finish(recorder)
        proxy.down = True

    scenario = chat_scenario(proxy.url)
    with monkeypatch.context() as patch:
        patch.setattr(EpisodeRecorder, "finish", finish_then_go_down)
        with pytest.raises(RunError) as raised:
            run_scenario(scenario, tmp_path, progress=False, load_model=load_with_short_timeout)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("language model failed: openai:smollm2-135m: generate failed 5 ")
    assert f"{proxy.url}/chat/completions: HTTP 503" in message
    assert message.endswith(
        f"finished episodes are in {tmp_path / 'records'}, rerun once the server answers "
        "again to resume"
    )
    assert sorted(path.name for path in (tmp_path / "records").iterdir()) == [
        "steps-e00000.parquet",
        "utterances-e00000.parquet",
    ]
    proxy.down = False
    result = run_scenario(scenario, tmp_path, progress=False, load_model=load_with_short_timeout)
    assert (result.episodes_resumed, result.episodes_run) == (1, 1)
    assert record_bytes(tmp_path) == fault_free_records
