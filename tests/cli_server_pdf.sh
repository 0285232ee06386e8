#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_server_pdf.sh - PDF documents through `glm4v serve` (messages.c's one media reader, pdf.c's renderer, the same as
# the CLI's): a server on a free port of 127.0.0.1 (TMPDIR an empty folder, checked empty at the end) driven by the
# Python below (standard library only):
#   - OpenAI's file part and a data:application/pdf image_url: the answer and the prompt's token count equal the
#     CLI's on the same PDF and pages (`glm4v -i doc.pdf --pages ...`), the expected values from the CLI, never the
#     server;
#   - POST /v1/pages: the page count, sizes in pixels and points, visual tokens, and PNGs whose decoded pixels equal
#     the page pdftoppm -r DPI -f K -l K -singlefile writes (the PPM the CLI reads); the API key is required;
#   - bad documents (encrypted, damaged, truncated, zero pages, absurd size and shape, thousands of pages, not a PDF,
#     over the visual-token budget, over the context): a 400 naming the part, each within 15 s, and the server keeps
#     answering; a renderer that hangs (--pdf-timeout 2) or crashes: a 400 within the limit, nothing left running;
#   - 8 /v1/pages requests at once (documents render on their own threads): each page as rendered alone;
#   - serve's PDF flags: bad values exit 2 with one line.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
ok() { echo "ok - $*"; }
no() { echo "not ok - $*"; }
if ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then
    echo "# curl or python3 missing: server PDF tests skipped"; exit 0
fi
if ! command -v pdftoppm >/dev/null || ! command -v pdfinfo >/dev/null; then
    echo "# pdftoppm / pdfinfo not installed (Debian package poppler-utils): server PDF tests skipped"; exit 0
fi
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
mkdir -p "$T/tmp" "$T/fake"
M=weights/tiny-glm4v-moe
DOC=tests/data/pdf/doc.pdf

for args in "--max-pages 0" "--pdf-dpi 5000" "--pdf-timeout 0" "--max-visual-tokens -1" "--max-pages 2 --max-pages 3"; do
    # shellcheck disable=SC2086
    timeout 10 "$GLM4V" serve -m $M $args >"$T/o" 2>"$T/e"; rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && ok "serve $args: exit 2, one line" || no "serve $args: rc $rc: $(cat "$T/e")"
done

# start NAME CMD...: a server on a free port (sets PID and URL, tests/server_lib.sh); TMPDIR is $T/tmp (must stay empty)
. tests/server_lib.sh
start() { local name=$1; shift; serve_start "$name" env TMPDIR="$T/tmp" "$@"; }

# the CLI's answers and prompt sizes for the same documents (the expectations)
cli() { # cli NAME ARGS...: answer in $T/NAME.ans, "prompt N tokens" count in $T/NAME.n
    local name=$1; shift
    "$GLM4V" -m $M -p "Read the document." -n 6 --temp 0 "$@" >"$T/$name.ans" 2>"$T/$name.cli" || true
    sed -n 's/^glm4v: prompt \([0-9]*\) tokens.*/\1/p' "$T/$name.cli" >"$T/$name.n"
}
cli p2 -i $DOC --pages 2
cli all -i $DOC
cli d100 -i $DOC --pages 1,3 --dpi 100

start main "$GLM4V" serve -m $M --port 0 --api-key sekrit --ctx-size 4096 --max-body 4194304 --max-pages 8 \
    --max-visual-tokens 3000 --pdf-timeout 10
[ -n "$URL" ] && ok "serve with PDF flags started ($URL)" || { no "serve did not start: $(cat "$T/main.err")"; exit 0; }

timeout 300 python3 - "$URL" "$T" "$DOC" <<'PY'
import base64, http.client, json, os, re, struct, subprocess, sys, threading, time, urllib.parse, zlib
URL, T, DOC = sys.argv[1:4]
u = urllib.parse.urlparse(URL)
AUTH = {"Authorization": "Bearer sekrit", "Content-Type": "application/json"}


def ok(cond, msg):
    print(("ok - " if cond else "not ok - ") + msg, flush=True)
    return cond


def post(path, body, headers=AUTH, timeout=120):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    c.request("POST", path, body=json.dumps(body).encode(), headers=headers)
    r = c.getresponse()
    out = r.read()
    c.close()
    try:
        return r.status, json.loads(out)
    except ValueError:
        return r.status, {"raw": out[:200]}


def uri(path, mime="application/pdf"):
    return "data:%s;base64,%s" % (mime, base64.b64encode(open(path, "rb").read()).decode())


