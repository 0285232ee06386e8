#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_templates.sh - the checkpoint's own chat template against transformers (tests/golden/make_template_cases.py):
# every case's conversation given as --messages renders (--show-prompt) byte for byte what processor.
# apply_chat_template(..., tokenize=False) returned, and `-n 0 --dump` holds the input_ids of apply_chat_template(...,
# tokenize=True): real GLM-V templates and the built-in one, both architectures, images, video, tools and tool results,
# reasoning in the history, thinking on and off. One case also runs with the template placed in the model folder.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
CMP=${GLM4V_COMPARE:-./glm4v-compare}
D=tests/data/templates
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ok() { echo "ok - $*"; }
no() { echo "not ok - $*"; }
while read -r name; do
    args=$(cat "$D/$name.args")
    eval "timeout 60 $GLM4V $args --messages $D/$name.messages.json --show-prompt" >"$T/p.txt" 2>"$T/err"; rc=$?
    if [ $rc -eq 0 ] && cmp -s "$T/p.txt" "$D/$name.prompt.txt"; then ok "$name: --show-prompt == apply_chat_template"
    else no "$name: --show-prompt differs (rc $rc) $(tail -n1 "$T/err")"; diff <(cat -A "$D/$name.prompt.txt") <(cat -A "$T/p.txt") | head -5; fi
    eval "timeout 120 $GLM4V $args --messages $D/$name.messages.json -n 0 -q --dump $T/d.st" >/dev/null 2>"$T/err"; rc=$?
    if [ $rc -eq 0 ] && $CMP "$T/d.st" "$D/$name.ids.safetensors" --names input_ids >"$T/cmp" 2>&1; then
        ok "$name: input_ids == apply_chat_template(tokenize=True)"
    else no "$name: input_ids (rc $rc) $(tail -n1 "$T/err") $(tail -n2 "$T/cmp")"; fi
done <"$D/cases.txt"

# the template placed in the model folder (chat_template.jinja) is the one used, without --chat-template
cp -r weights/tiny-glm4v-dense "$T/dense"
cp tests/jinja/templates/glm-4.1v-9b-thinking.jinja "$T/dense/chat_template.jinja"
timeout 60 $GLM4V -m "$T/dense" --messages $D/dense_glm41v_image.messages.json --show-prompt >"$T/p.txt" 2>"$T/err" &&
    cmp -s "$T/p.txt" $D/dense_glm41v_image.prompt.txt && ok "chat_template.jinja in the folder is rendered" ||
    no "folder chat_template.jinja: $(tail -n1 "$T/err")"
# chat_template.json (the processor's) when there is no .jinja
rm "$T/dense/chat_template.jinja"
python3 -c 'import json,sys; print(json.dumps({"chat_template": open(sys.argv[1]).read()}))' \
    tests/jinja/templates/glm-4.1v-9b-thinking.jinja >"$T/dense/chat_template.json" 2>/dev/null &&
    timeout 60 $GLM4V -m "$T/dense" --messages $D/dense_glm41v_image.messages.json --show-prompt >"$T/p.txt" 2>"$T/err" &&
    cmp -s "$T/p.txt" $D/dense_glm41v_image.prompt.txt && ok "chat_template.json in the folder is rendered" ||
    no "folder chat_template.json: $(tail -n1 "$T/err")"

# bad input: a messages file that is not an array, an http URL, a missing image, invalid JSON in --tools
printf '{"role": "user"}' >"$T/bad.json"
timeout 20 $GLM4V -m weights/tiny-glm4v-moe --messages "$T/bad.json" -n 1 -q >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && ok "--messages not an array: exit 1, one line" || no "bad messages: rc $rc $(cat "$T/err")"
printf '[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]}]' >"$T/http.json"
timeout 20 $GLM4V -m weights/tiny-glm4v-moe --messages "$T/http.json" -n 1 -q >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "messages\[0\].content\[0\]" "$T/err" && grep -q "remote" "$T/err" &&
    ok "an http image URL is refused, naming the part" || no "http URL: rc $rc $(cat "$T/err")"
printf '[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "%s/none.png"}}]}]' "$T" >"$T/missing.json"
timeout 20 $GLM4V -m weights/tiny-glm4v-moe --messages "$T/missing.json" -n 1 -q >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "none.png" "$T/err" && ok "a missing image: exit 1, names it" || no "missing image: rc $rc $(cat "$T/err")"
printf '[{"type": ' >"$T/tools.json"
timeout 20 $GLM4V -m weights/tiny-glm4v-moe -p hi --tools "$T/tools.json" -n 1 -q >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "tools.json" "$T/err" && ok "invalid --tools JSON: exit 1, names the file" || no "bad tools: rc $rc $(cat "$T/err")"
# a data: URI image gives the same input_ids as the file
b64=$(base64 -w0 tests/data/images/synth_200x150.png)
printf '[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%s"}}, {"type": "text", "text": "Describe this picture."}]}]' "$b64" >"$T/data.json"
timeout 60 $GLM4V -m weights/tiny-glm4v-moe --messages "$T/data.json" --no-think -n 0 -q --dump "$T/d.st" >/dev/null 2>"$T/err" &&
    $CMP "$T/d.st" $D/moe_builtin_image_nothink.ids.safetensors --names input_ids >/dev/null 2>&1 &&
    ok "a data: URI image == the same file" || no "data URI: $(tail -n1 "$T/err")"

# ./glm4v parse-output: the same parser as the server, on the model-style outputs of tests/chat_output/cases.json
# (expected messages from the port of vLLM's glm45 parsers there): every case without a prompt-opened <think>
python3 - "$GLM4V" "$T" <<'PY'
import json, subprocess, sys
glm4v, tmp = sys.argv[1], sys.argv[2]
cases = [c for c in json.load(open("tests/chat_output/cases.json"))["cases"]
         if not c["prompt_ends_in_think"] and not c["no_tool_parse"] and "\x00" not in c["text"]][:60]
bad = 0
for c in cases:
    args = [glm4v, "parse-output"]
    if c.get("tools") is not None:
        json.dump(c["tools"], open(f"{tmp}/t.json", "w"))
        args += ["--tools", f"{tmp}/t.json"]
    open(f"{tmp}/out.txt", "wb").write(c["text"].encode("utf-8", "surrogatepass"))
    r = subprocess.run(args + [f"{tmp}/out.txt"], capture_output=True, timeout=20)
    got = json.loads(r.stdout) if r.returncode == 0 else None
    if got != c["expected"]:
        bad += 1
        print(f"# {c['name']}: got {r.stdout[:200]!r} rc {r.returncode}")
print(("ok" if not bad else "not ok") + f" - parse-output == vLLM glm45 parsing on {len(cases)} outputs ({bad} differ)")
PY
