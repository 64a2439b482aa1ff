"""Issue 25: the server stays responsive under hostile requests, and keyless serving is fenced in."""

import base64
import hashlib
import json
import logging
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from test_serving import LiveServer, start

from m3cls.errors import ConfigError


@pytest.fixture(scope="module")
def live(trained_xlmr):
    with start(trained_xlmr, max_wait_ms=5) as server:
        yield server


def _post(live, body: bytes, headers: dict | None = None, timeout: float = 30):
    return httpx.post(f"{live.url}/predict", content=body, timeout=timeout,
                      headers={"content-type": "application/json", **(headers or {})})


# -- request checks -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [5e-324, 1e-9, 0.001, 1e6, 1e308])
def test_temperatures_outside_the_range_get_422(live, temperature):
    r = _post(live, json.dumps({"texts": ["delve"], "temperature": temperature}).encode())
    assert r.status_code == 422 and "temperature must be a number from 0.01 to 100" in r.json()["error"]


def test_temperatures_at_the_ends_of_the_range_answer(live):
    for temperature in (0.01, 100):
        r = _post(live, json.dumps({"texts": ["delve"], "temperature": temperature}).encode())
        assert r.status_code == 200
        assert all(0 <= p <= 1 for p in r.json()["predictions"][0]["probabilities"].values())


def test_a_lone_surrogate_gets_422(live):
    r = _post(live, b'{"texts": ["fine", "bad \\ud800 half"]}')
    assert r.status_code == 422 and "texts[1] is not valid Unicode" in r.json()["error"]
    assert _post(live, b'{"texts": ["pair \\ud83d\\ude00 ok"]}').status_code == 200


def test_explain_can_be_turned_off_and_is_capped_per_request(trained_xlmr):
    with start(trained_xlmr, explain=False) as off:
        r = _post(off, json.dumps({"texts": ["delve into it"], "explain": True}).encode())
        assert r.status_code == 422 and "--no_explain" in r.json()["error"]
    with start(trained_xlmr, max_explain_words=5) as capped:
        ok = _post(capped, json.dumps({"texts": ["delve into it"], "explain": True}).encode())
        assert ok.status_code == 200 and len(ok.json()["predictions"][0]["attributions"]) == 3
        r = _post(capped, json.dumps({"texts": ["delve into it", "and this too"], "explain": True}).encode())
        assert r.status_code == 413 and "at most 5 per request" in r.json()["error"]


def test_words_of_does_work_in_proportion_to_the_text():
    """Counted in executed lines, not seconds: 4x the words must cost about 4x, not 16x."""
    from m3cls.inference.explain import words_of

    def lines(n: int) -> int:
        text = "word " * n
        offsets = [None] + [(5 * i, 5 * i + 4) for i in range(n)] + [None]
        count = [0]

        def trace(frame, event, arg):
            if event == "line":
                count[0] += 1
            return trace

        sys.settrace(trace)
        try:
            assert len(words_of(text, offsets)) == n
        finally:
            sys.settrace(None)
        return count[0]

    assert lines(2000) < 5 * lines(500)


def test_the_default_request_timeout_is_set():
    from m3cls.serving.app import DEFAULT_REQUEST_TIMEOUT, ServeLimits

    assert ServeLimits().request_timeout == DEFAULT_REQUEST_TIMEOUT == 60


# -- the event loop stays free ------------------------------------------------------------------------------
def test_health_answers_within_half_a_second_while_three_1mb_requests_run(trained_xlmr):
    words = "delve tapestry furthermore moreover crucial landscape lol yeah kinda weird ".split()
    text = " ".join(words[i % len(words)] + str(i % 97) for i in range(3000))[:20_000]
    body = json.dumps({"texts": [text] * 50}).encode()   # 1.0 MB
    assert 990_000 < len(body) < 2_000_000
    with start(trained_xlmr) as server:
        with ThreadPoolExecutor(3) as pool:
            heavy = [pool.submit(_post, server, body, None, 120) for _ in range(3)]
            waits = []
            while not all(f.done() for f in heavy):
                started = time.perf_counter()
                assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
                waits.append(time.perf_counter() - started)
                time.sleep(0.05)
            assert [f.result().status_code for f in heavy] == [200] * 3
    assert len(waits) >= 3 and max(waits) < 0.5, waits


def test_a_client_that_leaves_stops_its_explain_work(trained_xlmr):
    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app

    clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    inner, release, texts_run = clf.logits_from_ids, threading.Event(), []

    def gated(ids):
        release.wait(timeout=30)
        texts_run.append(len(ids))
        return inner(ids)

    clf.logits_from_ids = gated
    app = create_app(clf, ServeLimits(max_batch_size=1, request_timeout=None))
    release.set()
    with LiveServer(app) as server:
        release.clear()
        texts_run.clear()
        text = " ".join(f"word{i}" for i in range(60))
        with pytest.raises(httpx.TimeoutException):   # the client gives up and closes its connection
            _post(server, json.dumps({"texts": [text], "explain": True}).encode(), timeout=1)
        time.sleep(0.5)
        release.set()
        time.sleep(2)
        assert sum(texts_run) <= 2, f"{sum(texts_run)} texts ran for a client that had left"
        assert httpx.get(f"{server.url}/health").status_code == 200