def chat(parts, **kw):
    body = {"messages": [{"role": "user", "content": parts + [{"type": "text", "text": "Read the document."}]}],
            "max_tokens": 6, "temperature": 0}
    body.update(kw)
    return post("/v1/chat/completions", body)


def answer(r):
    m = r["choices"][0]["message"]
    return (m.get("reasoning_content") or "") + (m.get("content") or "")


def cli(name):
    ans = open(os.path.join(T, name + ".ans")).read()
    assert ans.endswith("\n")
    return ans[:-1].replace("<think>", "").replace("</think>", ""), int(open(os.path.join(T, name + ".n")).read())


def png_pixels(data):
    """(w, h, RGB bytes) of an 8-bit RGB PNG (what stb_image_write writes), decoded with zlib alone"""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat = 8, b""
    while i < len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype == 2, (depth, ctype)
        elif kind == b"IDAT":
            idat += body
        i += 12 + n
    raw, stride, bpp = zlib.decompress(idat), w * 3, 3
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for x in range(bpp, stride): line[x] = (line[x] + line[x - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for x in range(stride): line[x] = (line[x] + ((line[x - bpp] if x >= bpp else 0) + prev[x]) // 2) & 255
        elif f == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return w, h, bytes(out)


def ppm(dpi, page):
    """the page as the CLI's renderer gives it: pdftoppm -r DPI -f K -l K -singlefile (binary PPM)"""
    b = subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile", DOC],
                       capture_output=True, timeout=60).stdout
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", b)
    return int(m.group(1)), int(m.group(2)), b[m.end():]


def cli_png(dpi, page):
    """the page PNG the CLI's renderer writes (pdftoppm -png -r DPI -f K -l K -singlefile), decoded"""
    out = os.path.join(T, "page%d_%d" % (page, dpi))
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile", DOC, out],
                   check=True, timeout=60)
    return png_pixels(open(out + ".png", "rb").read())


PDF = uri(DOC)
# ---- chat: a file part (pages 2) and a data:application/pdf image_url (every page) == the CLI on the same pages
want, n = cli("p2")
st, r = chat([{"type": "file", "file": {"file_data": PDF, "filename": "doc.pdf", "pages": "2"}}])
ok(st == 200 and answer(r) == want and r["usage"]["prompt_tokens"] == n,
   "file part, pages 2: answer and %d prompt tokens == CLI -i doc.pdf --pages 2 (%d %s)" % (n, st, r.get("usage", r)))
want, n = cli("all")
st, r = chat([{"type": "image_url", "image_url": {"url": PDF}}])
ok(st == 200 and answer(r) == want and r["usage"]["prompt_tokens"] == n,
   "data:application/pdf image_url: answer and %d prompt tokens == CLI -i doc.pdf (%d %s)" % (n, st, r.get("usage", r)))
want, n = cli("d100")
st, r = chat([{"type": "file", "file": {"file_data": PDF.split(",", 1)[1], "pages": "3,1", "dpi": 100}}])
ok(st == 200 and answer(r) == want and r["usage"]["prompt_tokens"] == n,
   "file part as bare base64, pages 3,1 at 100 dpi == CLI --pages 1,3 --dpi 100 (%d %s)" % (st, r.get("usage", r)))

# ---- /v1/pages: pages as rendered for the model
st, r = post("/v1/pages", {"file": {"file_data": PDF, "filename": "doc.pdf"}})
pages = r.get("data", [])
ok(st == 200 and r.get("object") == "list" and len(pages) == 4 and [p["page"] for p in pages] == [1, 2, 3, 4] and
   r.get("dpi") == 150 and r.get("renderer", "").startswith("pdftoppm "),
   "/v1/pages: 4 pages, 150 dpi, renderer %s (%d)" % (r.get("renderer"), st))
ok([(p["width"], p["height"], p["width_pt"], p["height_pt"], p["visual_tokens"]) for p in pages] ==
   [(600, 750, 288, 360, 567), (750, 450, 360, 216, 432), (450, 584, 216, 280, 336), (600, 450, 288, 216, 336)],
   "/v1/pages: sizes in pixels and points, visual tokens 567 + 432 + 336 + 336 (the CLI's line)")
same = all(png_pixels(base64.b64decode(p["image_url"].split(",", 1)[1])) == ppm(150, p["page"]) == cli_png(150, p["page"])
           for p in pages[:2])
ok(same and all(p["image_url"].startswith("data:image/png;base64,") for p in pages),
   "/v1/pages: the PNGs decode to the pixels of the page PNGs pdftoppm -png -r 150 writes (and its PPM; pages 1, 2)")
st, r = post("/v1/pages", {"file": {"file_data": PDF}, "pages": "3,1", "dpi": 100})
pages = r.get("data", [])
ok(st == 200 and [p["page"] for p in pages] == [1, 3] and r.get("dpi") == 100 and
   all(png_pixels(base64.b64decode(p["image_url"].split(",", 1)[1])) == ppm(100, p["page"]) for p in pages),
   "/v1/pages pages 3,1 dpi 100: pages 1, 3 == pdftoppm -r 100 (%d)" % st)
# documents are rendered outside the preprocessing lock, on each request's own thread: 8 at once (pages 1-4 twice)
# give each page as it is alone
st1, r1 = post("/v1/pages", {"file": {"file_data": PDF}})
alone = {p["page"]: p["image_url"] for p in r1.get("data", [])}
res = {}


def one(k):
    res[k] = post("/v1/pages", {"file": {"file_data": PDF}, "pages": str(k % 4 + 1)})
ths = [threading.Thread(target=one, args=(k,)) for k in range(8)]
[t.start() for t in ths]
[t.join() for t in ths]
ok(len(res) == 8 and all(st == 200 and len(r["data"]) == 1 and r["data"][0]["page"] == k % 4 + 1 and
                         r["data"][0]["image_url"] == alone[k % 4 + 1] for k, (st, r) in res.items()),
   "8 /v1/pages requests at once: each page == the same page rendered alone")
st, r = post("/v1/pages", {"file": {"file_data": PDF}}, headers={"Content-Type": "application/json"})
ok(st == 401, "/v1/pages without the API key: 401 (%d)" % st)
st, r = post("/v1/pages", {"nofile": 1})
ok(st == 400 and r["error"]["param"] == "file", "/v1/pages without a file: 400 (%d)" % st)

# ---- bad documents: a 400 for that request, within 15 s, and the server goes on


def mkpdf(n, w, h):
    """an n-page PDF of w x h pt pages (one shared content stream), as tests/cli_pdf.sh's mkpdf writes it"""
    out, offs = bytearray(b"%PDF-1.4\n"), []
    stream = b"0.2 0.4 0.8 rg 10 10 40 20 re f"
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [ " + b"".join(b"%d 0 R " % (i + 4) for i in range(n)) + b"] /Count %d >>" % n,
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents 3 0 R >>" % (w, h)] * n
    for i, o in enumerate(objs):
        offs.append(len(out))
        out += b"%d 0 obj\n" % (i + 1) + o + b"\nendobj\n"
    x = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offs)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, x)
    return bytes(out)


