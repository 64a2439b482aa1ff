"""The HTTP service over real HTTP on loopback: predictions, limits, auth, micro-batching."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app):
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start(model_path, api_key=None, **limits):
    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app

    clf = Classifier.from_pretrained(model_path, precision="fp32")
    return LiveServer(create_app(clf, ServeLimits(**limits), api_key))


@pytest.fixture(scope="module")
def server(trained_xlmr):
    with start(trained_xlmr, max_texts=8, max_chars=500, max_body_bytes=20_000, max_wait_ms=30) as live:
        yield live


def test_predict_matches_the_cli_line_format(server, trained_xlmr):
    from m3cls import Classifier

    texts = ["furthermore delve tapestry", "lol yeah kinda weird"]
    r = httpx.post(f"{server.url}/predict", json={"texts": texts})
    assert r.status_code == 200
    predictions = r.json()["predictions"]
    local = Classifier.from_pretrained(trained_xlmr, precision="fp32").predict(texts)
    assert [p["label"] for p in predictions] == [p.label for p in local] == ["GPT", "Human"]
    assert set(predictions[0]) == {"index", "label", "label_id", "probabilities", "unknown_token_share"}
    assert predictions[1]["index"] == 1
    hot = httpx.post(f"{server.url}/predict", json={"texts": texts[:1], "temperature": 100}).json()
    assert max(hot["predictions"][0]["probabilities"].values()) < max(predictions[0]["probabilities"].values())


def test_labels_health_docs_and_page(server):
    assert httpx.get(f"{server.url}/labels").json()["labels"] == ["GPT", "Human"]
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    assert httpx.get(f"{server.url}/docs").status_code == 404   # off by default (it loads Swagger from a CDN)
    assert "/predict" in httpx.get(f"{server.url}/openapi.json").json()["paths"]
    page = httpx.get(f"{server.url}/").text
    assert "<textarea" in page and "Classify" in page and "http" not in page.split("<script>")[0].lower()


@pytest.mark.parametrize("body,status,message", [
    (b'{"texts": ["a", ', 422, "invalid request"),
    (b'{"texts": "not a list"}', 422, "invalid request at texts"),
    (b'{"texts": []}', 422, "'texts' is empty"),
    (json.dumps({"texts": ["x"] * 9}).encode(), 413, "9 texts in one request; at most 8"),
    (json.dumps({"texts": ["x" * 501]}).encode(), 413, "texts[0] has 501 characters; at most 500"),
    (json.dumps({"texts": ["ok"], "temperature": 0}).encode(), 422, "temperature must be a number from 0.01 to 100"),
    (json.dumps({"texts": ["y" * 400] * 60}).encode(), 413, "request body over 20000 bytes"),
])
def test_bad_requests_get_4xx_json_and_the_server_keeps_serving(server, body, status, message):
    r = httpx.post(f"{server.url}/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and message in r.json()["error"]
    assert httpx.post(f"{server.url}/predict", json={"texts": ["still alive"]}).status_code == 200


def _wait_for(condition, seconds: float = 30.0) -> None:
    """Wait for an event another thread brings about (not for a fixed time)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_concurrent_requests_share_batches(trained_xlmr):
    """The model holds its first batch until the other requests wait in the queue; they then share one batch
    (no timing: the test waits for the queue, not for a clock)."""
    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app

    clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    inner, running, release, armed = clf.logits_from_ids, threading.Event(), threading.Event(), threading.Event()
    calls = []

    def gated(ids):
        calls.append(len(ids))
        if armed.is_set():
            running.set()
            release.wait(timeout=30)
        return inner(ids)

    clf.logits_from_ids = gated
    app = create_app(clf, ServeLimits())
    with LiveServer(app) as live:
        _wait_for(lambda: calls)   # the warm-up batch has run, ungated, whenever the server ran it
        armed.set()
        before = httpx.get(f"{live.url}/health").json()
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(httpx.post, f"{live.url}/predict", json={"texts": [f"text {i} delve"]},
                                   timeout=30) for i in range(16)]
            assert running.wait(timeout=30)  # the first batch is in the model (one request, or more that came
            # in together before the worker took it, under load): the rest wait behind it
            _wait_for(lambda: app.state.batcher.queued_texts == 16 - calls[-1])
            release.set()
            codes = [f.result().status_code for f in futures]
        after = httpx.get(f"{live.url}/health").json()
    assert codes == [200] * 16
    assert after["requests"] - before["requests"] == 16
    assert after["batches"] - before["batches"] == 2   # the first, and all that waited, together


def test_api_key_guards_everything_but_health_and_page(trained_xlmr):
    with start(trained_xlmr, api_key="s3cret") as live:
        assert httpx.get(f"{live.url}/health").status_code == 200
        assert httpx.get(f"{live.url}/").status_code == 200
        for path in ("/labels", "/docs", "/openapi.json"):
            assert httpx.get(f"{live.url}{path}").status_code == 401
        assert httpx.post(f"{live.url}/predict", json={"texts": ["x"]}).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(f"{live.url}/predict", json={"texts": ["x"]}, headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret"}
        assert httpx.post(f"{live.url}/predict", json={"texts": ["x"]}, headers=right).status_code == 200
        assert httpx.get(f"{live.url}/labels", headers=right).status_code == 200
