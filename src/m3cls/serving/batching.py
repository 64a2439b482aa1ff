"""Micro-batching by token budget: gather texts from concurrent requests into shape-homogeneous model batches.

A single worker thread owns the model. Each request brings its texts already tokenized (unpadded id lists) and
gets a future. Its texts wait in length buckets (powers of two: 1-8 tokens, 9-16, 17-32, ...), so a long text
never pads a batch of short ones. The worker serves the bucket that holds the oldest waiting text (nothing
starves) and fills a batch from it, oldest first, while the padded size ``texts x longest`` stays within
``max_batch_tokens`` and the batch holds at most ``max_batch_size`` texts. A request whose texts fall in several
buckets is answered when its last text has run. ``max_batch_tokens=0`` turns the budget off: one queue, batches
of ``max_batch_size`` texts in arrival order.

With the default wait of 0 the worker takes what is already queued: a lone request runs at once, and requests
that arrive during a forward pass share the next one. ``max_wait_ms`` waits up to that long for a full batch.

A request that is cancelled while it waits (a request timeout, a shutdown) is dropped before it reaches the
model, and one that is cancelled while its batch runs is simply not answered: the worker never dies of it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than the queue allows; the caller should retry later."""


class BatcherClosed(RuntimeError):
    """The batcher is shutting down or its worker has stopped; the request was not run."""


@dataclass(eq=False)
class Request:
    """One caller's texts (token id lists) and the future that receives their logits in order."""

    ids: Sequence[Sequence[int]]
    future: Future = field(default_factory=Future)
    submitted: float = field(default_factory=time.monotonic)
    serial: int = 0
    unscheduled: int = 0
    remaining: int = 0
    logits: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Entry:
    """One text of a request waiting in the queue."""

    request: Request
    row: int
    length: int
    order: int


def bucket_of(length: int) -> int:
    """The length bucket: texts of 1-8 tokens share bucket 3, 9-16 bucket 4, 17-32 bucket 5, and so on."""
    return (max(length, 8) - 1).bit_length()


class TokenPacker:
    """The waiting texts, grouped by length bucket; ``take()`` returns the next batch to run.

    >>> packer = TokenPacker(max_tokens=64, max_texts=8)
    >>> packer.add(Request([[1] * 30, [2] * 5, [3] * 31, [4] * 20]))
    >>> [e.length for e in packer.take()]   # the oldest text's bucket (17-32), within 64 padded tokens
    [30, 31]
    >>> [e.length for e in packer.take()], [e.length for e in packer.take()]
    ([5], [20])
    """

    def __init__(self, max_tokens: int, max_texts: int, per_request: bool = False):
        self.max_tokens, self.max_texts, self.per_request = max_tokens, max_texts, per_request
        self._buckets: dict[int, deque[Entry]] = {}
        self._order = itertools.count(1)
        self.texts = 0      # texts waiting
        self.requests = 0   # requests with at least one text waiting

    def __len__(self) -> int:
        return self.texts

    def _key(self, entry: Entry) -> int:
        if self.per_request:
            return entry.request.serial   # one bucket per request: batches never mix requests
        return bucket_of(entry.length) if self.max_tokens else 0

    def add(self, request: Request) -> None:
        """Queue every text of a request."""
        request.unscheduled = request.remaining = len(request.ids)
        for row, ids in enumerate(request.ids):
            entry = Entry(request, row, len(ids), next(self._order))
            request.serial = request.serial or entry.order
            self._buckets.setdefault(self._key(entry), deque()).append(entry)
        self.texts += len(request.ids)
        self.requests += 1

    def _pop(self, queue: deque) -> Entry:
        entry = queue.popleft()
        self.texts -= 1
        entry.request.unscheduled -= 1
        if entry.request.unscheduled == 0:
            self.requests -= 1
        return entry

    def _drop_settled(self) -> None:
        """Forget texts whose request is already answered (cancelled, timed out, or failed)."""
        for key in list(self._buckets):
            queue = self._buckets[key]
            while queue and queue[0].request.future.done():
                self._pop(queue)
            if not queue:
                del self._buckets[key]

    def oldest_wait(self, now: float) -> float:
        """Seconds the oldest waiting text has waited (0 when none wait)."""
        self._drop_settled()
        heads = [q[0] for q in self._buckets.values()]
        return now - min(e.request.submitted for e in heads) if heads else 0.0

    def full_batch_waiting(self) -> bool:
        """Whether the oldest text's bucket already holds a batch that reaches a limit."""
        self._drop_settled()
        if not self._buckets:
            return False
        queue = self._buckets[min(self._buckets, key=lambda k: self._buckets[k][0].order)]
        longest = max(e.length for e in itertools.islice(queue, self.max_texts))
        return len(queue) >= self.max_texts or bool(self.max_tokens and (len(queue) + 1) * longest > self.max_tokens)

    def take(self) -> list[Entry]:
        """The next batch: from the bucket of the oldest waiting text, oldest first, within both limits."""
        self._drop_settled()
        if not self._buckets:
            return []
        key = min(self._buckets, key=lambda k: self._buckets[k][0].order)
        queue, batch, longest = self._buckets[key], [], 0
        while queue and len(batch) < self.max_texts:
            head = queue[0]
            if head.request.future.done():
                self._pop(queue)
                continue
            wider = max(longest, head.length)
            if batch and self.max_tokens and wider * (len(batch) + 1) > self.max_tokens:
                break
            batch.append(self._pop(queue))
            longest = wider
        if not queue:
            del self._buckets[key]
        return batch

    def clear(self) -> list[Request]:
        """Remove everything; returns the requests that were waiting."""
        waiting = {id(e.request): e.request for q in self._buckets.values() for e in q}
        self._buckets.clear()
        self.texts = self.requests = 0
        return list(waiting.values())


