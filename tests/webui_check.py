#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# webui_check.py - the chat page of `glm4v serve` in a real browser (Debian's headless Chromium driven by Selenium
# through Debian's chromedriver; nothing is downloaded), run by tests/cli_webui.sh against a server on the tiny
# checkpoint. Checks: the security headers, a self-contained page (no external URL), an image attached and a message
# sent with the answer streamed in (equal to the API's greedy answer), no console errors, stop cancels the request
# (glm4v_slots_busy back to 0), edit and resend, the export read by `glm4v --messages`, fixed answers rendered
# directly (boxes at the right scaled places on the right image, hover highlight, HTML shown as text and never run),
# the page's box parser == boxes.c on every answer of tests/data/boxes_corpus.json, PDF pages (when the server has
# POST /v1/pages), the API-key prompt. Saves screenshots to OUT_DIR.
# usage: webui_check.py URL KEY_URL OUT_DIR IMAGE CORPUS_C_JSON GLM4V MODEL
import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

URL, KEY_URL, OUT, IMAGE, C_JSON, GLM4V, MODEL = sys.argv[1:8]
signal.signal(signal.SIGTERM, lambda *a: sys.exit("# webui_check.py: stopped by SIGTERM (timeout)"))  # quits the browser
URL = URL.rstrip("/") + "/"
ok_n = fail_n = 0


def ok(cond, msg):
    global ok_n, fail_n
    print(("ok - " if cond else "not ok - ") + msg, flush=True)
    ok_n += bool(cond)
    fail_n += not cond


def http(url, body=None, timeout=30, key=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def metric(name):
    st, _, b = http(URL + "metrics", timeout=10)
    m = re.search(r"^%s (\S+)$" % name, b.decode(), re.M)
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------- HTTP: headers, self-contained files
st, h, page = http(URL)
csp = h.get("Content-Security-Policy", "")
ok(st == 200 and h.get("Content-Type", "").startswith("text/html"), "GET / is the page (text/html)")
ok("default-src 'self'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
   and "unsafe-inline" not in csp and "unsafe-eval" not in csp, "a strict Content-Security-Policy: %s" % csp)
ok(h.get("X-Content-Type-Options") == "nosniff", "X-Content-Type-Options: nosniff")
files = {"index.html": page.decode()}
for f, ctype in (("app.js", "text/javascript"), ("boxes.js", "text/javascript"), ("style.css", "text/css"),
                 ("favicon.svg", "image/svg+xml")):
    st, h, b = http(URL + f)
    files[f] = b.decode()
    ok(st == 200 and h.get("Content-Type", "").startswith(ctype) and h.get("X-Content-Type-Options") == "nosniff",
       "%s served as %s with nosniff" % (f, ctype))
html = files["index.html"]
refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html) + re.findall(r"url\(([^)]*)\)", files["style.css"])
ok(refs and all(not re.match(r"^(?:[a-z][a-z0-9+.-]*:|//|/)", r, re.I) for r in refs),
   "the page references only relative URLs (works under a path prefix): %s" % refs)
ok(not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) and not re.search(r"\son[a-z]+\s*=", html),
   "no inline script or event handler in index.html")
js = files["app.js"] + files["boxes.js"]
ok(not re.search(r"\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function", js),
   "the scripts never insert HTML or evaluate strings")
fetches = re.findall(r'fetch\("([^"]*)"', js)
ok(fetches and all(not f.startswith("/") and "://" not in f for f in fetches), "fetch URLs are relative: %s" % fetches)
ok(http(URL + "v1/nothing")[0] == 404, "unknown paths stay 404")

# ---------------------------------------------------------------- the browser
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    print("# selenium is not installed (pip install selenium): browser checks skipped")
    sys.exit(1 if fail_n else 0)

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
          "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync",
          "--disable-component-update", "--disable-default-apps"):
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
drv = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)
drv.set_page_load_timeout(30)
drv.set_script_timeout(30)
W = lambda t=30: WebDriverWait(drv, t, poll_frequency=0.1)