# -- authentication, headers, hosts -------------------------------------------------------------------------
def test_bearer_is_case_insensitive_and_the_key_is_not(trained_xlmr):
    with start(trained_xlmr, api_key="s3cret") as server:
        for scheme in ("Bearer", "bearer", "BEARER"):
            r = httpx.get(f"{server.url}/labels", headers={"Authorization": f"{scheme} s3cret"})
            assert r.status_code == 200
        assert httpx.get(f"{server.url}/labels", headers={"Authorization": "Bearer S3CRET"}).status_code == 401
        assert httpx.get(f"{server.url}/labels", headers={"Authorization": "Basic s3cret"}).status_code == 401


def test_an_empty_api_key_is_refused_at_startup(trained_xlmr, monkeypatch, capsys):
    from m3cls import Classifier
    from m3cls.cli import main
    from m3cls.serving.app import create_app

    def served(*args, **kwargs):
        raise AssertionError("started serving with an empty API key")

    monkeypatch.setattr("m3cls.serving.app.serve", served)
    monkeypatch.setenv("M3CLS_API_KEY", "")
    assert main(["serve", "--model_path", trained_xlmr, "--port", "0"]) == 2
    assert "API key is empty" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="API key is empty"):
        create_app(Classifier.from_pretrained(trained_xlmr), api_key="  ")


def test_a_keyless_bind_beyond_loopback_warns_once(monkeypatch, caplog):
    from m3cls.serving import app as app_module
    from m3cls.serving import http

    monkeypatch.setattr(http, "run", lambda *args, **kwargs: None)
    with caplog.at_level(logging.WARNING):
        app_module.serve(None, "127.0.0.1", 0, 1.0)
        app_module.serve(None, "0.0.0.0", 0, 1.0, api_key="k")
        assert "without an API key" not in caplog.text
        app_module.serve(None, "0.0.0.0", 0, 1.0)
    assert caplog.text.count("without an API key") == 1


def test_the_page_sends_a_csp_that_allows_its_own_script_and_denies_framing(live):
    r = httpx.get(f"{live.url}/")
    script = r.text.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = r.headers["content-security-policy"]
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy and r.headers["x-frame-options"] == "DENY"


def test_docs_are_off_by_default(trained_xlmr, live):
    assert httpx.get(f"{live.url}/docs").status_code == 404
    assert "/predict" in httpx.get(f"{live.url}/openapi.json").json()["paths"]
    from m3cls import Classifier
    from m3cls.serving.app import create_app

    with LiveServer(create_app(Classifier.from_pretrained(trained_xlmr), docs=True)) as server:
        assert httpx.get(f"{server.url}/docs").status_code == 200


def test_a_keyless_server_refuses_foreign_host_headers(trained_xlmr):
    from m3cls import Classifier
    from m3cls.serving.app import create_app
    from m3cls.serving.http import allowed_hosts_for

    app = create_app(Classifier.from_pretrained(trained_xlmr), allowed_hosts=allowed_hosts_for("127.0.0.1", None))
    with LiveServer(app) as server:
        assert httpx.get(f"{server.url}/labels").status_code == 200
        assert httpx.get(f"{server.url}/labels", headers={"Host": f"localhost:{server.port}"}).status_code == 200
        r = httpx.get(f"{server.url}/labels", headers={"Host": f"evil.example:{server.port}"})
        assert r.status_code == 400 and "evil.example" in r.json()["error"]
        r = httpx.post(f"{server.url}/predict", json={"texts": ["x"]}, headers={"Host": "rebind.attacker"})
        assert r.status_code == 400


# -- connections ---------------------------------------------------------------------------------------------
def test_a_client_that_never_finishes_its_request_head_is_disconnected(trained_xlmr):
    import uvicorn

    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app
    from m3cls.serving.http import uvicorn_config

    limits = ServeLimits(header_timeout=0.5, keep_alive_timeout=1, max_connections=40)
    server = LiveServer(create_app(Classifier.from_pretrained(trained_xlmr), limits))
    server.server = uvicorn.Server(uvicorn_config(server.server.config.app, "127.0.0.1", server.port, limits,
                                                  log_level="error"))
    server.thread = threading.Thread(target=server.server.run, daemon=True)
    assert server.server.config.limit_concurrency == 40 and server.server.config.timeout_keep_alive == 1
    with server, socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")   # and never the blank line
        assert sock.recv(100) == b""   # closed by the server, long before the 5 s socket timeout
        assert httpx.get(f"{server.url}/health").status_code == 200
