"""Seams of the batching worker: cancelled and timed-out requests, a dead worker, shutdown with a full queue."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from test_serving import LiveServer


class Gate:
    """A fake model: records each batch and blocks until released."""

    def __init__(self):
        self.release = threading.Event()
        self.batches: list[list] = []

    def __call__(self, batch):
        self.batches.append(list(batch))
        self.release.wait(timeout=30)
        return np.zeros((len(batch), 2), dtype=np.float32)


def _wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_a_cancelled_request_does_not_kill_the_worker():
    from m3cls.serving.batching import MicroBatcher

    model = Gate()
    batcher = MicroBatcher(model, max_batch_size=4)
    try:
        first = batcher.submit([[1, 2, 3]])
        _wait_for(lambda: model.batches)            # the worker is busy with the first request
        cancelled = batcher.submit([[4, 5]])
        assert cancelled.cancel()                   # a request timeout or a middleware gives up on it
        model.release.set()
        first.result(timeout=5)
        after = batcher.submit([[6]])
        assert after.result(timeout=5).shape == (1, 2)
        assert [[4, 5]] not in model.batches        # the cancelled text never reached the model
        assert batcher.alive
    finally:
        model.release.set()
        batcher.close()


def test_close_answers_queued_requests_at_once_and_does_not_hang_on_a_full_queue():
    from m3cls.serving.batching import MicroBatcher

    model = Gate()
    batcher = MicroBatcher(model, max_batch_size=1, max_queue=2)
    running = batcher.submit([[1]])
    _wait_for(lambda: model.batches)
    queued = [batcher.submit([[2]]), batcher.submit([[3]])]   # the queue is now full
    closer = threading.Thread(target=batcher.close)
    closer.start()
    try:
        for future in queued:   # they learn at once that the server is closing, instead of waiting forever
            assert isinstance(future.exception(timeout=2), RuntimeError)
    finally:
        model.release.set()
        closer.join(timeout=10)
    assert not closer.is_alive()
    assert running.result(timeout=1).shape == (1, 2)   # the batch already running still finishes


def _blocked_server(trained_xlmr, release: threading.Event, **limits):
    """A server whose model blocks every batch until ``release`` is set."""
    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app

    clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    inner = clf.logits_from_ids

    def blocked(ids):
        release.wait(timeout=30)
        return inner(ids)

    clf.logits_from_ids = blocked
    app = create_app(clf, ServeLimits(**limits))
    release.set()      # let the warm-up batch through (it runs when the server starts) ...
    live = LiveServer(app).__enter__()
    release.clear()    # ... then block
    return live


def test_timed_out_requests_get_504_and_the_server_keeps_answering(trained_xlmr):
    release = threading.Event()
    live = _blocked_server(trained_xlmr, release, request_timeout=1.0, max_batch_size=1)
    try:
        with ThreadPoolExecutor(8) as pool:   # the first is cancelled in the model, the rest in the queue
            replies = list(pool.map(lambda i: httpx.post(f"{live.url}/predict", json={"texts": [f"text {i}"]},
                                                         timeout=30), range(12)))
        assert {r.status_code for r in replies} == {504}
        assert "1 s" in replies[0].json()["error"]
        release.set()
        r = httpx.post(f"{live.url}/predict", json={"texts": ["still alive"]}, timeout=10)
        assert r.status_code == 200 and r.json()["predictions"][0]["label"] in ("GPT", "Human")
        assert httpx.get(f"{live.url}/health").status_code == 200
    finally:
        release.set()
        live.__exit__(None, None, None)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_health_says_503_when_the_worker_is_gone(trained_xlmr):
    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app

    clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    inner, broken = clf.logits_from_ids, [False]

    def dies(ids):
        if broken[0]:
            raise SystemExit("the worker thread ends")   # not an Exception: nothing in the worker catches it
        return inner(ids)

    clf.logits_from_ids = dies
    with LiveServer(create_app(clf, ServeLimits())) as live:
        assert httpx.get(f"{live.url}/health").status_code == 200
        broken[0] = True
        r = httpx.post(f"{live.url}/predict", json={"texts": ["x"]}, timeout=10)
        assert r.status_code == 503
        health = httpx.get(f"{live.url}/health")
        assert health.status_code == 503 and "worker" in health.json()["status"]
        assert httpx.get(f"{live.url}/ready").status_code == 503


@pytest.mark.parametrize("n", [40])
def test_many_cancelled_requests_leave_a_working_batcher(n):
    from m3cls.serving.batching import MicroBatcher

    calls = []

    def model(batch):
        calls.append(len(batch))
        time.sleep(0.002)
        return np.ones((len(batch), 2), dtype=np.float32)

    batcher = MicroBatcher(model, max_batch_size=4)
    try:
        futures = [batcher.submit([[i] * 3]) for i in range(n)]
        for future in futures[::2]:
            future.cancel()
        for future in futures[1::2]:
            assert future.result(timeout=5).shape == (1, 2)
        assert batcher.submit([[1]]).result(timeout=5).shape == (1, 2)
        assert batcher.alive
    finally:
        batcher.close()
