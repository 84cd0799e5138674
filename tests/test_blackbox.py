"""CallableEncoder and http_embedder against a local embedding server that fails.

The server (``EmbeddingServer``) is a real HTTP server on 127.0.0.1 answering
the OpenAI-style embedding API with its indices in reverse order.  Failures
are attached to inputs: a request holding an input with pending faults fails
with the first of them (HTTP 500, 429 or 400, an answer slower than the
client's time-out, a connection closed without an answer, a NaN), so what
fails does not depend on how the threads are scheduled.  The server counts
the embeddings it delivered per input, which tells whether anything was
lost or requested twice.
"""

import hashlib
import http.server
import json
import pickle
import socket
import threading
import time
import urllib.error
from collections import Counter

import numpy as np
import pytest

from skfusemix.encoders import (
    CallableEncoder,
    encode_to_npy,
    http_embedder,
    latent_metadata,
    read_latent_metadata,
)
from skfusemix.encoders._blackbox import is_transient
from skfusemix.exceptions import EncoderRequestError, TransientEncoderError

DIM = 6
#: small back-offs and time-outs keep the file fast
FAST = dict(backoff=0.01, timeout=0.5)
SLOW_ANSWER = 1.0  # seconds, past FAST["timeout"]


def embedding(text):
    """The server's deterministic embedding of one text (exact in float32)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 128) / 64.0 for b in digest[:DIM]]


def expected(texts):
    return np.asarray([embedding(t) for t in texts], dtype=np.float32)


class EmbeddingServer:
    """A JSON embedding API on the loopback address that fails on request.

    Parameters
    ----------
    latency : float
        Seconds each answer takes.
    gate : int or None
        Hold every request until this many are in flight (or 2 s passed):
        shows whether the client really keeps that many requests open.
    """

    def __init__(self, latency=0.0, gate=None):
        self.latency = latency
        self.gate = gate
        self.faults = {}  # input -> faults still to inject, first first
        self.served = Counter()  # input -> embeddings delivered
        self.batches = []  # every request's inputs, in arrival order
        self.in_flight = 0
        self.max_in_flight = 0
        self.cond = threading.Condition()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_POST(self):
                server.handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/embeddings"

    def __enter__(self):
        threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        ).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, text, *faults):
        self.faults.setdefault(text, []).extend(faults)

    def requests_with(self, text):
        return sum(text in batch for batch in self.batches)

    def handle(self, h):
        body = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        inputs = body["input"]
        with self.cond:
            self.batches.append(tuple(inputs))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.cond.notify_all()
            fault = None
            for text in inputs:
                if self.faults.get(text):
                    fault = self.faults[text].pop(0)
                    break
        try:
            if self.gate is not None:
                with self.cond:
                    self.cond.wait_for(lambda: self.in_flight >= self.gate, timeout=2)
            time.sleep(self.latency)
        finally:
            # done before the answer is written: a client that got it may send
            # its next request at once, which must not count as a second one
            with self.cond:
                self.in_flight -= 1
        self.answer(h, inputs, body.get("model"), fault)

    def answer(self, h, inputs, model, fault):
        if fault == "drop":  # close the connection without a word
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault in ("500", "429", "400"):
            payload = json.dumps({"error": f"injected {fault}"}).encode()
            h.send_response(int(fault))
            if fault == "429":
                h.send_header("Retry-After", "0")
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        if fault == "slow":
            time.sleep(SLOW_ANSWER)
        data = [
            {"object": "embedding", "index": i, "embedding": embedding(t)}
            for i, t in enumerate(inputs)
        ]
        if fault == "nan":
            data[0]["embedding"][0] = float("nan")
        data.reverse()  # out of order: the client must sort by index
        payload = json.dumps({"data": data, "model": model}).encode()
        # counted before the answer is written (a client that read it may check
        # the count at once); a slow answer is not delivered: the client timed out
        delivered = Counter(inputs) if fault is None else Counter()
        with self.cond:
            self.served.update(delivered)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except OSError:  # the client gave up waiting
            with self.cond:
                self.served.subtract(delivered)
                self.served += Counter()  # drop the zero counts


@pytest.fixture
def server():
    with EmbeddingServer() as s:
        yield s


TEXTS = [f"item {i}" for i in range(48)]


def test_survives_a_failing_server_with_every_item_encoded_once(server):
    for text, faults in {
        "item 5": ["500", "500"],
        "item 13": ["429"],
        "item 22": ["drop"],
        "item 30": ["slow"],
        "item 41": ["500", "drop", "slow", "429"],
    }.items():
        server.fail(text, *faults)
    X = TEXTS + TEXTS[:7]  # repeated inputs are requested once
    encoder = CallableEncoder(
        http_embedder(server.url, model="m"), batch_size=4, max_concurrency=3, **FAST
    )
    Z = encoder.transform(X)
    np.testing.assert_array_equal(Z, expected(X))
    assert Z.dtype == np.float32
    assert server.served == Counter(TEXTS)  # nothing lost, nothing twice
    assert not any(server.faults.values())  # every fault was met
    # 12 batches, one more request per injected fault
    assert len(server.batches) == 12 + 9
    assert server.requests_with("item 41") == 5


def test_http_embedder_reorders_by_index_and_sends_the_model(server):
    embed = http_embedder(server.url, model="bge")
    np.testing.assert_array_equal(embed(TEXTS[:5]), expected(TEXTS[:5]))
    assert embed.identity == f"{server.url} model=bge"


def test_permanent_error_fails_at_once_naming_batch_and_cause(server):
    server.fail("item 9", "400")
    encoder = CallableEncoder(
        http_embedder(server.url),
        batch_size=4,
        max_concurrency=2,
        max_retries=5,
        backoff=30.0,  # a retry would wait this long
    )
    with pytest.raises(EncoderRequestError) as info:
        encoder.transform(TEXTS)
    message = str(info.value)
    assert "batch 3 of 12" in message and "'item 8'" in message
    assert "HTTP 400" in message and "injected 400" in message
    assert "not retried" in message
    assert isinstance(info.value.__cause__, EncoderRequestError)
    assert server.requests_with("item 9") == 1


def test_transient_errors_give_up_after_max_retries(server):
    server.fail("item 2", *["500"] * 10)
    encoder = CallableEncoder(
        http_embedder(server.url), batch_size=4, max_retries=2, backoff=0.01
    )
    with pytest.raises(EncoderRequestError, match="3 times with transient.*HTTP 500"):
        encoder.transform(TEXTS[:8])
    assert server.requests_with("item 2") == 3


def test_nan_from_the_server_is_a_permanent_error(server):
    server.fail("item 1", "nan")
    encoder = CallableEncoder(http_embedder(server.url), batch_size=4, **FAST)
    with pytest.raises(
        EncoderRequestError, match=r"NaN or infinite values \(.*\) in 1 rows"
    ):
        encoder.transform(TEXTS[:4])
    assert server.requests_with("item 1") == 1


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrent_requests_stay_within_max_concurrency(limit):
    with EmbeddingServer(gate=limit) as server:
        encoder = CallableEncoder(
            http_embedder(server.url), batch_size=2, max_concurrency=limit
        )
        Z = encoder.transform(TEXTS[:24])
    np.testing.assert_array_equal(Z, expected(TEXTS[:24]))
    # the gate holds each request until `limit` are open: reaching it shows
    # the client used its concurrency, never more
    assert server.max_in_flight == limit


def test_cache_avoids_requesting_again(server, tmp_path):
    embed = http_embedder(server.url, model="m")
    first = CallableEncoder(embed, batch_size=4, memory=str(tmp_path))
    first.transform(TEXTS[:20])
    assert len(server.batches) == 5
    Z = first.transform(TEXTS[::-1])  # 28 new inputs, in 7 batches
    np.testing.assert_array_equal(Z, expected(TEXTS[::-1]))
    assert len(server.batches) == 12
    # another encoder with the same identity reads the same cache
    again = CallableEncoder(http_embedder(server.url, model="m"), memory=str(tmp_path))
    np.testing.assert_array_equal(again.transform(TEXTS), expected(TEXTS))
    assert len(server.batches) == 12
    assert server.served == Counter(TEXTS)
    # another model is another identity: encoded afresh
    CallableEncoder(
        http_embedder(server.url, model="n"), memory=str(tmp_path)
    ).transform(TEXTS[:3])
    assert len(server.batches) == 13


def test_a_failed_call_keeps_its_finished_batches_in_the_cache(server, tmp_path):
    server.fail("item 21", "400")
    encoder = CallableEncoder(
        http_embedder(server.url), batch_size=4, max_concurrency=1, memory=str(tmp_path)
    )
    with pytest.raises(EncoderRequestError, match="batch 6 of 6"):
        encoder.transform(TEXTS[:24])
    np.testing.assert_array_equal(encoder.transform(TEXTS[:24]), expected(TEXTS[:24]))
    assert server.served == Counter(TEXTS[:24])
    assert server.requests_with("item 0") == 1
    assert server.requests_with("item 21") == 2


def test_encode_to_npy_resumes_to_the_bytes_of_an_uninterrupted_run(tmp_path):
    X = TEXTS[:40]
    with EmbeddingServer() as server:
        whole = str(tmp_path / "whole.npy")
        encoder = CallableEncoder(http_embedder(server.url, model="m"), batch_size=4)
        encode_to_npy(encoder, X, whole, chunk_size=8)
    with EmbeddingServer() as server:
        server.fail("item 19", "400")  # a permanent failure in the third chunk
        path = str(tmp_path / "resumed.npy")
        encoder = CallableEncoder(
            http_embedder(server.url, model="m"),
            batch_size=4,
            max_concurrency=2,
            memory=str(tmp_path / "cache"),
            **FAST,
        )
        with pytest.raises(EncoderRequestError, match="HTTP 400"):
            encode_to_npy(encoder, X, path, chunk_size=8)
        with open(path + ".progress.json") as f:
            assert json.load(f) == {"n_done": 16}
        Z = encode_to_npy(encoder, X, path, chunk_size=8)  # the rerun
        np.testing.assert_array_equal(Z, expected(X))
        assert server.served == Counter(X)  # each input delivered exactly once
    with open(whole, "rb") as a, open(path, "rb") as b:
        assert a.read() == b.read()
    meta = read_latent_metadata(path, expected_encoder=encoder)
    assert meta["encoder"] == "CallableEncoder"
    assert meta["model"] == f"{server.url} model=m"
    assert meta["params"] == {"normalize": False}


def test_a_server_that_is_down_is_retried_then_reported():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    encoder = CallableEncoder(
        http_embedder(f"http://127.0.0.1:{port}/"), max_retries=1, backoff=0.01
    )
    with pytest.raises(EncoderRequestError, match="2 times.*Connection refused"):
        encoder.transform(["a"])


# ------------------------------------------------------------ plain callables
def _rows(batch):
    return np.asarray([[len(t), t.count("a") + 1.0] for t in batch])


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda b: _rows(b)[:-1], r"shape \([12], 2\) for batch [12] of 2"),
        (lambda b: _rows(b)[:, 0], r"shape \([23],\)"),
        (lambda b: _rows(b) * np.nan, r"NaN or infinite values \(.*\) in [23] rows"),
        (lambda b: _rows(b) * 1e300, "too large for float32"),
        (lambda b: np.array([["x", "y"]] * len(b)), "<U1 values"),
        (
            lambda b: _rows(b)[:, : 1 + (b[0] == "d")],
            r"[12] features for batch [12] of 2 .*, [12] for earlier",
        ),
        (lambda b: 1 / 0, "permanent error.*ZeroDivisionError"),
    ],
)
def test_bad_outputs_and_errors_are_permanent(fn, match):
    encoder = CallableEncoder(fn, identity="t", batch_size=3, max_concurrency=1)
    with pytest.raises(EncoderRequestError, match=match):
        encoder.transform(["a", "bb", "cab", "d", "e"])


@pytest.mark.parametrize("error", [TypeError, ValueError])
def test_type_and_value_errors_of_the_function_keep_their_type(error):
    def picky(batch):
        raise error("cannot embed a dict")

    with pytest.raises(error, match="failed on batch 1 of 1.*cannot embed a dict"):
        CallableEncoder(picky, identity="t").transform([{"a": 1}])


def test_transient_errors_of_any_callable_are_retried():
    calls = Counter()

    def flaky(batch, timeout):
        assert timeout == 0.25
        calls[batch[0]] += 1
        errors = [TransientEncoderError("busy"), TimeoutError(), ConnectionError()]
        if calls[batch[0]] <= len(errors):
            raise errors[calls[batch[0]] - 1]
        return _rows(batch)

    encoder = CallableEncoder(
        flaky, identity="flaky", batch_size=2, backoff=0.0, timeout=0.25
    )
    X = ["a", "b", "c", "d", "e"]
    np.testing.assert_array_equal(encoder.transform(X), _rows(X).astype(np.float32))
    assert calls == {"a": 4, "c": 4, "e": 4}


def test_transient_classification():
    def http_error(code):
        return urllib.error.HTTPError("http://x", code, "x", {}, None)

    class ClientError(Exception):  # like requests' and API clients' errors
        def __init__(self, status_code):
            self.status_code = status_code

    transient = [
        TransientEncoderError("x"),
        TimeoutError(),
        ConnectionResetError(),
        http_error(503),
        http_error(429),
        urllib.error.URLError(TimeoutError()),
        ClientError(502),
    ]
    permanent = [ValueError(), http_error(400), http_error(404), ClientError(401)]
    assert all(is_transient(e) for e in transient)
    assert not any(is_transient(e) for e in permanent)


def test_identity_is_a_string_never_the_function(tmp_path):
    with pytest.raises(ValueError, match="needs identity="):
        CallableEncoder(_rows).transform(["a"])
    with pytest.raises(ValueError, match="needs fn="):
        CallableEncoder(identity="x").transform(["a"])
    # the cache is keyed by the identity: a changed function under the same
    # identity is served from the cache (documented: change the identity)
    CallableEncoder(_rows, identity="v1", memory=str(tmp_path)).transform(["a", "b"])
    Z = CallableEncoder(lambda b: _rows(b) * 2, identity="v1", memory=str(tmp_path))
    np.testing.assert_array_equal(Z.transform(["a"]), _rows(["a"]))
    meta = latent_metadata(CallableEncoder(_rows, identity="v1", normalize=True))
    assert meta == {
        "encoder": "CallableEncoder",
        "model": "v1",
        "params": {"normalize": True},
    }


def test_normalize_and_input_checks():
    encoder = CallableEncoder(_rows, identity="t", normalize=True)
    Z = encoder.fit_transform(["a", "bab"])
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, rtol=1e-6)
    with pytest.raises(TypeError, match="single string"):
        encoder.transform("abc")
    with pytest.raises(ValueError, match="empty"):
        encoder.transform([])


def test_http_embedder_checks_its_arguments_and_hides_header_values(server):
    with pytest.raises(ValueError, match="http:// or https://"):
        http_embedder("ftp://x")
    with pytest.raises(ValueError, match="timeout"):
        http_embedder(server.url, timeout=0)
    with pytest.raises(TypeError, match="headers"):
        http_embedder(server.url, headers={"Authorization": 1})
    embed = http_embedder(server.url, headers={"Authorization": "Bearer s3cret"})
    assert "s3cret" not in repr(embed) and "s3cret" not in embed.identity
    encoder = pickle.loads(pickle.dumps(CallableEncoder(embed, batch_size=3)))
    np.testing.assert_array_equal(encoder.transform(TEXTS[:4]), expected(TEXTS[:4]))


def test_http_embedder_rejects_a_malformed_answer():
    class Wrong(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            payload = json.dumps({"data": [{"index": 1, "embedding": [1.0]}]})
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Wrong)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        embed = http_embedder(f"http://127.0.0.1:{httpd.server_address[1]}/")
        with pytest.raises(EncoderRequestError, match=r"indices are not 0..0"):
            embed(["a"])
        with pytest.raises(EncoderRequestError, match="1 embeddings .* for 2 inputs"):
            embed(["a", "b"])
    finally:
        httpd.shutdown()
        httpd.server_close()