D = os.path.dirname(DOC)
raw = open(DOC, "rb").read()
cases = [("encrypted", open(os.path.join(D, "encrypted.pdf"), "rb").read(), "encrypted"),
         ("damaged", open(os.path.join(D, "damaged.pdf"), "rb").read(), "damaged"),
         ("truncated", raw[:15000], "truncated"),
         ("zero pages", open(os.path.join(D, "zero.pdf"), "rb").read(), "no pages"),
         ("a 200-inch page", open(os.path.join(D, "huge.pdf"), "rb").read(), "pixels"),
         ("a 400:1 page", open(os.path.join(D, "tall.pdf"), "rb").read(), "aspect ratio"),
         ("2500 pages", mkpdf(2500, 595.276, 841.89), "--max-pages 8"),
         ("a PNG as a file part", open("tests/data/images/synth_97x61.png", "rb").read(), "only PDF documents")]
for name, data, pat in cases:
    d = "data:application/pdf;base64," + base64.b64encode(data).decode()
    for how, fn in (("chat", lambda: chat([{"type": "file", "file": {"file_data": d, "filename": "bad.pdf"}}])),
                    ("/v1/pages", lambda: post("/v1/pages", {"file": {"file_data": d, "filename": "bad.pdf"}}))):
        t0 = time.time()
        st, r = fn()
        dt = time.time() - t0
        msg = r.get("error", {}).get("message", "")
        ok(st == 400 and pat in msg and dt < 15 and r.get("error", {}).get("param") in ("messages[0].content[0].file", "file"),
           "%s (%s): 400 in %.1f s: %s" % (name, how, dt, msg[:150]))
