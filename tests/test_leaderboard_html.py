"""The HTML leaderboard in a real headless browser (Debian's chromium + chromedriver).

Checks what a reader relies on: the page loads from a file with no network,
every row is shown, clicking a header reorders the rows, and every embedded
plot decodes (``naturalWidth > 0``). Skipped, with the reason, when chromium,
chromedriver or selenium is missing; CI installs them
(``apt-get install -y chromium chromium-driver``) and sets
``UNLEARNBENCH_REQUIRE_BROWSER=1``, which makes a missing one a failure instead of a
skip (so CI cannot pass without having run them). Set ``UNLEARNBENCH_SCREENSHOT``
to a path to keep a screenshot of the page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_leaderboard import demo_records, make_store
from unlearnbench.reports.write import write_leaderboards

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)

REQUIRE_BROWSER = os.environ.get("UNLEARNBENCH_REQUIRE_BROWSER", "") == "1"
"""Set by .ci/run: a missing browser fails these tests instead of skipping them."""
MISSING = (
    "needs Debian's chromium and chromium-driver: run `apt-get install -y chromium "
    "chromium-driver` (as root; .ci/run does) and `pip install -e '.[dev]'` (selenium)"
)
pytestmark = pytest.mark.skipif(
    not REQUIRE_BROWSER and (CHROMIUM is None or CHROMEDRIVER is None), reason=MISSING
)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    with make_store(out, demo_records()) as store:
        write_leaderboards(out, store, "Demo leaderboard", formats=("html",))
    return out / "leaderboard.html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:  # only with UNLEARNBENCH_REQUIRE_BROWSER=1
        pytest.fail(f"UNLEARNBENCH_REQUIRE_BROWSER=1, but this test {MISSING}")
    if REQUIRE_BROWSER:
        from selenium import webdriver
    else:
        webdriver = pytest.importorskip("selenium.webdriver", reason=MISSING)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def column(driver, table_id: str, header: str) -> list[str]:
    """The ``data-v`` values of one column, in displayed order."""
    return driver.execute_script(
        """
        const table = document.getElementById(arguments[0]);
        const heads = Array.from(table.tHead.rows[0].cells).map(th => th.textContent.trim());
        const col = heads.indexOf(arguments[1]);
        if (col < 0) throw new Error("no column " + arguments[1] + " in " + heads);
        return Array.from(table.tBodies[0].rows).map(r => r.cells[col].getAttribute("data-v"));
        """,
        table_id,
        header,
    )


def click_header(driver, table_id: str, header: str) -> None:
    from selenium.webdriver.common.by import By

    for th in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} thead th"):
        if th.text.strip().rstrip("▲▼ ").strip() == header:
            th.click()
            return
    raise AssertionError(f"no header {header!r}")


def open_details(driver) -> None:
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);")


def test_page_shows_rows_sorts_and_renders_plots(browser, page: Path) -> None:
    driver = browser
    driver.get(page.as_uri())
    assert driver.title == "Demo leaderboard"
    open_details(driver)
    methods = column(driver, "leaderboard", "method")
    assert len(methods) == 8  # 2 requests x 4 methods
    assert methods[:4] == ["retrain", "original", "sisa", "fancy"]

    header = "test_accuracy % ↑"
    click_header(driver, "leaderboard", header)
    ascending = [float(v) for v in column(driver, "leaderboard", header)]
    assert ascending == sorted(ascending)
    assert column(driver, "leaderboard", "method")[0] == "sisa"
    click_header(driver, "leaderboard", header)
    descending = [float(v) for v in column(driver, "leaderboard", header)]
    assert descending == sorted(ascending, reverse=True)
    assert column(driver, "leaderboard", "method")[0] == "original"
    click_header(driver, "leaderboard", "#")
    assert column(driver, "leaderboard", "method") == methods

    click_header(driver, "gaps", "avg_gap ↓")
    gaps = column(driver, "gaps", "avg_gap ↓")
    assert len(gaps) == 8
    numbers = [float(v) for v in gaps]
    assert numbers == sorted(numbers)

    widths = driver.execute_script(
        "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0);"
    )
    assert len(widths) == 3 and all(w > 0 for w in widths)
    target = os.environ.get("UNLEARNBENCH_SCREENSHOT")
    if target:
        driver.get(page.as_uri())
        driver.save_screenshot(target)


def top(driver, selector: str) -> float:
    """The page y of the first element matching ``selector`` (details closed: as a reader
    first sees the page)."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "if (!e) throw new Error('nothing matches ' + arguments[0]);"
        "return e.getBoundingClientRect().top + window.scrollY;",
        selector,
    )


def test_headline_first_then_tradeoff_then_details_then_other_plots(browser, page: Path) -> None:
    driver = browser
    driver.get(page.as_uri())
    headline = top(driver, "#headline-0")
    assert headline < top(driver, "#headline-1") < top(driver, "#plot-tradeoff")
    assert top(driver, "#plot-tradeoff") < top(driver, "#details-all")
    assert top(driver, "#details-all") < top(driver, "#plot-roc")
    assert top(driver, "#plot-tradeoff") < top(driver, "#plot-residual_memory")
    # the headline tables are visible, the full table waits behind <details>
    from selenium.webdriver.common.by import By

    assert driver.find_element(By.ID, "headline-0").is_displayed()
    assert not driver.find_element(By.ID, "leaderboard").is_displayed()
    heads = driver.execute_script(
        "return Array.from(document.querySelectorAll('#headline-0 thead th'))"
        ".map(th => th.textContent.trim());"
    )
    assert heads[:2] == ["#", "method"] and "dataset" not in heads
    assert heads.index("test accuracy % ↑") < heads.index("Avg. Gap ↓")
    methods = column(driver, "headline-0", "method")
    assert methods == ["retrain", "original", "fancy", "sisa"]  # then by Avg. Gap


def test_screenshot_writes_a_png_of_the_page(page: Path, tmp_path: Path) -> None:
    from unlearnbench.reports.screenshot import screenshot

    target = screenshot(page, tmp_path / "shot.png", width=800, height=600)
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_leaderboard_command_writes_a_screenshot(tmp_path: Path) -> None:
    from unlearnbench.cli import main

    with make_store(tmp_path, demo_records()):
        pass
    target = tmp_path / "leaderboard.png"
    assert main(["leaderboard", str(tmp_path), "--format", "csv", "--screenshot", str(target)]) == 0
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
