#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_webui.sh - the chat page of `glm4v serve` (webui/, issue #21): --no-webui, then servers on free ports of
# 127.0.0.1 (one without a key, one with --api-key) driven in headless Chromium by tests/webui_check.py, which also
# holds the page's box parser against boxes.c on tests/data/boxes_corpus.json (build/tests/test_boxes_corpus --json).
# Skipped with a message when Chromium, chromedriver or Selenium is missing (.ci/run installs them: Debian's
# chromium and chromium-driver, Selenium from PyPI). Screenshots go to build/webui-test/.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
OUT=build/webui-test
mkdir -p "$OUT"
T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
ok() { echo "ok - $*"; }
no() { echo "not ok - $*"; }
M=weights/tiny-glm4v-moe
IMG=tests/data/images/synth_200x150.png
if ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then
    echo "# curl or python3 missing: webui tests skipped"; exit 0
fi

# start OUTNAME ARGS...: a server on a free port; sets PID and URL (tests/server_lib.sh)
. tests/server_lib.sh
start() { local name=$1; shift; serve_start "$name" "$GLM4V" serve -m $M --port 0 "$@"; }

# --no-webui: / is a 404, the API stays
start off --no-webui --served-model-name tiny
[ -n "$URL" ] || { no "serve --no-webui did not start: $(cat "$T/off.err")"; exit 0; }
[ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/")" = 404 ] && [ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/app.js")" = 404 ] &&
    [ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/v1/models")" = 200 ] && ok "--no-webui: no page, the API answers" ||
    no "--no-webui"
kill -TERM "$PID"; wait "$PID" 2>/dev/null
timeout 10 "$GLM4V" serve -m $M --no-webui --no-webui >/dev/null 2>"$T/e"; rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && ok "--no-webui twice: exit 2, one line" || no "--no-webui twice: rc $rc"

start main --served-model-name tiny --ctx-size 4096 --parallel 2
MAIN=$URL
[ -n "$MAIN" ] || { no "serve did not start: $(cat "$T/main.err")"; exit 0; }
grep -q "chat page: $MAIN/" "$T/main.out" && ok "the ready line names the chat page" || no "ready line: $(cat "$T/main.out")"
h=$(curl -s -m 10 -D - -o "$T/index.html" "$MAIN/")
printf '%s' "$h" | grep -qi "^Content-Security-Policy: default-src 'self'" && printf '%s' "$h" | grep -qi "^X-Content-Type-Options: nosniff" &&
    grep -q 'src="app.js"' "$T/index.html" && ok "GET / with curl: the page, its CSP and nosniff" || no "GET /: $h"
# the page sends a picked video as a data: URI: one that does not decode is a 400 naming the part, no temporary file left
before=$(ls /tmp | grep -c '^glm4v-video-')
out=$(curl -s -m 30 "$MAIN/v1/chat/completions" -d '{"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"data:video/mp4;base64,AAAAIGZ0eXBpc29t"}},{"type":"text","text":"hi"}]}],"max_tokens":2}')
after=$(ls /tmp | grep -c '^glm4v-video-')
printf '%s' "$out" | grep -q '"param":"messages\[0\].content\[0\].video_url"' && [ "$after" -le "$before" ] &&
    ok "a video data: URI that does not decode: 400 naming the part, no temporary file left" || no "video data: URI: $out"
start key --served-model-name tiny --api-key sekrit
KEY=${URL:--}

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "# SKIP browser checks: Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    exit 0
fi
if ! python3 -c 'import selenium' 2>/dev/null; then
    echo "# SKIP browser checks: the Python selenium package is not installed (pip install selenium)"
    exit 0
fi
# boxes.c's reading of the corpus, from the test program built beside the binary (build/ or build-asan/)
CORPUS=$(dirname "$GLM4V")/tests/test_boxes_corpus
[ -x "$CORPUS" ] || CORPUS=build/tests/test_boxes_corpus
if [ ! -x "$CORPUS" ]; then no "$CORPUS is not built (make build/tests/test_boxes_corpus)"; exit 0; fi
timeout 60 "$CORPUS" --json >"$T/corpus_c.json" || no "test_boxes_corpus --json"
timeout -k 10 300 python3 tests/webui_check.py "$MAIN" "$KEY" "$OUT" "$IMG" "$T/corpus_c.json" "$GLM4V" "$M"
rc=$?
[ $rc -eq 124 ] && no "webui_check.py ran past 300 s"
exit 0
