#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""score_html_check.py - the `glm4v score --html` page in a real headless browser (selenium + chromium): it loads
from a file:// URL with no console errors, shows every case's text and plot, and a screenshot is saved.

    python3 tests/score_html_check.py REPORT.html SCREENSHOT.png

Prints TAP-style "ok - ..." lines; prints "# skip ..." and exits 0 when selenium or chromium is not installed.
"""
import os
import shutil
import sys


def main():
    page, shot = os.path.abspath(sys.argv[1]), sys.argv[2]
    try:
        from selenium import webdriver
        from selenium.webdriver.common.by import By
    except ImportError:
        print("# skip - the HTML page in a browser: selenium is not installed (pip install selenium)")
        return 0
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_bin = shutil.which("chromedriver")
    if not browser or not driver_bin:
        print("# skip - the HTML page in a browser: chromium / chromium-driver not installed")
        return 0
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opt = Options()
    opt.binary_location = browser
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,1400"):
        opt.add_argument(a)
    opt.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        d = webdriver.Chrome(service=Service(driver_bin), options=opt)
    except Exception as e:  # a browser that cannot start here (no display libraries, ...) is not the page's fault
        print(f"# skip - the HTML page in a browser: chromium did not start ({str(e).splitlines()[0][:120]})")
        return 0
    ok = True

    def check(cond, msg):
        nonlocal ok
        ok &= bool(cond)
        print(("ok - " if cond else "not ok - ") + msg)
    try:
        d.get("file://" + page)
        check(d.title == "glm4v score", "the page loads (title 'glm4v score')")
        sections = d.find_elements(By.CSS_SELECTOR, "section")
        plots = d.find_elements(By.CSS_SELECTOR, "svg.plot polyline")
        check(len(sections) > 0 and len(plots) > 0, f"{len(sections)} case sections, {len(plots)} plotted series")
        spans = d.find_elements(By.CSS_SELECTOR, ".text span")
        check(len(spans) > 0 and spans[0].size["width"] > 0, f"{len(spans)} coloured tokens rendered")
        # the page has no script and no element that loads or runs anything: case text (ids, errors, tokens) that
        # holds markup stays text
        bad = d.execute_script("return Array.from(document.querySelectorAll('script,img,iframe,object,embed,link,a:not([href^=\"#\"])')).length"
                               " + Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length")
        check(bad == 0 and d.title == "glm4v score", f"no script, external element or on* handler in the DOM ({bad})")
        errors = [l for l in d.get_log("browser") if l.get("level") in ("SEVERE", "ERROR")]
        check(not errors, "no console errors" + (": " + "; ".join(e["message"][:100] for e in errors) if errors else ""))
        os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
        check(d.save_screenshot(shot) and os.path.getsize(shot) > 1000, f"screenshot saved to {shot}")
    finally:
        d.quit()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
