"""Training levers that change how a step runs, never what it computes.

**The word-embedding gradient, kept.** A BERT-family model's input embedding is a ``vocabulary x hidden`` matrix:
250,002 x 1,024 fp32 for BGE-M3, 1 GB. torch's dense backward of an embedding lookup allocates a new matrix of
that size at every micro-batch, fills it with zeros, and adds the batch's rows into it, though a batch touches a
few thousand of the 250,002 rows. On 2 CPU cores, profiled on BGE-M3's shape (batch 4 at 512 tokens,
``benchmarks/profile_steps.py --model bge_m3 --mode train``), that one ``fill_`` took 19.5 % of a training step.

:func:`keep_embedding_gradient` makes the lookup's backward sparse (the touched rows only) and, after autograd has
accumulated it, writes it into one dense buffer kept for the whole run, zeroed in place; the parameter's ``grad``
is that buffer. The optimizer, gradient clipping and accumulation see the same dense gradient as before, with
the same values (tests/test_training_levers.py compares the weights after steps with and without the lever).
"""

from __future__ import annotations

from typing import Callable

import torch

#: below this many rows the fresh matrix is cheap, and the lever is not worth its persistent buffer
MIN_ROWS = 32768


def keep_embedding_gradient(model: torch.nn.Module, min_rows: int | None = None) -> Callable[[], None] | None:
    """Turn the lever on for ``model``'s input embedding; returns a function that turns it off, or None when it
    does not apply (no ``nn.Embedding`` input, frozen embeddings (LoRA), already sparse, or fewer than
    ``min_rows`` rows)."""
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if not isinstance(embedding, torch.nn.Embedding) or embedding.sparse or not embedding.weight.requires_grad \
            or embedding.num_embeddings < (MIN_ROWS if min_rows is None else min_rows):
        return None
    weight = embedding.weight
    kept: list[torch.Tensor] = []

    def densify(param: torch.Tensor) -> None:
        grad = param.grad
        if grad is None or not grad.is_sparse:
            return  # a second micro-batch's rows were added into the dense buffer already
        if not kept:
            kept.append(torch.empty_like(param))
        buffer = kept[0]
        grad = grad.coalesce()
        buffer.zero_()
        buffer.index_add_(0, grad.indices()[0], grad.values())
        param.grad = buffer

    handle = weight.register_post_accumulate_grad_hook(densify)
    embedding.sparse = True

    def undo() -> None:  # may be called more than once
        embedding.sparse = False
        handle.remove()
        kept.clear()

    return undo
