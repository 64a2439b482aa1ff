"""serve's request limits at the exact boundary: ``max_texts`` texts and a text of exactly ``max_chars``
characters are served; one more text or one more character is a 413."""

import httpx
import pytest
from test_serving import start

MAX_TEXTS, MAX_CHARS = 8, 500


@pytest.fixture(scope="module")
def server(trained_xlmr):
    with start(trained_xlmr, max_texts=MAX_TEXTS, max_chars=MAX_CHARS) as live:
        yield live


def _post(server, texts: list[str]) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json={"texts": texts}, timeout=60)


def test_max_texts_is_served_and_one_more_is_413(server):
    at = _post(server, [f"delve text {i}" for i in range(MAX_TEXTS)])
    assert at.status_code == 200 and len(at.json()["predictions"]) == MAX_TEXTS
    over = _post(server, [f"delve text {i}" for i in range(MAX_TEXTS + 1)])
    assert over.status_code == 413
    assert f"{MAX_TEXTS + 1} texts in one request; at most {MAX_TEXTS}" in over.json()["error"]


def test_a_text_of_max_chars_is_served_and_one_more_character_is_413(server):
    text = ("lol yeah " * MAX_CHARS)[:MAX_CHARS]
    assert len(text) == MAX_CHARS and text.strip()
    at = _post(server, ["short", text])
    assert at.status_code == 200 and len(at.json()["predictions"]) == 2
    over = _post(server, ["short", text + "x"])
    assert over.status_code == 413
    assert f"texts[1] has {MAX_CHARS + 1} characters; at most {MAX_CHARS}" in over.json()["error"]
