"""Graceful shutdown: a real `m3cls serve` process gets SIGTERM/SIGINT with requests in flight."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from test_serving import _free_port, _wait_for


def _wait_ready(url: str, process: subprocess.Popen | None = None, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process is None or process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


def _wait_draining(url: str, seconds: float = 30) -> None:
    """Wait until /ready says the server is shutting down (it stays open while draining)."""
    deadline = time.monotonic() + seconds
    while (r := httpx.get(f"{url}/ready", timeout=5)).status_code != 503:
        assert time.monotonic() < deadline, "the server did not start draining"
        time.sleep(0.02)
    assert "shutting down" in r.text


def _gauges(url: str) -> dict:
    wanted = ("m3cls_queue_depth", "m3cls_requests_in_flight")
    lines = [line.split() for line in httpx.get(f"{url}/metrics").text.splitlines()]
    return {name: float(value) for name, value, *_ in (x for x in lines if len(x) >= 2) if name in wanted}


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed before the whole answer came"
        body += chunk
    return int(head.split()[1]), body


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_stream_answers_every_accepted_request_then_exits_0(trained_xlmr, sig):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # --max_wait_ms holds accepted requests in the queue, so the signal lands while they are in flight
    process = subprocess.Popen([sys.executable, "-m", "m3cls", "serve", "--model_path", trained_xlmr, "--port",
                                str(port), "--precision", "fp32", "--max_wait_ms", "20000",
                                "--shutdown_timeout", "30"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, M3CLS_LOG_LEVEL="INFO"))
    try:
        _wait_ready(url, process)
        texts = [f"furthermore delve tapestry {i}" if i % 2 else f"lol yeah kinda {i}" for i in range(8)]
        # one more client is still sending its body when the signal comes: accepted, so it must be answered
        body = json.dumps({"texts": ["a slow upload delve"]}).encode()
        uploading = socket.create_connection(("127.0.0.1", port), timeout=60)
        uploading.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
        with ThreadPoolExecutor(8) as pool:
            accepted = [pool.submit(httpx.post, f"{url}/predict", json={"texts": [t]}, timeout=60) for t in texts]
            deadline = time.monotonic() + 30
            while _gauges(url) != {"m3cls_queue_depth": 8, "m3cls_requests_in_flight": 10}:   # 8 + upload + scrape
                assert time.monotonic() < deadline, "the requests did not reach the server"
                time.sleep(0.05)
            process.send_signal(sig)
            _wait_draining(url)   # the server noticed the signal; the upload keeps it draining
            late = httpx.post(f"{url}/predict", json={"texts": ["too late"]}, timeout=30)
            replies = [f.result() for f in accepted]
        uploading.sendall(body[10:])
        upload_status, upload_answer = _read_response(uploading)
        uploading.close()
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    _, err = process.communicate()
    assert code == 0, err
    assert late.status_code == 503 and late.headers["retry-after"] == "1"
    assert "shutting down" in late.json()["error"]
    for status, answer in [(r.status_code, r.content) for r in replies] + [(upload_status, upload_answer)]:
        assert status == 200   # every accepted request got a full answer
        (prediction,) = json.loads(answer)["predictions"]
        assert prediction["label"] in ("GPT", "Human")
        assert np.isclose(sum(prediction["probabilities"].values()), 1.0)
    assert "ready: model loaded in" in err and "warm-up batch in" in err
    assert "every accepted request was answered" in err and "Traceback" not in err


def test_drain_deadline_answers_the_waiting_requests_with_503(trained_xlmr):
    """In process: the model holds its batch until the drain (0.3 s) has refused the two queued requests."""
    import uvicorn

    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app
    from m3cls.serving.http import _graceful

    clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    inner, slow, running, release = clf.logits_from_ids, threading.Event(), threading.Event(), threading.Event()

    def model(ids):
        if slow.is_set():
            running.set()
            release.wait(timeout=30)
        return inner(ids)

    clf.logits_from_ids = model
    app = create_app(clf, ServeLimits(max_batch_size=1))
    port = _free_port()
    server = _graceful(uvicorn.Server)(uvicorn.Config(app, port=port, log_level="error"), app.state.serve_state,
                                       app.state.batcher, 0.3)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait_ready(f"http://127.0.0.1:{port}")
    slow.set()
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(httpx.post, f"http://127.0.0.1:{port}/predict", json={"texts": [f"t {i}"]},
                               timeout=30) for i in range(3)]
        assert running.wait(timeout=30)                         # one request in the model ...
        _wait_for(lambda: app.state.batcher.queue_depth == 2)   # ... and two waiting
        server.handle_exit(signal.SIGTERM, None)
        try:   # the drain deadline answers the two waiting requests while the model still holds the first
            _wait_for(lambda: sum(f.done() for f in futures) == 2)
        finally:
            release.set()
        codes = sorted(f.result().status_code for f in futures)
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert codes == [200, 503, 503]
