"""Load the rendered site in headless Chromium with the network blocked, as a reader would.

The site must be self-contained: KaTeX and plotly.js are served from ``_site/vendor/``
(``scripts/vendor_assets.py``), so with every host but this machine unreachable, maths is
typeset, figures are drawn, images load, the console stays clean, and site search works.

Needs Quarto (for the render, shared with ``test_render.py``), Debian's ``chromium`` and
``chromium-driver`` (``apt-get install chromium chromium-driver``) and selenium; skipped with the
reason where one is missing. Selenium is given the driver's path, so it never downloads a browser.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from conftest import quarto_command

import os

# Debian's chromium here; the GitHub runner's preinstalled Chrome and driver there (CHROMEWEBDRIVER).
CHROMIUM = os.environ.get("CHROME_BIN") or shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = (shutil.which("chromedriver")
          or (str(Path(os.environ["CHROMEWEBDRIVER"]) / "chromedriver") if os.environ.get("CHROMEWEBDRIVER") else None))
try:
    import selenium  # noqa: F401
except ImportError:  # pragma: no cover - pinned in requirements.txt
    selenium = None

pytestmark = [
    pytest.mark.render,
    pytest.mark.skipif(quarto_command() is None, reason="quarto is not on PATH (the site must be rendered first)"),
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="Chromium and its driver are not installed: apt-get install chromium chromium-driver"),
    pytest.mark.skipif(selenium is None, reason="selenium is not installed (pinned in requirements.txt)"),
]

PAGES = {
    "home": "index.html",
    "benchmarks": "benchmarks.html",
    "curriculum": "curriculum.html",
    "about": "about.html",
    "daily log": "log.html",
    "maths-heavy day": "daily/day-003-softmax-logsumexp-cross-entropy/index.html",
    "plotly day": "daily/day-025-causal-self-attention/index.html",
    "checks day": "daily/day-028-sampling/index.html",
    "post": "posts/2026-09-18-gpt-from-scratch-on-a-cpu/index.html",
    "API reference": "reference/index.html",
}

# Inspect the loaded page: maths spans, plotly figures, images and error markers.
INSPECT = """
const math = Array.from(document.querySelectorAll('span.math'));
const plots = Array.from(document.querySelectorAll('.js-plotly-plot, .plotly-graph-div'));
const imgs = Array.from(document.querySelectorAll('main img, #quarto-content img'));
return {
  math: math.length,
  typeset: math.filter(s => s.querySelector('.katex')).length,
  katexErrors: document.querySelectorAll('.katex-error').length,
  plots: plots.length,
  drawn: plots.filter(p => p.querySelector('svg.main-svg')).length,
  images: imgs.length,
  broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  failedChecks: Array.from(document.querySelectorAll('.cell-output, .cell-output-display'))
    .filter(o => o.innerText.includes('❌')).length,
  overflow: imgs.filter(i => { const box = i.closest('main') || document.body;
    return i.getBoundingClientRect().right > box.getBoundingClientRect().right + 2; }).map(i => i.getAttribute('src')),
  title: document.title,
};
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server(rendered_site):
    project, result = rendered_site
    assert result.returncode == 0, f"quarto render failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    site = project / "_site"
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", site
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                # The network is blocked: every host name but this machine's fails to resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _load(browser, url: str) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    # Lazy images below the fold would never load in a window nobody scrolls: load them all, then wait.
    browser.execute_script("document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; });")
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(
        "return Array.from(document.images).every(i => i.complete)"), message="images did not finish loading")
    # KaTeX and plotly render after load; wait until every maths span and figure is done (or time out and report).
    WebDriverWait(browser, 20).until(lambda d: (lambda r: r["typeset"] + r["katexErrors"] >= r["math"] and r["drawn"] >= r["plots"])(
        d.execute_script(INSPECT)), message="maths or figures did not finish rendering")
    return browser.execute_script(INSPECT)


ROOT = Path(__file__).resolve().parent.parent
# Every day and post too: a maths typo (KaTeX error) or a missing figure can hide on any page.
for _page in sorted(ROOT.glob("daily/day-*/index.qmd")) + sorted(ROOT.glob("posts/*/index.qmd")):
    _rel = _page.relative_to(ROOT).with_suffix(".html").as_posix()
    if _rel not in PAGES.values():
        PAGES[_page.parent.name] = _rel


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_offline_in_a_browser(server, browser, name):
    base, site = server
    path = PAGES[name]
    assert (site / path).is_file(), f"{path} was not rendered"
    browser.get_log("browser")  # drop messages left over from the previous page
    try:
        seen = _load(browser, f"{base}/{path}")
    finally:
        logs = browser.get_log("browser")
    errors = [entry["message"] for entry in logs if entry["level"] == "SEVERE"]
    assert not errors, f"{name} ({path}): console errors with the network blocked:\n" + "\n".join(errors[:10])
    assert seen["katexErrors"] == 0, f"{name}: {seen['katexErrors']} maths spans failed to typeset"
    assert seen["typeset"] == seen["math"], f"{name}: {seen['math'] - seen['typeset']} of {seen['math']} maths spans are raw TeX"
    assert seen["drawn"] == seen["plots"], f"{name}: {seen['plots'] - seen['drawn']} plotly figures are blank"
    assert not seen["broken"], f"{name}: images that did not load: {seen['broken'][:5]}"
    assert seen["failedChecks"] == 0, f"{name}: the page shows a failed check (❌)"
    assert not seen["overflow"], f"{name}: figures wider than the text column: {seen['overflow'][:3]}"
    if name == "maths-heavy day":
        assert seen["math"] >= 10 and seen["images"] >= 1, seen
    if name == "plotly day":
        assert seen["plots"] >= 1, f"{name}: no plotly figure found"


def test_site_search_finds_a_day(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = server
    browser.get(f"{base}/index.html")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#quarto-search .aa-DetachedSearchButton, #quarto-search button"))
    browser.find_element(By.CSS_SELECTOR, "#quarto-search .aa-DetachedSearchButton, #quarto-search button").click()
    field = WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "input.aa-Input"))
    field.send_keys("logsumexp")
    hits = WebDriverWait(browser, 15).until(
        lambda d: [a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, ".aa-Item a, a.search-result-link") if a.get_attribute("href")],
        message="site search returned no results for 'logsumexp'")
    assert any("/daily/day-003-" in h for h in hits), f"search for 'logsumexp' did not return Day 3: {hits[:5]}"
