"""A real browser for the end-to-end tests: Debian's Chromium, headless, driven through
chromedriver by Selenium, with screenshots written as test artifacts and axe-core
(node_modules/axe-core, installed by scripts/install-deps) run inside the page.

Each Browser is its own Chromium with its own profile, so two of them are two people."""
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from wrapper import SLOW  # noqa: E402

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("SAMLGW_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SAMLGW_E2E_CHROMEDRIVER", "/usr/bin/chromedriver")

DESKTOP = (1280, 900)
PHONE_WIDTH = 390  # an iPhone 12-15's CSS width
# axe-core impacts that fail a page; minor and moderate ones are recorded only.
FAILING_IMPACTS = ("serious", "critical")


class Browser:
    def __init__(self, name, artifacts):
        self.name = name
        self.artifacts = Path(artifacts)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.profile = tempfile.mkdtemp(prefix="samlgw-e2e-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--no-proxy-server", "--no-first-run", "--disable-extensions",
                    "--disable-background-networking", "--disable-sync",
                    "--password-store=basic", "--lang=en-GB",
                    "--user-data-dir=" + self.profile,
                    "--window-size=%d,%d" % DESKTOP):
            opts.add_argument(arg)
        opts.add_experimental_option("prefs", {"intl.accept_languages": "en-GB,en"})
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.log_path = self.artifacts / ("chromedriver-%s.log" % name)
        service = Service(CHROMEDRIVER, log_path=str(self.log_path))
        try:
            self.driver = webdriver.Chrome(service=service, options=opts)
        except WebDriverException:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(30 * SLOW)
        self.driver.set_script_timeout(60)
        self.a11y = {}

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # ------------------------------------------------------------------ navigation

    @property
    def url(self):
        return self.driver.current_url

    @property
    def title(self):
        return self.driver.title

    def get(self, url):
        self.driver.get(url)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css="main"):
        return self.find(css).text

    def wait_url(self, pred, what, timeout=20 * SLOW):
        """Waits until pred(current URL) holds (a page load after a click); the assertion
        names what was awaited and where the browser is."""
        try:
            WebDriverWait(self.driver, timeout).until(lambda d: pred(d.current_url))
        except Exception:
            raise AssertionError("%s: waited %d s, browser is at %s (%s)\n%s" % (
                what, timeout, self.driver.current_url, self.driver.title,
                self.console()))
        WebDriverWait(self.driver, timeout).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def click(self, css):
        self.find(css).click()

    def click_to(self, css, pred, what, timeout=20 * SLOW, text=None):
        """Clicks what leads to another page (a link, a form's button; with text: the first
        element matching css that shows it) and waits for that page: the old document gone
        (also when the new one has the same URL, as after a POST that redirects back) and
        pred(new URL) true."""
        hits = [e for e in self.find_all(css) if text is None or text in e.text]
        assert hits, "%s: nothing to click (%s, %r) on %s" % (what, css, text, self.url)
        # A mark on the old document's window: gone once another document is loaded.
        # (An element reference of the old document is no good test: chromedriver may
        # answer "no such element" for it, which a wait takes as "not yet".)
        self.driver.execute_script("window.samlgwOldPage = true;")
        hits[0].click()
        try:
            WebDriverWait(self.driver, timeout, poll_frequency=0.1,
                          ignored_exceptions=(WebDriverException,)).until(
                lambda d: d.execute_script("return window.samlgwOldPage !== true && "
                                           "document.readyState === 'complete';"))
        except Exception:
            raise AssertionError("%s: the page did not change in %d s after clicking %s "
                                 "(at %s)\n%s" % (what, timeout, css, self.url, self.console()))
        self.wait_url(pred, what, timeout)

    def fill(self, css, value):
        el = self.find(css)
        el.clear()
        el.send_keys(value)

    def console(self):
        """The browser console since the last call (errors such as blocked scripts)."""
        try:
            return "\n".join("%s %s" % (e["level"], e["message"])
                             for e in self.driver.get_log("browser"))
        except WebDriverException:
            return ""

    # ------------------------------------------------------------------ artifacts

    def set_width(self, width, height=DESKTOP[1]):
        self.driver.set_window_size(width, height)
        # Let the layout settle at the new viewport before measuring it.
        self.driver.execute_script("return document.body.getBoundingClientRect().width")

    def viewport_width(self):
        return self.driver.execute_script("return document.documentElement.clientWidth")

    def overflow(self):
        """How far the page is wider than the viewport (0: no horizontal scrolling), and the
        elements sticking out past its right edge."""
        return self.driver.execute_script("""
            const w = document.documentElement.clientWidth;
            const out = [];
            for (const el of document.querySelectorAll('body *')) {
                const r = el.getBoundingClientRect();
                if (r.width > 0 && r.right > w + 1)
                    out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                             (el.className && typeof el.className === 'string'
                              ? '.' + el.className.split(' ').join('.') : '') +
                             ' right=' + Math.round(r.right));
            }
            return [document.documentElement.scrollWidth - w, out.slice(0, 10)];
        """)

    def screenshot(self, name, full_page=True):
        """Writes NAME.png to the artifacts folder: the whole page (the window is made as
        tall as the document for the shot) and returns its path."""
        path = self.artifacts / (name + ".png")
        size = self.driver.get_window_size()
        if full_page:
            height = self.driver.execute_script(
                "return Math.ceil(document.documentElement.scrollHeight)")
            # window height includes the browser chrome in headless mode too: measure it
            inner = self.driver.execute_script("return window.innerHeight")
            chrome = size["height"] - inner
            self.driver.set_window_size(size["width"], max(height + chrome, 300))
        try:
            self.driver.save_screenshot(str(path))
        finally:
            if full_page:
                self.driver.set_window_size(size["width"], size["height"])
        return path

    # ------------------------------------------------------------------ accessibility

    def axe(self, page):
        """Runs axe-core on the current page (WCAG 2.x A/AA rules and best practices) and
        records the result under page; returns the violations whose impact is serious or
        critical, each as 'rule (impact): help – targets'."""
        if not AXE.is_file():
            raise AssertionError("%s missing: run scripts/install-deps" % AXE)
        self.driver.execute_script(AXE.read_text())
        result = self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ['violations']})
               .then(r => done({violations: r.violations.map(v => ({
                   id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                   targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))}))
               .catch(e => done({error: String(e)}));
        """)
        if "error" in result:
            raise AssertionError("axe-core failed on %s: %s" % (page, result["error"]))
        self.a11y[page] = {"url": self.url, "violations": result["violations"]}
        with open(self.artifacts / ("axe-%s.json" % page), "w") as f:
            json.dump(self.a11y[page], f, indent=2)
        return ["%s (%s): %s – %s" % (v["id"], v["impact"], v["help"], ", ".join(v["targets"]))
                for v in result["violations"] if v["impact"] in FAILING_IMPACTS]
