"""Serving like production: token-budget batches over HTTP, Prometheus metrics, readable rejections."""

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from test_serving import LiveServer

LONG = " ".join(["furthermore delve tapestry moreover crucial landscape"] * 12)   # truncated to max_length 64
SHORT = "lol yeah"


def _server(trained_xlmr, spy: list | None = None, **limits):
    """An in-process server; with ``spy``, every model batch's token lengths are appended to it."""
    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app

    clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    if spy is not None:
        inner, lock = clf.logits_from_ids, threading.Lock()

        def recording(ids):
            with lock:
                spy.append([len(x) for x in ids])
            return inner(ids)

        clf.logits_from_ids = recording
    return LiveServer(create_app(clf, ServeLimits(**limits))), clf


def test_mixed_lengths_run_in_fewer_shape_homogeneous_batches(trained_xlmr):
    from m3cls.serving.batching import bucket_of

    batches: list[list[int]] = []
    live, clf = _server(trained_xlmr, batches, max_batch_tokens=256, max_wait_ms=400)
    texts = [SHORT + f" {i}" if i % 3 else LONG for i in range(21)]   # 14 short, 7 long, interleaved
    split = [LONG, SHORT, LONG, "kinda weird"]   # then one request whose texts run in two batches
    with live:
        batches.clear()   # forget the warm-up batch
        with ThreadPoolExecutor(21) as pool:
            replies = list(pool.map(lambda t: httpx.post(f"{live.url}/predict", json={"texts": [t]}, timeout=30),
                                    texts))
        mixed = httpx.post(f"{live.url}/predict", json={"texts": split}, timeout=30)
    batches = list(batches)   # before local predictions below add their own
    assert [r.status_code for r in replies] == [200] * 21 and mixed.status_code == 200
    local = clf.predict(texts)
    for reply, expected in zip(replies, local):
        got = reply.json()["predictions"][0]
        assert got["label"] == expected.label
        assert got["probabilities"] == pytest.approx(expected.probabilities, abs=1e-4)
    for got, expected in zip(mixed.json()["predictions"], clf.predict(split)):
        assert got["probabilities"] == pytest.approx(expected.probabilities, abs=1e-4)
    for lengths in batches:
        assert len({bucket_of(n) for n in lengths}) == 1            # never a long text padding short ones
        assert len(lengths) * max(lengths) <= 256                  # within the token budget
    concurrent = batches[:-2]   # the last request ran alone: its short texts and its long texts in two batches
    assert sum(len(b) for b in concurrent) == 21
    assert len(concurrent) < 21 and max(len(b) for b in concurrent) > 1   # requests shared batches
    assert batches[-2:] == [[64, 64], [len(ids) for ids in clf.encode(split[1::2])]]   # oldest bucket first


