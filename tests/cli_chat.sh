#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_chat.sh - the everyday CLI: --help, timing line, --quiet, --chat over a pipe (two turns with an image, KV-cache
# reuse, commands, errors that do not end the conversation), chat template == --raw of the same text, --draw-boxes.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ok() { echo "ok - $*"; }
no() { echo "not ok - $*"; }
M=weights/tiny-glm4v-moe
IMG=tests/data/images/synth_200x150.png

"$GLM4V" --help >"$T/help" 2>&1 && ok "--help exits 0" || no "--help failed"
for f in --chat --image --video --think --no-think --temp --top-p --dump --threads --draw-boxes --system --raw \
         --top-k --seed --repeat-penalty --fps --resize --max-image-pixels --hide-think --quiet --ctx; do
    grep -q -- "$f" "$T/help" && ok "--help names $f" || no "--help lacks $f"
done
for g in model: input: generation: output: performance:; do
    grep -q "^$g" "$T/help" && ok "--help has group $g" || no "--help lacks group $g"
done

# a plain run: the answer on stdout, one timing line with tok/s on stderr; --quiet silences it
"$GLM4V" -m $M -p "Hello" -n 5 >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok "plain run exits 0" || no "plain run exit $rc"
grep -q "tok/s" "$T/err" && ok "timing line with tok/s on stderr" || no "no timing line: $(cat "$T/err")"
[ -s "$T/out" ] && ok "answer on stdout" || no "empty stdout"
"$GLM4V" -m $M -p "Hello" -n 5 -q >"$T/out" 2>"$T/err"
[ ! -s "$T/err" ] && ok "--quiet: nothing on stderr" || no "--quiet printed: $(cat "$T/err")"

# two-turn chat with an image, piped
printf '/image %s\nWhat is in this picture?\nAnd the colours?\n/quit\n' "$IMG" |
    "$GLM4V" -m $M --chat -n 6 >"$T/chat.out" 2>"$T/chat.err"; rc=$?
[ $rc -eq 0 ] && ok "two-turn chat exits 0" || no "chat exit $rc: $(tail -n1 "$T/chat.err")"
[ "$(grep -c 'tok/s' "$T/chat.err")" -eq 2 ] && ok "two replies (two timing lines)" || no "expected 2 turns: $(cat "$T/chat.err")"
[ "$(grep -c . "$T/chat.out")" -ge 2 ] && ok "replies printed on stdout" || no "replies missing: $(cat "$T/chat.out")"
grep -q "cached" "$T/chat.err" && ok "second turn reuses the KV cache" || no "no KV-cache reuse: $(cat "$T/chat.err")"

# errors inside a chat do not end it; EOF quits; /think, /reset
printf '/image /nonexistent.png\n/bogus\nHi\n/think off\nAgain\n/reset\nFresh\n' |
    "$GLM4V" -m $M --chat -n 3 >"$T/c2.out" 2>"$T/c2.err"; rc=$?
[ $rc -eq 0 ] && ok "chat survives a bad /image and an unknown command" || no "chat exit $rc"
grep -q "nonexistent.png" "$T/c2.err" && ok "bad /image reported by name" || no "bad /image not reported"
[ "$(grep -c 'tok/s' "$T/c2.err")" -eq 3 ] && ok "three turns answered" || no "turns: $(cat "$T/c2.err")"

# the chat template renders exactly the documented text: same input_ids as --raw of that text
check_template() { # description expected-text chat-args...
    local what=$1 text=$2; shift 2
    "$GLM4V" -m $M -n 0 -q --dump "$T/chat.st" "$@" >/dev/null 2>"$T/e1" || { no "$what: chat run failed"; return; }
    "$GLM4V" -m $M -n 0 -q --dump "$T/raw.st" --raw -p "$text" >/dev/null 2>"$T/e2" || { no "$what: raw run failed"; return; }
    "$COMPARE" "$T/chat.st" "$T/raw.st" --names input_ids --rtol 0 >"$T/cmp" 2>&1 &&
        ok "template: $what" || no "template: $what: $(grep -E 'FAIL|first' "$T/cmp" | head -2)"
}
nl=$'\n'
check_template "plain" "[gMASK]<sop><|user|>${nl}Q<|assistant|>" -p "Q"
check_template "--no-think" "[gMASK]<sop><|user|>${nl}Q/nothink<|assistant|>${nl}<think></think>" -p "Q" --no-think
check_template "--no-think, text already ending with /nothink" \
    "[gMASK]<sop><|user|>${nl}Q /nothink<|assistant|>${nl}<think></think>" -p "Q /nothink" --no-think