# a page selection past the end or malformed: a 400 naming the request's "pages" (not the CLI's flag)
for spec, pat in (("9", '"pages": "9": page 9 is past the end (the document has 4 pages)'),
                  ("1-2-3", '"pages": "1-2-3": not a list of pages')):
    st, r = chat([{"type": "file", "file": {"file_data": PDF, "pages": spec}}])
    msg = r.get("error", {}).get("message", "")
    ok(st == 400 and pat in msg, "pages %s: 400: %s" % (spec, msg[:150]))
# the visual-token budget (--max-visual-tokens 3000) and the context (4096): refused, suggesting fewer pages
st, r = chat([{"type": "file", "file": {"file_data": PDF, "dpi": 300}}])
msg = r.get("error", {}).get("message", "")
ok(st == 400 and "--max-visual-tokens" in msg and "fewer pages" in msg, "over the visual-token budget: 400: %s" % msg[:160])
st, r = chat([{"type": "file", "file": {"file_data": PDF, "pages": "1,2"}}], max_tokens=None,
             messages=[{"role": "user", "content": [{"type": "file", "file": {"file_data": PDF, "pages": "1,2"}},
                                                     {"type": "file", "file": {"file_data": PDF, "pages": "1,2"}},
                                                     {"type": "text", "text": " ".join(map(str, range(1500)))}]}])
msg = r.get("error", {}).get("message", "")
ok(st == 400 and "context" in msg and "fewer pages" in msg, "over the context: 400 suggesting fewer pages: %s" % msg[:200])
st, r = chat([{"type": "file", "file": {"file_data": PDF, "pages": "2"}}])
ok(st == 200 and answer(r) == cli("p2")[0], "after the bad documents the server still answers (%d)" % st)
PY

[ -z "$(ls -A "$T/tmp")" ] && ok "no temporary file left by the server" || no "TMPDIR holds: $(ls -A "$T/tmp")"
kill -TERM "$PID"; wait "$PID" 2>/dev/null

# renderers that misbehave: a fake pdftoppm first on the server's $PATH (the real pdfinfo counts the pages)
REAL=$(command -v pdfinfo)
ln -s "$REAL" "$T/fake/pdfinfo"
printf '#!/bin/sh\n[ "$1" = -v ] && exit 0\nexec sleep 1001\n' >"$T/fake/pdftoppm"
chmod +x "$T/fake/pdftoppm"
start hang env PATH="$T/fake:$PATH" "$GLM4V" serve -m $M --port 0 --pdf-timeout 2
[ -n "$URL" ] || { no "server (hanging renderer) did not start: $(cat "$T/hang.err")"; exit 0; }
B=$(base64 -w0 $DOC)
printf '{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,%s","pages":"1"}}]}],"max_tokens":2}' "$B" >"$T/req.json"
s=$(date +%s%N)
code=$(curl -s -o "$T/resp" -w '%{http_code}' "$URL/v1/chat/completions" -d @"$T/req.json")
e=$((($(date +%s%N) - s) / 1000000))
[ "$code" = 400 ] && grep -q "within the time limit of 2 s" "$T/resp" && [ $e -lt 10000 ] && ! pgrep -f "sleep 1001" >/dev/null &&
    ok "a renderer that hangs (--pdf-timeout 2): 400 in $e ms, nothing left running" || no "hang: $code in $e ms: $(cat "$T/resp")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] && ok "the server still serves after the hang" || no "/health after the hang"
kill -TERM "$PID"; wait "$PID" 2>/dev/null
printf '#!/bin/sh\n[ "$1" = -v ] && exit 0\nkill -SEGV $$\n' >"$T/fake/pdftoppm"
start crash env PATH="$T/fake:$PATH" "$GLM4V" serve -m $M --port 0
[ -n "$URL" ] || { no "server (crashing renderer) did not start: $(cat "$T/crash.err")"; exit 0; }
code=$(curl -s -o "$T/resp" -w '%{http_code}' "$URL/v1/chat/completions" -d @"$T/req.json")
[ "$code" = 400 ] && grep -q "pdftoppm crashed on page 1" "$T/resp" && ok "a renderer that crashes: 400: $(head -c 160 "$T/resp")" ||
    no "crash: $code $(cat "$T/resp")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] && ok "the server still serves after the crash" || no "/health after the crash"
kill -TERM "$PID"; wait "$PID" 2>/dev/null
[ -z "$(ls -A "$T/tmp")" ] && ok "nothing left in TMPDIR" || no "TMPDIR holds: $(ls -A "$T/tmp")"
true