def js_(s, *a):
    return drv.execute_script(s, *a)


def console_errors():
    return [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


try:
    drv.get(URL)
    W().until(lambda d: d.find_element(By.ID, "model-name").text not in ("", "connecting…"))
    ok(drv.find_element(By.ID, "model-name").text == "tiny", "the page loads and shows the model's name")
    for id_ in ("input", "send", "file", "thinking", "new-chat", "export", "open-settings"):
        ok(len(drv.find_elements(By.ID, id_)) == 1, "control #%s present" % id_)
    res = js_("return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])")
    ok(all(r.startswith(URL) for r in res), "every resource the browser loaded comes from the server (%d)" % len(res))

    # ---- attach an image, send, the answer streams in; equal to the API's greedy answer for the same messages
    js_("localStorage.setItem('glm4v.settings', JSON.stringify({temperature: '0', max_tokens: '12', thinking: true}))")
    drv.get(URL)
    W().until(lambda d: d.find_element(By.ID, "status").text == "ready")
    drv.find_element(By.ID, "file").send_keys(os.path.abspath(IMAGE))
    W().until(lambda d: js_("return glm4vTest.pendingCount()") == 1)
    ok(len(drv.find_elements(By.CSS_SELECTOR, "#attachments .thumb img")) == 1, "the attached image shows as a thumbnail")
    drv.find_element(By.ID, "input").send_keys("What is in this picture?")
    drv.find_element(By.ID, "send").click()
    W(60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant .stats"))
    conv = js_("return JSON.parse(localStorage.getItem('glm4v.conversations'))[0]")
    a = conv["messages"][1]
    shown = js_("const n = document.querySelector('.msg.assistant'); return n.querySelector('.answer').textContent")
    ok(len(a["content"]) + len(a["reasoning"]) > 0, "the streamed answer appears (%d + %d chars)" % (len(a["reasoning"]), len(a["content"])))
    ok(shown == a["content"] or (not a["content"]), "the answer text is shown as sent")
    msgs = json.loads(js_("return glm4vTest.exportJson()"))
    st, _, b = http(URL + "v1/chat/completions", {"messages": msgs[:-1], "max_tokens": 12, "temperature": 0}, timeout=60)
    ref = json.loads(b)["choices"][0]["message"] if st == 200 else {}
    ok(st == 200 and ref.get("content", "") == a["content"] and (ref.get("reasoning_content") or "") == a["reasoning"],
       "streamed through the page == the API's non-streamed greedy answer")
    stats = drv.find_element(By.CSS_SELECTOR, ".msg.assistant .stats").text
    ok(re.search(r"\d+ tokens", stats) and "tok/s" in stats and "TTFT" in stats, "per-answer tokens, tok/s and TTFT: %r" % stats)
    ok(msgs[0]["role"] == "user" and msgs[0]["content"][0]["type"] == "image_url"
       and msgs[0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,"), "the image is sent as a data: URI")
    errs = console_errors()
    ok(not errs, "no console errors (%s)" % errs[:2])
    drv.save_screenshot(os.path.join(OUT, "webui-chat.png"))

    # ---- the export is read by glm4v --messages
    exp = os.path.join(OUT, "export.messages.json")
    with open(exp, "w") as f:
        f.write(js_("return glm4vTest.exportJson()"))
    r = subprocess.run([GLM4V, "-m", MODEL, "--messages", exp, "-n", "2", "-q"], capture_output=True, timeout=120)
    ok(r.returncode == 0, "the exported messages JSON runs with glm4v --messages (%s)" % r.stderr.decode()[-200:])

    # ---- edit and resend the last message
    drv.find_element(By.CSS_SELECTOR, ".msg.user .edit").click()
    W().until(lambda d: d.find_element(By.ID, "input").get_attribute("value") == "What is in this picture?")
    ok(not drv.find_elements(By.CSS_SELECTOR, ".msg.assistant") and js_("return glm4vTest.pendingCount()") == 1,
       "edit: the last message back in the composer with its image, its answer removed")
    drv.find_element(By.ID, "input").send_keys(" Briefly.")
    drv.find_element(By.ID, "send").click()
    W(60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant .stats"))
    conv = js_("return JSON.parse(localStorage.getItem('glm4v.conversations'))[0]")
    ok(len(conv["messages"]) == 2 and conv["messages"][0]["content"].endswith("Briefly."), "resent as edited")

    # ---- stop: the request is cancelled and the server frees its slot
    js_("glm4vTest.extra = {ignore_eos: true}; localStorage.setItem('glm4v.settings', JSON.stringify({max_tokens: '3000'}))")
    drv.get(URL)
    W().until(lambda d: d.find_element(By.ID, "status").text == "ready")
    js_("glm4vTest.extra = {ignore_eos: true}")
    cancelled0 = metric("glm4v_requests_cancelled_total")
    drv.find_element(By.ID, "input").send_keys("Tell me a long story.")
    drv.find_element(By.ID, "send").click()
    W(60).until(lambda d: len(js_("const c = glm4vTest.current(); return c ? c.messages[c.messages.length-1].content + c.messages[c.messages.length-1].reasoning : ''")) > 20)
    busy = metric("glm4v_slots_busy")
    ok(busy == 1 and drv.find_element(By.ID, "stop").is_displayed(), "while the answer streams: one busy slot, Stop shown")
    drv.find_element(By.ID, "stop").click()
    t0 = time.time()
    while time.time() - t0 < 15 and metric("glm4v_slots_busy") != 0:
        time.sleep(0.1)
    ok(metric("glm4v_slots_busy") == 0, "stop: glm4v_slots_busy back to 0 in %.1f s" % (time.time() - t0))
    ok(metric("glm4v_requests_cancelled_total") == cancelled0 + 1, "stop: the server counts the request cancelled")
    W().until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant .note"))
    ok(not drv.find_element(By.ID, "stop").is_displayed(), "stop: the page marks the answer stopped")
    errs = console_errors()
    ok(not errs, "no console errors after stop (%s)" % errs[:2])

    # ---- settings and the thinking switch go into the request; drag and drop, paste; a video; storage
    drv.get(URL)
    W().until(lambda d: d.find_element(By.ID, "status").text == "ready")
    drv.find_element(By.ID, "new-chat").click()
    js_("""window.__bodies = []; const f = window.fetch; window.fetch = function (u, o) {
             if (o && o.body) window.__bodies.push([String(u), o.body]); return f.apply(this, arguments); };""")
    drv.find_element(By.ID, "open-settings").click()
    for id_, v in (("set-system", "You are terse."), ("set-temperature", "0.5"), ("set-top-p", "0.9"), ("set-max-tokens", "3")):
        e = drv.find_element(By.ID, id_)
        e.clear()
        e.send_keys(v)
    drv.find_element(By.CSS_SELECTOR, "#settings-form button[value=ok]").click()
    drv.find_element(By.ID, "thinking").click()  # off
    png = "Uint8Array.from(atob(arguments[0].split(',')[1]), c => c.charCodeAt(0))"
    js_("const dt = new DataTransfer(); dt.items.add(new File([" + png + "], 'dropped.png', {type: 'image/png'}));"
        "document.getElementById('messages').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));",
        "data:image/png;base64," + base64.b64encode(open(IMAGE, "rb").read()).decode())
    js_("const dt = new DataTransfer(); dt.items.add(new File([" + png + "], 'pasted.png', {type: 'image/png'}));"
        "document.getElementById('input').dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true}));",
        "data:image/png;base64," + base64.b64encode(open(IMAGE, "rb").read()).decode())
    W().until(lambda d: js_("return glm4vTest.pendingCount()") == 2)
    ok(drv.find_element(By.ID, "attachments").text.count(".png") == 2, "an image dropped and one pasted are attached")
    drv.find_element(By.ID, "input").send_keys("Two pictures.\n")
    W(60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant .stats"))
    body = json.loads(js_("return window.__bodies.filter(b => b[0] === 'v1/chat/completions').pop()[1]"))
    ok(body.get("stream") is True and body.get("stream_options") == {"include_usage": True},
       "the request streams with stream_options.include_usage")
    ok(body.get("chat_template_kwargs") == {"enable_thinking": False}, "the thinking switch: enable_thinking false")
    ok(body.get("temperature") == 0.5 and body.get("top_p") == 0.9 and body.get("max_tokens") == 3
       and body["messages"][0] == {"role": "system", "content": "You are terse."}, "temperature, top-p, max tokens, system prompt sent")
    ok([p["type"] for p in body["messages"][1]["content"]] == ["image_url", "image_url", "text"], "both images sent, then the text")
    # a video: sent as a video_url data: URI (the server decodes it with ffmpeg, or says why it cannot)
    js_("glm4vTest.attach([new File([new Uint8Array([0,0,0,32,102,116,121,112,105,115,111,109])], 'clip.mp4', {type: 'video/mp4'})])")
    W().until(lambda d: d.find_elements(By.CSS_SELECTOR, "#attachments video"))
    drv.find_element(By.ID, "input").send_keys("What happens?\n")
    W(60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 2 and
                not d.find_element(By.ID, "stop").is_displayed())
    body = json.loads(js_("return window.__bodies.filter(b => b[0] === 'v1/chat/completions').pop()[1]"))
    vp = body["messages"][-1]["content"][0]
    err = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .error")
    ok(vp["type"] == "video_url" and vp["video_url"]["url"].startswith("data:video/mp4;base64,") and err and
       ("ffmpeg" in err[-1].text or "video" in err[-1].text), "a video is sent as a video_url data: URI; the server's error is shown (%s)" %
       (err[-1].text if err else "no error"))
    errs = [e for e in console_errors() if "400 (Bad Request)" not in e.get("message", "")]
    ok(not errs, "no console errors but the video's 400 (%s)" % errs[:2])
    n_before = len(js_("return JSON.parse(localStorage.getItem('glm4v.conversations'))"))
    drv.get(URL)
    W().until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant"))
    ok(len(drv.find_elements(By.CSS_SELECTOR, "#conv-list .conv")) == n_before and
       drv.find_elements(By.CSS_SELECTOR, ".msg.user .thumb img"), "conversations survive a reload (localStorage), images included")
    drv.find_element(By.ID, "new-chat").click()
    ok(not drv.find_elements(By.CSS_SELECTOR, ".msg") and drv.find_element(By.ID, "empty").is_displayed(), "New conversation: an empty page")
    js_("localStorage.removeItem('glm4v.settings')")

    # ---- behind a reverse proxy under a path prefix (a small streaming proxy: /glm/X -> server /X)
    import socketserver
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Proxy(BaseHTTPRequestHandler):
        def do_any(self):
            if not self.path.startswith("/glm/"):
                self.send_error(404)
                return
            n = int(self.headers.get("Content-Length") or 0)
            req = urllib.request.Request(URL + self.path[5:], data=self.rfile.read(n) if n else None, method=self.command)
            for k in ("Content-Type", "Authorization"):
                if self.headers.get(k):
                    req.add_header(k, self.headers[k])
            try:
                r = urllib.request.urlopen(req, timeout=60)
            except urllib.error.HTTPError as e:
                r = e
            self.send_response(r.status if hasattr(r, "status") else r.code)
            for k, v in r.headers.items():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            while True:
                chunk = r.read1(65536) if hasattr(r, "read1") else r.read()
                if not chunk:
                    break
                self.wfile.write(chunk)
                self.wfile.flush()
        do_GET = do_POST = do_HEAD = do_any
        def log_message(self, *a):
            pass
    class TS(socketserver.ThreadingMixIn, HTTPServer):
        daemon_threads = True
    proxy = TS(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    PURL = "http://127.0.0.1:%d/glm/" % proxy.server_address[1]
    drv.get(PURL)
    W().until(lambda d: d.find_element(By.ID, "status").text == "ready")
    drv.find_element(By.ID, "input").send_keys("Hello through a proxy\n")
    W(60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant .stats"))
    ok(not drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .error") and
       drv.find_element(By.ID, "model-name").text == "tiny", "under a path prefix behind a proxy: the page loads and answers")
    proxy.shutdown()
    js_("localStorage.clear()")
    drv.get(URL)
    W().until(lambda d: d.find_element(By.ID, "status").text == "ready")

    # ---- fixed answers rendered directly: boxes on the right image at the right scaled places
    with open(IMAGE, "rb") as f:
        img1 = "data:image/png;base64," + base64.b64encode(f.read()).decode()
    # a second image of another size: 97x61
    with open(os.path.join(os.path.dirname(IMAGE), "synth_97x61.png"), "rb") as f:
        img2 = "data:image/png;base64," + base64.b64encode(f.read()).decode()
    text = ("The dog <|begin_of_box|>[[100,200,500,800]]<|end_of_box|> and the ball "
            "<|begin_of_box|>[[600,100,900,400],[50,50]]<|end_of_box|>, and <|begin_of_box|>[[1,2,3]]<|end_of_box|>.")
    n = js_("return glm4vTest.renderAnswer(arguments[0], [arguments[1], arguments[2]])", text, img1, img2)
    W().until(lambda d: d.find_elements(By.CSS_SELECTOR, "figure.boxed[data-ready='1']"))
    figs = drv.find_elements(By.CSS_SELECTOR, "figure.boxed")
    ok(n == 3 and len(figs) == 1, "3 boxes, drawn on one image (the last of the user turn)")
    im = figs[0].find_element(By.TAG_NAME, "img")
    ok(im.get_attribute("src") == img2, "the boxes are on the last image of the turn (97x61)")
    geo = js_("""const im = arguments[0], r = im.getBoundingClientRect();
        return {x: r.left, y: r.top, w: r.width, h: r.height, nw: im.naturalWidth, nh: im.naturalHeight,
                boxes: Array.from(document.querySelectorAll('.overlay .box')).map(b => {
                  const q = b.getBoundingClientRect(); return {k: +b.dataset.box, x: q.left, y: q.top, w: q.width,
                  h: q.height, point: b.classList.contains('point'), label: b.textContent}; })};""", im)
    ok(geo["nw"] == 97 and geo["nh"] == 61 and geo["w"] > 97 * 2, "the image is shown scaled up (%.0f x %.0f)" % (geo["w"], geo["h"]))

    def px(v, size):  # box_to_pixels
        x = v * size / 1000.0
        r = int(x + 0.5) if x >= 0 else -int(-x + 0.5)
        return min(max(r, 0), size - 1)

    want = [(100, 200, 500, 800, False), (600, 100, 900, 400, False), (50, 50, 50, 50, True)]
    good = len(geo["boxes"]) == 3
    for b in geo["boxes"]:
        x1, y1, x2, y2, point = want[b["k"]]
        sx, sy = geo["w"] / geo["nw"], geo["h"] / geo["nh"]
        ex, ey = geo["x"] + px(x1, 97) * sx, geo["y"] + px(y1, 61) * sy
        if point:
            cx, cy = b["x"] + b["w"] / 2, b["y"] + b["h"] / 2
            good &= abs(cx - (ex + 0.5 * sx)) < 1.5 and abs(cy - (ey + 0.5 * sy)) < 1.5 and b["point"]
        else:
            ew, eh = (px(x2, 97) - px(x1, 97) + 1) * sx, (px(y2, 61) - px(y1, 61) + 1) * sy
            good &= abs(b["x"] - ex) < 1.5 and abs(b["y"] - ey) < 1.5 and abs(b["w"] - ew) < 1.5 and abs(b["h"] - eh) < 1.5
        good &= b["label"] == str(b["k"] + 1)
        if not good:
            print("#   box %s: %s" % (b["k"], b))
    ok(good, "each box at its scaled pixel rectangle (boxes.c's rounding), labelled 1..3")
    answer = drv.find_element(By.CSS_SELECTOR, ".msg.assistant .answer")
    ok("<|begin_of_box|>[[1,2,3]]<|end_of_box|>" in answer.text, "an unparsable box stays as text")
    refs = drv.find_elements(By.CSS_SELECTOR, ".answer .box-ref")
    ok(len(refs) == 2, "two box references in the text")
    ActionChains(drv).move_to_element(refs[1]).perform()
    hl = js_("return Array.from(document.querySelectorAll('.overlay .box.hl')).map(b => +b.dataset.box).sort()")
    ok(hl == [1, 2], "hovering a box's text highlights its boxes (%s)" % hl)
    ActionChains(drv).move_to_element(drv.find_elements(By.CSS_SELECTOR, ".overlay .box")[0]).perform()
    hl = js_("return Array.from(document.querySelectorAll('.answer .box-tag.hl')).map(b => +b.dataset.box)")
    ok(len(hl) == 1, "hovering a box highlights its number in the text (%s)" % hl)
    ActionChains(drv).move_to_element(drv.find_element(By.ID, "model-name")).perform()
    # a window resize rescales the overlay with the image
    drv.set_window_size(800, 900)
    time.sleep(0.3)
    g2 = js_("const r = arguments[0].getBoundingClientRect(), b = document.querySelector('.overlay .box').getBoundingClientRect(); return [r.width, b.width, r.left, b.left]", im)
    ok(abs(g2[1] - (px(500, 97) - px(100, 97) + 1) * g2[0] / 97) < 1.5, "the boxes scale with the displayed image")
    drv.set_window_size(1280, 900)

    # boxes on a PDF (the last images of the turn are its pages): on the page the answer names (pdf_box_pages)
    doc = {"name": "report.pdf", "pages": [{"page": p, "width": 97, "height": 61, "url": img2} for p in (3, 4)] +
           [{"page": 5, "width": 200, "height": 150, "url": img1}]}
    js_("glm4vTest.renderAnswer(arguments[0], [arguments[1], arguments[2]])",
        "On page 5 the title <|begin_of_box|>[[10,10,500,200]]<|end_of_box|>, on page 3 <|begin_of_box|>[[1,2,3,4]]<|end_of_box|>"
        " and p. 5 again <|begin_of_box|>[[600,600,700,700]]<|end_of_box|>", img1, doc)
    W().until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "figure.boxed[data-ready='1']")) == 2)
    figs = js_("""return Array.from(document.querySelectorAll('figure.boxed')).map(f => [f.querySelector('figcaption').textContent,
                  Array.from(f.querySelectorAll('.box')).map(b => +b.dataset.box)])""")
    ok(figs == [["report.pdf p. 5", [0, 2]], ["report.pdf p. 3", [1]]],
       "a PDF's boxes are drawn on the pages the answer names (%s)" % figs)

    # ---- model text with HTML is shown as text and runs nothing
    evil = ('<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
            '<b onmouseover="window.__pwned=3">bold</b> <|begin_of_box|>[[1,2,3,4]]<|end_of_box|><svg onload="window.__pwned=4">')
    js_("glm4vTest.renderAnswer(arguments[0], [], arguments[1])", evil, '<img src=y onerror="window.__pwned=5">')
    time.sleep(0.5)
    ans = drv.find_element(By.CSS_SELECTOR, ".msg.assistant .answer")
    ok(js_("return window.__pwned === undefined"), "HTML in the answer runs no script")
    ok("<img src=x onerror=" in ans.text and "<script>" in ans.text, "HTML in the answer is shown as text")
    ok(js_("return document.querySelectorAll('#messages script, #messages img[src=x], #messages img[src=y], #messages svg, #messages b').length") == 0,
       "no element made from model text")
    # a file name with HTML stays text
    js_("""const f = new File([Uint8Array.from(atob(arguments[0].split(',')[1]), c => c.charCodeAt(0))],
           '<img src=z onerror=window.__pwned=6>.png', {type: 'image/png'}); return glm4vTest.attach([f]);""", img1)
    W().until(lambda d: js_("return glm4vTest.pendingCount()") >= 1)
    ok(js_("return window.__pwned === undefined && !document.querySelector('img[src=z]')") and
       "<img src=z" in drv.find_element(By.ID, "attachments").text, "a file name with HTML is shown as text")
    errs = [e for e in console_errors() if "/x" not in e.get("message", "")]
    ok(not errs, "no console errors while rendering fixed answers (%s)" % errs[:2])

    # ---- the page's parser == boxes.c on every answer of the corpus
    with open(C_JSON) as f:
        cres = json.load(f)
    corpus = json.load(open(os.path.join(os.path.dirname(IMAGE), "..", "boxes_corpus.json")))
    bad = []
    for i, (c, want_c) in enumerate(zip(corpus, cres)):
        got = js_("return glm4vTest.parse(arguments[0]).map(b => [b.x1, b.y1, b.x2, b.y2, b.isPoint ? 1 : 0])", c["text"])
        pages = c.get("pages")
        gp = js_("return glm4vTest.boxPages(arguments[0], arguments[1], arguments[2])", c["text"], len(got), pages) if pages else []
        if got != want_c["boxes"] or (pages and gp != want_c["page_of"]):
            bad.append((i, c["note"], got, want_c))
    ok(len(cres) == len(corpus) and not bad, "boxes.js == boxes.c (and pdf_box_pages) on all %d corpus answers %s" % (len(corpus), bad[:2]))

    # ---- PDF pages (POST /v1/pages): thumbnails from the server, the file part sent
    st, _, b = http(URL + "v1/pages", {"file": {"file_data": "data:application/pdf;base64,", "filename": "x.pdf"}})
    pdfs = [os.path.join(root, f) for root, _, fs in os.walk(os.path.join(os.path.dirname(IMAGE), "..", "pdf")) for f in fs if f.endswith(".pdf")]
    if st == 404:
        print("# SKIP PDF attachments: this server has no POST /v1/pages (404)")
    elif not pdfs:
        print("# SKIP PDF attachments: no PDF under tests/data/pdf")
    else:
        drv.get(URL)
        W().until(lambda d: d.find_element(By.ID, "status").text == "ready")
        drv.find_element(By.ID, "new-chat").click()
        pdf = [p for p in pdfs if p.endswith("/doc.pdf")] or sorted(pdfs)
        drv.find_element(By.ID, "file").send_keys(os.path.abspath(pdf[0]))
        W(60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#attachments .pages img") or "PDF" in d.find_element(By.ID, "status").text)
        pages = drv.find_elements(By.CSS_SELECTOR, "#attachments .pages img")
        ok(len(pages) >= 1 and all(p.get_attribute("src").startswith("data:image/png;base64,") for p in pages),
           "a PDF shows its pages as the server rendered them (%d)" % len(pages))
        js_("""window.__bodies = []; const f = window.fetch; window.fetch = function (u, o) {
                 if (o && o.body) window.__bodies.push([String(u), o.body]); return f.apply(this, arguments); };
               glm4vTest.extra = {max_tokens: 4};""")
        drv.find_element(By.ID, "input").send_keys("Summarise the document.\n")
        W(120).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant .stats") or d.find_elements(By.CSS_SELECTOR, ".msg.assistant .error"))
        body = json.loads(js_("return window.__bodies.filter(b => b[0] === 'v1/chat/completions').pop()[1]"))
        part = body["messages"][-1]["content"][0]
        err = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .error")
        ok(part["type"] == "file" and part["file"]["file_data"].startswith("data:application/pdf;base64,") and
           part["file"]["filename"] == os.path.basename(pdf[0]) and not err,
           "the PDF is sent as a file part and answered (%s)" % (err[0].text if err else "no error"))
        ok(len(drv.find_elements(By.CSS_SELECTOR, ".msg.user .pages img")) == len(pages), "the sent message shows the pages")
        drv.save_screenshot(os.path.join(OUT, "webui-pdf.png"))
        js_("glm4vTest.extra = null")

    # ---- the screenshot a person looks at: a fixed answer with boxes and thinking
    drv.set_window_size(1200, 1100)
    drv.get(URL)
    W().until(lambda d: d.find_element(By.ID, "status").text == "ready")
    scene = js_("""const c = document.createElement('canvas'); c.width = 640; c.height = 420;
        const g = c.getContext('2d'), sky = g.createLinearGradient(0, 0, 0, 300);
        sky.addColorStop(0, '#8ec5ff'); sky.addColorStop(1, '#dff0ff'); g.fillStyle = sky; g.fillRect(0, 0, 640, 420);
        g.fillStyle = '#6cbf5a'; g.fillRect(0, 300, 640, 120);
        g.fillStyle = '#ffd23f'; g.beginPath(); g.arc(540, 80, 40, 0, 7); g.fill();
        g.fillStyle = '#b5523b'; g.fillRect(90, 180, 170, 130); g.fillStyle = '#7a2e22';
        g.beginPath(); g.moveTo(75, 185); g.lineTo(175, 110); g.lineTo(275, 185); g.fill();
        g.fillStyle = '#4a3222'; g.fillRect(155, 250, 40, 60);
        g.fillStyle = '#e63946'; g.beginPath(); g.arc(430, 330, 28, 0, 7); g.fill();
        return c.toDataURL('image/png');""")
    js_("glm4vTest.renderAnswer(arguments[0], [arguments[1]], arguments[2], arguments[3])",
        "The house is at <|begin_of_box|>[[117,262,430,738]]<|end_of_box|>, the sun at "
        "<|begin_of_box|>[[781,95,906,286]]<|end_of_box|> and the red ball at <|begin_of_box|>[[628,719,716,857]]<|end_of_box|>.",
        scene, "The user asks for the house, the sun and the ball. The house is on the left, the sun top right, the ball "
        "lies on the grass in front.", "Where are the house, the sun and the ball?")
    js_("document.querySelector('details.think').open = true; const m = document.getElementById('messages'); m.scrollTop = m.scrollHeight")
    W().until(lambda d: d.find_elements(By.CSS_SELECTOR, "figure.boxed[data-ready='1']"))
    drv.save_screenshot(os.path.join(OUT, "webui.png"))
    ok(os.path.getsize(os.path.join(OUT, "webui.png")) > 1000, "screenshot saved to %s" % os.path.join(OUT, "webui.png"))
    drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    drv.save_screenshot(os.path.join(OUT, "webui-dark.png"))
    drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    drv.execute_script("localStorage.clear()")

    # ---- a server with an API key: the static files need none, the page asks once and keeps it
    if KEY_URL != "-":
        KEY_URL = KEY_URL.rstrip("/") + "/"
        ok(http(KEY_URL)[0] == 200 and http(KEY_URL + "app.js")[0] == 200 and http(KEY_URL + "v1/models")[0] == 401,
           "with --api-key: the page's files need no key, /v1/models does")
        drv.get(KEY_URL)
        W().until(lambda d: d.find_element(By.ID, "keydlg").is_displayed())
        drv.find_element(By.ID, "key-input").send_keys("sekrit\n")
        W().until(lambda d: d.find_element(By.ID, "model-name").text == "tiny")
        ok(js_("return localStorage.getItem('glm4v.apiKey')") == "sekrit", "the page asks for the key once and keeps it")
        drv.get(KEY_URL)
        W().until(lambda d: d.find_element(By.ID, "model-name").text == "tiny")
        ok(not drv.find_element(By.ID, "keydlg").is_displayed(), "reloaded: the kept key is used, no prompt")
        js_("localStorage.clear()")
except Exception as e:  # a wait that timed out, an element missing: one failure with its place, not a silent end
    import traceback
    ok(False, "the browser checks stopped: %s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else ""))
    for line in traceback.format_exc().splitlines()[-6:]:
        print("#   " + line)
    try:
        drv.save_screenshot(os.path.join(OUT, "webui-failure.png"))
    except Exception:
        pass
finally:
    drv.quit()

print("# webui: %d passed, %d failed" % (ok_n, fail_n))
sys.exit(1 if fail_n else 0)