check_template "--system" "[gMASK]<sop><|system|>${nl}Be brief.<|user|>${nl}Q<|assistant|>" -p "Q" --system "Be brief."
check_template "--system --no-think" "[gMASK]<sop><|system|>${nl}S<|user|>${nl}Q/nothink<|assistant|>${nl}<think></think>" \
    -p "Q" --system "S" --no-think
# with an image: the markers come before the text; compared after placeholder expansion
"$GLM4V" -m $M -n 0 -q --dump "$T/ci.st" -p "Q" -i $IMG >/dev/null 2>&1
"$GLM4V" -m $M -n 0 -q --dump "$T/ri.st" --raw -p "[gMASK]<sop><|user|>${nl}<|begin_of_image|><|image|><|end_of_image|>Q<|assistant|>" \
    -i $IMG >/dev/null 2>&1
"$COMPARE" "$T/ci.st" "$T/ri.st" --names input_ids --names position_ids --rtol 0 >/dev/null 2>&1 &&
    ok "template: one image" || no "template: one image"

# --draw-boxes writes a PNG of the first image; a missing directory fails cleanly
"$GLM4V" -m $M -p "Where is the circle?" -i $IMG -n 4 -q --draw-boxes "$T/boxes.png" >/dev/null 2>&1 &&
    [ -s "$T/boxes.png" ] && ok "--draw-boxes writes a PNG" || no "--draw-boxes"
"$GLM4V" -m $M -p "x" -i $IMG -n 2 -q --draw-boxes "$T/missing/b.png" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && tail -n1 "$T/err" | grep -q "missing/b.png" && ok "--draw-boxes into a missing folder: exit 1, names the file" ||
    no "--draw-boxes missing folder: rc $rc $(tail -n1 "$T/err")"
[ -z "$(ls "$T" | grep 'b.png')" ] && ok "no partial boxes file" || no "partial file left"

# the template follows the checkpoint: tokenizer_config.json's chat_template is rendered (jinja.c), whatever its layout
cp -r weights/tiny-glm4v-dense "$T/m41"
printf '{"chat_template": "[gMASK]<sop>{%% for m in messages %%}<|{{ m.role }}|>\\n{{ m.content }}{%% endfor %%}<|assistant|>\\n"}' \
    >"$T/m41/tokenizer_config.json"
out=$("$GLM4V" -m "$T/m41" -p "hi" --show-prompt 2>"$T/err"); rc=$?
[ $rc -eq 0 ] && [ "$out" = "[gMASK]<sop><|user|>${nl}hi<|assistant|>" ] && ok "the folder's own template is rendered (--show-prompt)" ||
    no "folder template: rc $rc '$out' $(tail -n1 "$T/err")"
"$GLM4V" -m "$T/m41" -p "hi" -n 2 -q >/dev/null 2>&1 && ok "a GLM-4.1V-style template runs without --raw" ||
    no "GLM-4.1V-style template refused"
"$GLM4V" -m "$T/m41" --raw -p "[gMASK]<sop><|user|>${nl}hi<|assistant|>${nl}" -n 2 -q >/dev/null 2>&1 &&
    ok "--raw still works" || no "--raw failed"
printf '{"chat_template": "{%% for m in messages %%}\\n{%% include \\"x.j2\\" %%}{%% endfor %%}"}' >"$T/m41/tokenizer_config.json"
"$GLM4V" -m "$T/m41" -p "hi" -n 2 -q >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "include" "$T/err" && grep -q "line 2" "$T/err" &&
    ok "an unsupported template construct: exit 1, one line naming it and its line" ||
    no "unsupported construct: rc $rc $(cat "$T/err")"
