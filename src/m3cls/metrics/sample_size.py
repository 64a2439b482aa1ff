"""How many scored texts make a score mean something: the one threshold and wording that training's log, the
training report and evaluate's report share (issue 23).

Example::

    >>> too_few(3, "validation")[:42]
    'validation has only 3 texts, so its scores'
    >>> too_few(30, "validation") is None
    True
"""

from __future__ import annotations

#: fewer scored texts than this, and the scores mean little
MIN_SCORED = 30


def too_few(count: int, what: str, fix: str = "") -> str | None:
    """A warning when ``what`` (validation, the evaluated file) holds fewer than :data:`MIN_SCORED` texts;
    ``fix`` (starting with its own separator) says what to do."""
    if count >= MIN_SCORED:
        return None
    step = 100.0 / max(count, 1)
    return f"{what} has only {count} texts, so its scores mean little (one text moves accuracy by {step:.0f} points)" \
           + fix
