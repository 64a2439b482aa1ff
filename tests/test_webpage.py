"""The page at / in headless Chromium (selenium + Debian's chromium-driver): type, click, read the bars."""

import shutil

import pytest
from browser import FLAGS, need_chromium
from test_serving import start


def _driver(tmp_path):
    binary = need_chromium()
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        import os

        if os.environ.get("M3CLS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromedriver is required here but not installed (apt-get install chromium-driver)")
        pytest.skip("chromedriver is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def open_page(driver, url: str, shown: str = "GPT"):
    """Load the served page and wait until its label line shows ``shown``; the wait, for the next steps."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{url}/")
    wait = WebDriverWait(driver, 20)
    wait.until(ec.text_to_be_present_in_element((By.ID, "model"), shown))
    return wait


READ_BARS = """return [...document.querySelectorAll('#bars .bar')].map(b => [b.dataset.label,
    parseFloat(b.dataset.probability), b.querySelector('.fill').getBoundingClientRect().width]);"""


def read_bars(driver) -> list:
    """(label, probability, bar width in pixels) for each bar, read in one step (no stale elements)."""
    return driver.execute_script(READ_BARS)


def test_page_classifies_text_and_draws_bars(trained_xlmr, tmp_path):
    from selenium.webdriver.common.by import By

    driver = _driver(tmp_path)
    try:
        with start(trained_xlmr) as live:
            wait = open_page(driver, live.url)
            driver.find_element(By.ID, "text").send_keys("furthermore delve tapestry moreover crucial")
            driver.find_element(By.ID, "classify").click()
            wait.until(lambda d: len(read_bars(d)) == 2)
            labels, probs, widths = zip(*read_bars(driver))
            assert labels[0] == "GPT" and driver.find_element(By.ID, "result").text == "GPT"
            assert abs(sum(probs) - 1) < 1e-6 and probs[0] >= probs[1] and widths[0] >= widths[1] > 0
            # a high temperature flattens the bars
            field = driver.find_element(By.ID, "temperature")
            field.clear()
            field.send_keys("1000")
            driver.find_element(By.ID, "classify").click()
            wait.until(lambda d: (bars := read_bars(d)) and abs(bars[0][1] - 0.5) < 0.01)
    finally:
        driver.quit()


READ_MARKS = """return [...document.querySelectorAll('#explanation mark')].map(m => [m.textContent,
    parseFloat(m.dataset.score), getComputedStyle(m).backgroundColor]);"""


def test_page_shades_the_words_that_decided(marker_xlmr, tmp_path):
    from conftest import MARKER
    from selenium.webdriver.common.by import By

    text = f"the of and {MARKER} to in it"
    driver = _driver(tmp_path)
    try:
        with start(marker_xlmr) as live:
            wait = open_page(driver, live.url)
            driver.find_element(By.ID, "text").send_keys(text)
            driver.find_element(By.ID, "explain").click()
            driver.find_element(By.ID, "classify").click()
            wait.until(lambda d: len(d.execute_script(READ_MARKS)) == len(text.split()))
            marks = driver.execute_script(READ_MARKS)
            assert driver.find_element(By.ID, "explanation").text == text  # the whole text, in order
            assert [m[0] for m in marks] == text.split()
            top = max(marks, key=lambda m: m[1])
            assert top[0] == MARKER and "216, 130, 59" in top[2]  # orange: toward the label
            assert driver.find_element(By.ID, "result").text == "GPT"
    finally:
        driver.quit()