@dataclass
class BatchStats:
    requests: int = 0
    texts: int = 0
    batches: int = 0
    tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "texts": self.texts, "batches": self.batches, "tokens": self.tokens}


BatchObserver = Callable[[int, int, int, list], None]   # (texts, tokens, padded tokens, queue waits in s)


def settle(future: Future, result=None, error: BaseException | None = None) -> None:
    """Answer a future unless its caller already gave up on it (cancelled): that must never raise."""
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:   # cancelled between the check and the answer
        pass


class MicroBatcher:
    """Runs ``logits_fn(list_of_id_lists) -> np.ndarray`` on batches packed across requests by one worker."""

    def __init__(self, logits_fn, max_batch_size: int = 32, max_wait_ms: float = 0.0, max_queue: int = 256,
                 enabled: bool = True, max_batch_tokens: int = 0, observer: BatchObserver | None = None):
        self._logits_fn = logits_fn
        self.max_batch_size, self.max_batch_tokens = max_batch_size, max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.enabled = enabled
        self.observer = observer
        self.stats = BatchStats()
        self._packer = TokenPacker(max_batch_tokens, max_batch_size, per_request=not enabled)
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="m3cls-batcher", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running (False after close() or if it died)."""
        return self._thread.is_alive()

    @property
    def queue_depth(self) -> int:
        """Requests with texts waiting for the model."""
        return self._packer.requests

    @property
    def queued_texts(self) -> int:
        return self._packer.texts

    def submit(self, ids: Sequence[Sequence[int]]) -> Future:
        """Queue one request's token id lists; the future resolves to their logits (one row per text)."""
        request = Request(ids)
        if not ids:
            request.future.set_result(np.empty((0, 0), dtype=np.float32))
            return request.future
        with self._cond:
            if self._closing or not self._thread.is_alive():
                raise BatcherClosed("the batching worker is not running")
            if self._packer.requests >= self.max_queue:
                raise QueueFull
            self._packer.add(request)
            self._cond.notify()
        return request.future

    def stop_waiting(self) -> None:
        """Run what is queued without waiting to fill batches (``max_wait_ms`` becomes 0), e.g. when draining."""
        with self._cond:
            self.max_wait = 0.0
            self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Stop: requests still waiting are answered with BatcherClosed at once (this never blocks on a full
        queue); the batch already running may finish within ``timeout`` seconds."""
        with self._cond:
            self._closing = True
            waiting = self._packer.clear()
            self._cond.notify_all()
        for request in waiting:
            settle(request.future, error=BatcherClosed("the server is shutting down"))
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=timeout)

    def _next_batch(self) -> list[Entry] | None:
        """Wait for work; None means stop. Holds the condition only while waiting or packing."""
        with self._cond:
            while not self._closing and not self._packer:
                self._cond.wait()
            if self._closing:
                return None
            if self.max_wait > 0 and self.enabled:
                while not self._closing and self._packer and not self._packer.full_batch_waiting():
                    left = self.max_wait - self._packer.oldest_wait(time.monotonic())
                    if left <= 0:
                        break
                    self._cond.wait(timeout=left)
            return self._packer.take()

    def _run(self) -> None:
        batch: list[Entry] | None = []
        try:
            while (batch := self._next_batch()) is not None:
                if batch:
                    self._run_batch(batch)
        except BaseException:
            logger.critical("the batching worker stopped; /health now answers 503", exc_info=True)
            raise
        finally:
            with self._cond:   # however the worker ends, nobody is left waiting for it
                self._closing = True
                waiting = self._packer.clear() + [entry.request for entry in batch or []]
            for request in waiting:
                settle(request.future, error=BatcherClosed("the batching worker stopped"))

    def _run_batch(self, batch: list[Entry]) -> None:
        started = time.monotonic()
        ids = [entry.request.ids[entry.row] for entry in batch]
        try:
            logits = np.asarray(self._logits_fn(ids))
        except Exception as e:  # the model failed: every request in the batch learns why; the worker goes on
            logger.exception("batch of %d texts failed", len(batch))
            for entry in batch:
                settle(entry.request.future, error=e)
            return
        answered = 0
        for entry, row in zip(batch, logits):
            request = entry.request
            if request.logits is None:
                request.logits = np.empty((len(request.ids), logits.shape[1]), dtype=logits.dtype)
            request.logits[entry.row] = row
            request.remaining -= 1
            if request.remaining == 0:
                settle(request.future, request.logits)
                answered += 1
        tokens = sum(len(x) for x in ids)
        padded = len(ids) * max(len(x) for x in ids)
        with self.stats.lock:
            self.stats.batches += 1
            self.stats.requests += answered
            self.stats.texts += len(batch)
            self.stats.tokens += tokens
        if self.observer is not None:
            try:
                self.observer(len(batch), tokens, padded, [started - e.request.submitted for e in batch])
            except Exception:  # metrics must never stop the worker
                logger.exception("batch observer failed")