def _metrics(url: str, headers: dict | None = None) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(f"{url}/metrics", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def test_metrics_names_and_values_after_known_traffic(trained_xlmr):
    live, clf = _server(trained_xlmr, max_body_bytes=20_000)
    pairs = [["furthermore delve", "lol"], ["kinda weird stuff", "moreover crucial"], ["a", "the tapestry"]]
    with live:
        for texts in pairs:
            assert httpx.post(f"{live.url}/predict", json={"texts": texts}).status_code == 200
        assert httpx.post(f"{live.url}/predict", content=b'{"texts": [', headers={"content-type":
                          "application/json"}).status_code == 422
        assert httpx.post(f"{live.url}/predict", json={"texts": ["y" * 400] * 60}).status_code == 413
        assert httpx.get(f"{live.url}/labels").status_code == 200
        m = _metrics(live.url)
    sent = [t for texts in pairs for t in texts]
    assert m[("m3cls_requests_total", (("route", "/predict"), ("status", "200")))] == 3
    assert m[("m3cls_requests_total", (("route", "/predict"), ("status", "422")))] == 1
    assert m[("m3cls_requests_total", (("route", "/predict"), ("status", "413")))] == 1
    assert m[("m3cls_requests_total", (("route", "/labels"), ("status", "200")))] == 1
    assert m[("m3cls_request_duration_seconds_count", (("route", "/predict"),))] == 5
    assert m[("m3cls_texts_total", ())] == 6                       # the warm-up batch is not counted
    assert m[("m3cls_tokens_total", ())] == sum(len(ids) for ids in clf.encode(sent))
    assert m[("m3cls_batch_size_texts_sum", ())] == 6
    assert 3 <= m[("m3cls_batch_size_texts_count", ())] <= 6     # one or two batches per request
    assert m[("m3cls_batch_size_tokens_sum", ())] == m[("m3cls_padded_tokens_total", ())]
    assert m[("m3cls_padded_tokens_total", ())] >= m[("m3cls_tokens_total", ())]
    assert m[("m3cls_queue_wait_seconds_count", ())] == 6
    assert m[("m3cls_queue_depth", ())] == 0 and m[("m3cls_queue_texts", ())] == 0
    assert m[("m3cls_requests_in_flight", ())] == 1                # the scrape itself


def test_metrics_and_probes_with_an_api_key(trained_xlmr):
    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app

    app = create_app(Classifier.from_pretrained(trained_xlmr, precision="fp32"), ServeLimits(), api_key="k")
    with LiveServer(app) as live:
        assert httpx.get(f"{live.url}/metrics").status_code == 401
        assert httpx.get(f"{live.url}/ready").json() == {"status": "ready"}   # probes need no key
        m = _metrics(live.url, {"Authorization": "Bearer k"})
    assert m[("m3cls_requests_total", (("route", "/metrics"), ("status", "401")))] == 1
    assert m[("m3cls_requests_total", (("route", "/ready"), ("status", "200")))] == 1


def _raw_request(port: int, head: bytes, body: bytes) -> tuple[int, dict, bytes]:
    """Send the whole request on a plain socket (the body in 64 KiB pieces, as a network client would), then
    read one response: (status, headers, body). When the server says it closes, read on to its clean end: a
    connection reset anywhere fails the test."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head)
        for start in range(0, len(body), 1 << 16):
            s.sendall(body[start: start + (1 << 16)])
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, f"connection closed before a response: {data!r}"
            data += chunk
        raw_head, rest = data.split(b"\r\n\r\n", 1)
        lines = raw_head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(rest) < int(headers["content-length"]) or headers.get("connection") == "close":
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        assert len(rest) == int(headers["content-length"])
    return int(lines[0].split()[1]), headers, rest


def test_an_oversized_body_always_gets_a_readable_413(trained_xlmr):
    live, _ = _server(trained_xlmr, max_body_bytes=20_000)
    body = b'{"texts": ["' + b"x" * 1_000_000 + b'"]}'    # 50x the limit, within what the server drains
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()   # as urllib sends it
    with live:
        for _ in range(20):
            status, _, answer = _raw_request(live.port, head, body)
            assert status == 413 and "request body over 20000 bytes" in json.loads(answer)["error"]
        chunked = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        status, _, answer = _raw_request(live.port, chunked, b"5\r\nhello\r\n0\r\n\r\n")
        assert status == 411 and "Content-Length" in json.loads(answer)["error"]
        assert httpx.post(f"{live.url}/predict", json={"texts": ["still serving"]}).status_code == 200


def test_max_batch_tokens_below_max_length_is_a_one_line_error(trained_xlmr, capsys):
    from m3cls.cli import main

    # an address that cannot be bound: a missed check fails the test instead of starting a server that never returns
    serve = ["serve", "--model_path", trained_xlmr, "--host", "256.0.0.1"]
    assert main([*serve, "--max_length", "64", "--max_batch_tokens", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max_batch_tokens 32 is below max_length 64" in err[0]
    for flags, message in ((["--max_batch_tokens", "-1"], "--max_batch_tokens must be 0"),
                           (["--request_timeout", "-1"], "--request_timeout must be a number of seconds above 0"),
                           (["--shutdown_timeout", "-5"], "--shutdown_timeout must be a number of seconds")):
        assert main([*serve, *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]
    from m3cls import Classifier
    from m3cls.errors import ConfigError
    from m3cls.serving.app import ServeLimits, create_app

    with pytest.raises(ConfigError, match="below max_length 64"):   # the model's saved max_length, too
        create_app(Classifier.from_pretrained(trained_xlmr), ServeLimits(max_batch_tokens=63))


def test_a_port_in_use_is_a_one_line_error(trained_xlmr, capsys):
    from m3cls.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model_path", trained_xlmr, "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--port {port}: cannot listen there" in err[0] and "another --port" in err[0]
