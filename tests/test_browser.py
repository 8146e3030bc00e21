"""End to end in a real browser: headless Chromium opens the page `monitor serve` serves, runs a
search on the flagged items and sees the flagged item.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them) and selenium; skips
with the reason when one is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from monitor import serve as serving
from tests.analyst_helpers import (
    Built,
    analyst_fixture,
    free_port,
    item_id,
    monitor_command,
    wait_for_http,
)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install -e '.[test]')")

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path) -> Iterator[object]:
    if not CHROMIUM or not DRIVER:
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(apt-get install chromium chromium-driver; .ci/run does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER),
                                  options=options)
    except WebDriverException as exc:
        pytest.skip(f"headless Chromium could not start here: {exc.msg}")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(tmp_path_factory, tmp_path) -> Iterator[tuple[str, Built]]:
    built = analyst_fixture(tmp_path_factory, tmp_path)
    port = free_port()
    process = subprocess.Popen(
        monitor_command("serve", "--config", str(built.config_path), "--port", str(port)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/-/versions.json", process)
        yield base, built
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_search_flagged_items_in_the_browser(browser, served):
    base, built = served
    db = serving.database_name(built.db_path)
    browser.get(f"{base}/{db}/flagged_items")
    assert "flagged_items" in browser.title
    # The shipped metadata describes the view on its page.
    assert "Items the current model flags as successor-market chatter" in browser.page_source
    wait = WebDriverWait(browser, 20)
    # Every flagged item is listed before the search, the Kraken story among them.
    table = wait.until(expected_conditions.presence_of_element_located(
        (By.CSS_SELECTOR, "table.rows-and-columns")))
    assert "Kraken takes over as the new Hydra" in table.text

    box = browser.find_element(By.CSS_SELECTOR, "input[name='_search']")
    box.clear()
    box.send_keys("Zorblax")
    box.submit()
    wait.until(expected_conditions.url_contains("_search=Zorblax"))
    table = wait.until(expected_conditions.presence_of_element_located(
        (By.CSS_SELECTOR, "table.rows-and-columns")))
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 1
    assert "Vendors move to Zorblax Market after the Nemesis takedown" in rows[0].text
    assert item_id("zorblax") in rows[0].text
    assert "Kraken takes over" not in table.text
