"""Micro-batching: gather texts from concurrent requests into one model batch.

A single worker thread owns the model. Each request puts its texts on a bounded queue and gets a future; the
worker takes the first waiting request, then keeps gathering until the batch holds ``max_batch_size`` texts or
``max_wait_ms`` have passed, runs one forward pass, and hands each request its rows of logits. With the default
wait of 0 it gathers only what is already queued: a lone request runs at once, and requests that arrive during
a forward pass share the next one (measured: as fast as no batching for one client, 1.7x at 8 clients).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than the queue allows; the caller should retry later."""


@dataclass
class BatchStats:
    requests: int = 0
    texts: int = 0
    batches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "texts": self.texts, "batches": self.batches}


class MicroBatcher:
    """Runs ``logits_fn(list_of_texts) -> np.ndarray`` on batches gathered across requests."""

    def __init__(self, logits_fn, max_batch_size: int = 32, max_wait_ms: float = 0.0, max_queue: int = 256,
                 enabled: bool = True):
        self._logits_fn = logits_fn
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.stats = BatchStats()
        self._thread = threading.Thread(target=self._run, name="m3cls-batcher", daemon=True)
        self._stopped = threading.Event()
        self._thread.start()

    def submit(self, texts: list[str]) -> Future:
        """Queue texts; the future resolves to their logits (one row per text)."""
        future: Future = Future()
        try:
            self._queue.put_nowait((texts, future))
        except queue.Full:
            raise QueueFull from None
        return future

    def close(self) -> None:
        self._stopped.set()
        self._queue.put((None, None))
        self._thread.join(timeout=5)

    def _gather(self, first) -> list:
        items = [first]
        count = len(first[0])
        if not self.enabled:
            return items
        deadline = time.monotonic() + self.max_wait
        while count < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item[0] is None:  # close() sentinel: finish this batch, then stop
                self._stopped.set()
                break
            items.append(item)
            count += len(item[0])
        return items

    def _run(self) -> None:
        while not self._stopped.is_set():
            first = self._queue.get()
            if first[0] is None:
                break
            items = self._gather(first)
            texts = [t for item_texts, _ in items for t in item_texts]
            try:
                logits = self._logits_fn(texts)
            except Exception as e:  # the model failed: every waiting request learns why
                logger.exception("batch of %d texts failed", len(texts))
                for _, future in items:
                    future.set_exception(e)
                continue
            with self.stats.lock:
                self.stats.batches += 1
                self.stats.requests += len(items)
                self.stats.texts += len(texts)
            start = 0
            for item_texts, future in items:
                future.set_result(np.asarray(logits[start: start + len(item_texts)]))
                start += len(item_texts)
