#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_score.sh - `glm4v score` (scorer.c): our own greedy output scores all-agree with zero delta (the logprobs
# computed from the --dump's decode-step logits); a token swapped at position k diverges first at k; logprobs shifted
# by a constant give exactly that delta; HF's greedy generations (tests/data/score, made by
# tests/golden/make_score_cases.py from HF's outputs) agree, as completion_ids and as a logged vLLM chat.completion
# with bytes, top_logprobs and token_id:N; shards merged equal the unsharded report byte for byte; malformed lines
# are per-case errors; exit codes 0 / 1 / 2; the HTML page is self-contained (and renders in a headless browser
# when selenium + chromium are installed).
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ok() { echo "ok - $*"; }
no() { echo "not ok - $*"; }
M=weights/tiny-glm4v-moe
IMG=tests/data/images/synth_200x150.png
PROMPT=$'[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>Describe the picture.<|assistant|>\n'

# ---- our own greedy output: generate with the CLI, logprobs from the dump's decode logits (plain Python: the same
# double sum of exp and fp32 rounding as scorer.c)
"$GLM4V" -m $M --raw -p "$PROMPT" -i $IMG -n 20 -q --temp 0 --dump "$T/g.st" >/dev/null 2>"$T/err" ||
    no "greedy run failed: $(tail -n1 "$T/err")"
cat >"$T/msgs.json" <<EOF
[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "$IMG"}}, {"type": "text", "text": "What is this?"}]}]
EOF
"$GLM4V" -m $M --messages "$T/msgs.json" -n 16 -q --temp 0 --dump "$T/m.st" >/dev/null 2>"$T/err" ||
    no "greedy --messages run failed: $(tail -n1 "$T/err")"
python3 - "$T" "$PROMPT" "$IMG" <<'PY'
import json, math, struct, sys, array
T, prompt, img = sys.argv[1:4]
def read(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, m in h.items():
        if k == "__metadata__": continue
        s, e = m["data_offsets"]; a = array.array({"F32": "f", "I64": "q"}[m["dtype"]]); a.frombytes(b[8 + n + s:8 + n + e])
        out[k] = (a, m["shape"])
    return out
def f32(v): return struct.unpack("f", struct.pack("f", v))[0]
def logprobs(d):
    ids = list(d["generated_ids"][0]); lg, shape = d["generated_logits"]; V = shape[1]; out = []
    for j, t in enumerate(ids):
        x = lg[j * V:(j + 1) * V]; a = max(range(V), key=lambda i: (x[i], -i)); s = 0.0
        for v in x: s += math.exp(v - x[a])
        out.append(f32(x[t] - (x[a] + math.log(s))))
    return ids, out
g = read(T + "/g.st"); ids, lp = logprobs(g)
msgs = json.load(open(T + "/msgs.json")); mi, ml = logprobs(read(T + "/m.st"))
sw = list(ids); k = 4; sw[k] = (ids[k] + 7) % 1000
with open(T + "/self.jsonl", "w") as f:
    f.write(json.dumps({"id": "self-prompt", "prompt": prompt, "images": [img], "completion_ids": ids, "logprobs": lp}) + "\n")
    f.write(json.dumps({"id": "self-messages", "messages": msgs, "completion_ids": mi, "logprobs": ml}) + "\n")
    # HF-style input_ids (the image placeholder already expanded) with the image
    f.write(json.dumps({"id": "self-ids", "input_ids": list(g["input_ids"][0]), "images": [img], "completion_ids": ids}) + "\n")
    f.write(json.dumps({"id": "swap4", "prompt": prompt, "images": [img], "completion_ids": sw}) + "\n")
    f.write(json.dumps({"id": "shift", "prompt": prompt, "images": [img], "completion_ids": ids,
                        "logprobs": [v + 0.5 for v in lp]}) + "\n")
json.dump({"swap": [k, sw[k], ids[k]]}, open(T + "/self.expected", "w"))
PY
"$GLM4V" score -m $M "$T/self.jsonl" -o "$T/self.json" -q >"$T/self.table" 2>"$T/err"
rc=$?
[ $rc = 1 ] && ok "self cases: exit 1 (swap and shift fail)" || no "self cases: exit $rc, want 1: $(tail -n1 "$T/err")"
python3 - "$T" <<'PY'
import json, sys
T = sys.argv[1]; r = json.load(open(T + "/self.json")); c = {x["id"]: x for x in r["cases"]}; e = json.load(open(T + "/self.expected"))
def check(cond, msg): print(("ok - " if cond else "not ok - ") + msg)
for name in ("self-prompt", "self-messages"):
    x = c[name]
    check(x["agree"] == x["n_tokens"] > 0 and x["first_divergence"] is None, f"{name}: all {x['n_tokens']} tokens agree")
    check(x["max_abs_dlogprob"] == 0 and x["mean_abs_dlogprob"] == 0 and all(p["dlogprob"] == 0 for p in x["positions"]),
          f"{name}: zero delta logprob at every position")
    check(x["pass"] and x["error"] is None and all(p["rank"] == 0 and p["in_our_topk"] for p in x["positions"]), f"{name}: passes, rank 0 everywhere")
x = c["self-ids"]
check(x["agree"] == x["n_tokens"] and x["max_abs_dlogprob"] is None and x["pass"], "input_ids case: agrees, no logprobs -> max_abs_dlogprob null")
k, theirs, ours = e["swap"]; d = c["swap4"]["first_divergence"]
check(d is not None and d["position"] == k and d["theirs"] == theirs and d["ours"] == ours and d["margin"] > 0,
      f"token swapped at {k}: first divergence at {k}, theirs {theirs}, ours {ours}")
check(c["swap4"]["agree"] == c["swap4"]["n_tokens"] - 1 or c["swap4"]["agree"] < c["swap4"]["n_tokens"], "swap: agreement below n")
check(not c["swap4"]["pass"], "swap: fails (not a near tie under fp32)")
x = c["shift"]
check(all(p["dlogprob"] == 0.5 for p in x["positions"]) and x["max_abs_dlogprob"] == 0.5 and x["mean_abs_dlogprob"] == 0.5,
      "logprobs shifted by 0.5: delta exactly 0.5 everywhere")
check(x["agree"] == x["n_tokens"] and not x["pass"], "shift: tokens agree, verdict fails on |dlogprob|")
check([x["index"] for x in r["cases"]] == list(range(5)) and r["summary"]["cases"] == 5 and r["summary"]["passed"] == 3,
      "report keeps input order; summary 5 cases, 3 passed")
PY
head -n2 "$T/self.table" | tail -n1 | grep -q -e '^swap4' -e '^shift' && ok "table: worst case first" || no "table order: $(head -n2 "$T/self.table")"

# ---- HF's greedy generations (tests/data/score, from HF's outputs; checkpoint tests/golden/ckpt/moe)
H=tests/golden/ckpt/moe
"$GLM4V" score -m $H tests/data/score/hf_cases.jsonl tests/data/score/vllm_cases.jsonl >/dev/null 2>&1
[ $? = 2 ] && ok "two case files: usage error, exit 2" || no "two case files not refused with exit 2"
"$GLM4V" score -m $H tests/data/score/hf_cases.jsonl -o "$T/hf.json" -q >/dev/null 2>"$T/err"
[ $? = 1 ] && ok "HF cases: exit 1 (the altered ones fail)" || no "HF cases: $(tail -n1 "$T/err")"
"$GLM4V" score -m $H tests/data/score/vllm_cases.jsonl -o "$T/vllm.json" --top-k 5 -q >/dev/null 2>"$T/err" ||
    [ $? = 1 ] || no "vLLM cases: $(tail -n1 "$T/err")"
python3 - "$T" <<'PY'
import json, sys
T = sys.argv[1]; e = json.load(open("tests/data/score/expected.json"))
def check(cond, msg): print(("ok - " if cond else "not ok - ") + msg)
c = {x["id"]: x for x in json.load(open(T + "/hf.json"))["cases"]}
for name, n in e["hf"].items():
    x = c[name]
    check(x["n_tokens"] == n and x["agree"] == n and x["first_divergence"] is None and x["pass"],
          f"{name}: HF's greedy tokens are ours, all {n} ({x['max_abs_dlogprob']:.2g} max |dlogprob| vs HF)")
    check(x["max_abs_dlogprob"] < 1e-4, f"{name}: HF's logprobs within 1e-4")
d = c["hf-image-swap3"]["first_divergence"]; w = e["hf-image-swap3"]
check(d and (d["position"], d["theirs"], d["ours"]) == (w["position"], w["theirs"], w["ours"]) and not d["near_tie"],
      f"HF completion swapped at {w['position']}: first divergence there, theirs {w['theirs']}, ours {w['ours']}")
x = c["hf-text-shift"]
check(abs(x["max_abs_dlogprob"] - 0.25) < 1e-5 and abs(x["mean_abs_dlogprob"] - 0.25) < 1e-5 and not x["pass"],
      "HF logprobs shifted by 0.25: delta 0.25 reported, case fails")
c = {x["id"]: x for x in json.load(open(T + "/vllm.json"))["cases"]}
x = c["vllm-image"]; w = e["vllm-image"]
check(not x["retokenized"] and [p["token"] for p in x["positions"]] == w["ids"],
      "vLLM response: token strings, bytes and token_id:N mapped one to one to HF's ids")
check(all(p["their_logprob"] == l for p, l in zip(x["positions"], w["logprobs"])), "vLLM response: their logprobs read exactly")
check(x["agree"] == len(w["ids"]) and x["pass"] and x["max_abs_dlogprob"] < 1e-4, "vLLM response: all agree, passes")
check(all(p["ours_in_their_topk"] is True and p["in_our_topk"] and p["kl"] is not None and p["kl"] < 1e-6 for p in x["positions"]),
      "vLLM response: top-k memberships both ways, KL over the shared support ~0")
check(x["mean_kl"] is not None and x["mean_kl"] < 1e-6, "vLLM response: mean KL reported")
x = c["vllm-vocab-strings"]
check(not x["retokenized"] and [p["token"] for p in x["positions"]] == w["ids"] and x["pass"],
      "a response logging the vocabulary's own strings ('Ġde') maps one to one too")
x = c["vllm-merged"]
check(x["retokenized"] and "re-tokenized" in (x["note"] or "") and x["max_abs_dlogprob"] is None and x["error"] is None,
      "a response token that is not ours: re-tokenized, the case says so, logprobs not compared")
PY

# ---- malformed lines: per-case errors, the run goes on
python3 - "$T" <<'PY'
import json, sys
T = sys.argv[1]
good = {"id": "good", "input_ids": [1, 2, 3, 4, 5], "completion_ids": [6]}
lines = ['{"id": "bad json", "input_ids": [1, 2', json.dumps({"id": "unknown token", "input_ids": [1, 2], "completion_ids": [5, 99999]}),
         json.dumps(good), json.dumps({"id": "no completion", "prompt": "hello"}), "", json.dumps({"id": "no input", "completion_ids": [5]}),
         json.dumps({"id": "too long", "input_ids": [1, 2, 3], "completion_ids": [7] * 5000}), "[1, 2]",
         json.dumps({"id": "bad response", "prompt": "x", "response": {"choices": []}})]
open(T + "/bad.jsonl", "w").write("\n".join(lines) + "\n")
PY
"$GLM4V" score -m $M "$T/bad.jsonl" -o "$T/bad.json" -q >/dev/null 2>"$T/err"
[ $? = 1 ] && ok "malformed lines: exit 1, the run completes" || no "malformed lines: $(tail -n1 "$T/err")"
python3 - "$T" <<'PY'
import json, sys
T = sys.argv[1]; r = json.load(open(T + "/bad.json")); c = r["cases"]
def check(cond, msg): print(("ok - " if cond else "not ok - ") + msg)
check([x["index"] for x in c] == list(range(8)), "8 cases (the blank line is not one), in input order")
want = {0: "not valid JSON", 1: "99999", 3: "completion", 4: "prompt", 5: "context", 6: "object", 7: "choices"}
for x in c:
    i = x["index"]
    if i == 2: check(x["error"] is None and x["n_tokens"] == 1 and x["id"] == "good", "the good line between them is scored"); continue
    w = want[i]
    check(x["error"] is not None and w in x["error"] and not x["pass"] and x["first_divergence"] is None and x["positions"] == [],
          f"line {i} ({x['id']}): error '{x['error']}'")
check(r["summary"] == {"cases": 8, "passed": r["summary"]["passed"], "failed": 8 - r["summary"]["passed"], "errors": 7, "tokens": 1, "agree": r["summary"]["agree"], "near_ties": r["summary"]["near_ties"]},
      "summary counts the errors")
PY

# ---- shards merged = the unsharded report, byte for byte
cat "$T/self.jsonl" tests/data/score/vllm_cases.jsonl "$T/bad.jsonl" >"$T/all.jsonl"
"$GLM4V" score -m $M "$T/all.jsonl" -o "$T/full.json" --html "$T/full.html" -q >/dev/null 2>&1
for k in 0 1 2; do
    "$GLM4V" score -m $M "$T/all.jsonl" --shard $k/3 -o "$T/part$k.json" -q >/dev/null 2>&1
    [ $? -le 1 ] || no "shard $k/3 failed"
done
"$GLM4V" score --merge "$T/part2.json" "$T/part0.json" "$T/part1.json" -o "$T/merged.json" --html "$T/merged.html" >/dev/null 2>"$T/err"
[ $? = 1 ] && ok "merge: exit 1 as the full run (failing cases)" || no "merge: $(tail -n1 "$T/err")"
cmp -s "$T/full.json" "$T/merged.json" && ok "shards 0/3 1/3 2/3 merged = the unsharded report, byte for byte" ||
    no "merged report differs from the unsharded one"
cmp -s "$T/full.html" "$T/merged.html" && ok "merged HTML = the unsharded HTML" || no "merged HTML differs"
"$GLM4V" score --merge "$T/part0.json" "$T/part1.json" -o "$T/m2.json" >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q "shard 2/3 is missing" "$T/err" && ok "merge with a shard missing: exit 2, names it" || no "missing shard: $(tail -n1 "$T/err")"
"$GLM4V" score --merge "$T/part0.json" "$T/part0.json" "$T/part1.json" >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q "twice" "$T/err" && ok "merge with a shard twice: exit 2" || no "duplicate shard: $(tail -n1 "$T/err")"
"$GLM4V" score --merge "$T/full.json" >/dev/null 2>&1
[ $? = 2 ] && ok "merge of an unsharded report: exit 2" || no "merge accepted an unsharded report"
# parts whose cases were swapped between shards (each index still once): not shards of one run
python3 - "$T" <<'PY'
import sys
T = sys.argv[1]; a = open(T + "/part0.json").read().split("\n"); b = open(T + "/part1.json").read().split("\n")
i = next(k for k, l in enumerate(a) if l.startswith('{"id"')); j = next(k for k, l in enumerate(b) if l.startswith('{"id"'))
a[i], b[j] = b[j], a[i]
open(T + "/swap0.json", "w").write("\n".join(a)); open(T + "/swap1.json", "w").write("\n".join(b))
PY
"$GLM4V" score --merge "$T/swap0.json" "$T/swap1.json" "$T/part2.json" -o "$T/swapped.json" >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q "not one of shard 0/3" "$T/err" && ok "merge: a part holding another shard's case is refused" ||
    no "merge accepted parts with swapped cases: $(tail -n1 "$T/err")"
"$GLM4V" score --merge "$T/part0.json" "$T/part1.json" "$T/part2.json" --preset bf16 >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q -- "--preset" "$T/err" && ok "merge with a scoring flag (--preset): usage error, not ignored" ||
    no "merge ignored --preset: $(tail -n1 "$T/err")"
# --shard 0/1 (a job array of one task) is a part too: it merges into the unsharded report
"$GLM4V" score -m $M "$T/all.jsonl" --shard 0/1 -o "$T/one.json" -q >/dev/null 2>&1
"$GLM4V" score --merge "$T/one.json" -o "$T/one-merged.json" >/dev/null 2>"$T/err"
[ $? = 1 ] && cmp -s "$T/one-merged.json" "$T/full.json" && ok "--shard 0/1 merges into the unsharded report, byte for byte" ||
    no "--shard 0/1 part: $(tail -n1 "$T/err")"

# ---- exit codes
"$GLM4V" score -m "$T/nope" "$T/self.jsonl" >/dev/null 2>"$T/err"
[ $? = 2 ] && ok "a model that cannot load: exit 2" || no "missing model: exit status"
"$GLM4V" score -m $M "$T/self.jsonl" --shard 3/3 >/dev/null 2>&1
[ $? = 2 ] && ok "--shard 3/3: usage error" || no "--shard 3/3 accepted"
for s in 0/0 1/1 -1/2 0/99999999999 " 0/2" 0/2x; do
    "$GLM4V" score -m $M "$T/self.jsonl" --shard "$s" -o "$T/bad-shard.json" >/dev/null 2>&1
    [ $? = 2 ] && [ ! -e "$T/bad-shard.json" ] || no "--shard '$s' accepted"
done
ok "--shard 0/0, 1/1, -1/2, 0/99999999999 (overflow), ' 0/2', 0/2x: usage errors"
: >"$T/empty.jsonl"
printf '\n \r\n' >"$T/blank.jsonl"
for f in empty blank; do
    "$GLM4V" score -m $M "$T/$f.jsonl" -o "$T/$f.json" >/dev/null 2>"$T/err"
    [ $? = 2 ] && grep -q "no cases" "$T/err" && ok "a cases file with no case ($f): exit 2, not 'every case passes'" ||
        no "$f cases file: $(tail -n1 "$T/err")"
done
"$GLM4V" score -m $M "$T/self.jsonl" --preset fp64 >/dev/null 2>&1
[ $? = 2 ] && ok "--preset fp64: usage error" || no "--preset fp64 accepted"
"$GLM4V" score -m $M "$T/self.jsonl" -o "$T" >/dev/null 2>&1
[ $? = 2 ] && ok "-o naming a folder: usage error before any work" || no "-o FOLDER accepted"
head -n2 "$T/self.jsonl" >"$T/pass.jsonl"
"$GLM4V" score -m $M "$T/pass.jsonl" -q >/dev/null 2>&1 && ok "every case passes: exit 0" || no "passing cases: exit $?"
"$GLM4V" score -m $M "$T/self.jsonl" --preset bf16 -o "$T/bf16.json" -q >/dev/null 2>&1
grep -q '"preset":"bf16","near_tie":0.25' "$T/bf16.json" && ok "--preset bf16 recorded in the settings" || no "bf16 settings"

# ---- the HTML page: self-contained, model text escaped
if grep -qiE '<script[^>]+src=|<link |https?://|@import' "$T/full.html"; then no "HTML refers to external assets"
else ok "HTML has no external assets"; fi
grep -q '<svg class="plot"' "$T/full.html" && grep -q 'class="first"' "$T/full.html" && ok "HTML has the plots and marks the first divergence" ||
    no "HTML lacks plots"
python3 - "$T" <<'PY'
import json, sys
H = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
L = [{"id": "<script>alert(1)</script>", "input_ids": [1, 2, 3], "completion_ids": [60, 61]},
     {"id": "err" + H, "prompt": "a", "images": [H + ".png"], "completion_ids": [5]},   # the error quotes the path
     {"id": "text", "prompt": "a", "completion": H},
     {"id": "resp", "prompt": "a", "response": {"choices": [{"message": {"content": H},
                                                             "logprobs": {"content": [{"token": H, "logprob": -1}]}}]}},
     {"id": "esc\u001b[2J\u001b]0;title\u0007", "input_ids": [1, 2, 3], "completion_ids": [60]}]
open(sys.argv[1] + "/xss.jsonl", "w").write("".join(json.dumps(x) + "\n" for x in L))
PY
"$GLM4V" score -m $M "$T/xss.jsonl" --html "$T/xss.html" -q >"$T/xss.table" 2>&1
grep -q -e '<script>alert' -e '<img src' "$T/xss.html" && no "model/case text inserted unescaped" || ok "case text escaped in the HTML"
grep -q $'\x1b' "$T/xss.table" && no "a case id's escape sequences reach the terminal table" ||
    ok "control characters of case text are not written to the terminal table"
mkdir -p build
python3 tests/score_html_check.py "$T/full.html" build/score_report.png
python3 tests/score_html_check.py "$T/xss.html" "$T/xss.png" | sed -E 's/^(ok - |not ok - |# skip - )/\1hostile case text: /'

# ---- cases files as editors and tools write them
# a UTF-8 byte order mark and CRLF line ends: the first case is a case like the others
printf '\xef\xbb\xbf{"id": "bom", "input_ids": [1, 2, 3], "completion_ids": [5, 6]}\r\n\r\n{"id": "crlf", "input_ids": [1, 2, 3], "completion_ids": [5, 6]}\r\n' >"$T/bom.jsonl"
"$GLM4V" score -m $M "$T/bom.jsonl" -o "$T/bom.json" -q >/dev/null 2>&1
python3 -c '
import json, sys; c = json.load(open(sys.argv[1]))["cases"]
ok = [x["id"] for x in c] == ["bom", "crlf"] and all(x["error"] is None and x["n_tokens"] == 2 for x in c)
print(("ok - " if ok else "not ok - ") + "a BOM and CRLF line ends: both cases scored (%s)" % [x["error"] for x in c])' "$T/bom.json"
# logprobs that are not finite numbers (1e999 reads as infinity) or not numbers: the case's error naming the field,
# not a position silently without their logprob (a null entry stays "not given")
python3 - "$T" <<'PY'
import json, sys
ids = {"input_ids": [1, 2, 3], "completion_ids": [5, 6]}
L = ['{"id": "inf", "input_ids": [1, 2, 3], "completion_ids": [5, 6], "logprobs": [1e999, -1.0]}',
     '{"id": "top-inf", "input_ids": [1, 2, 3], "completion_ids": [5, 6], "top_logprobs": [{"a": -1e999}, null]}',
     json.dumps({"id": "resp-str", "prompt": "x", "response": {"choices": [{"message": {"content": "ab"},
                 "logprobs": {"content": [{"token": "a", "logprob": "-0.5"}]}}]}}),
     json.dumps(dict(ids, id="null", logprobs=[None, -2.0]))]
open(sys.argv[1] + "/inf.jsonl", "w").write("\n".join(L) + "\n")
PY
"$GLM4V" score -m $M "$T/inf.jsonl" -o "$T/inf.json" -q >/dev/null 2>&1
python3 -c '
import json, sys; c = {x["id"]: x for x in json.load(open(sys.argv[1]))["cases"]}
want = {"inf": "logprobs[0]: logprob inf is not a finite number", "top-inf": "top_logprobs[0]: logprob -inf is not a finite",
        "resp-str": "response logprobs[0]: a logprob is not a number"}
for k, w in want.items():
    print(("ok - " if w in (c[k]["error"] or "") else "not ok - ") + "%s: error %r" % (k, c[k]["error"]))
x = c["null"]; p = x["positions"]
print(("ok - " if x["error"] is None and p[0]["their_logprob"] is None and p[1]["their_logprob"] == -2.0 else "not ok - ") + "a null logprob is not given, the next one compared")' "$T/inf.json"
# a vLLM-style response whose tokens split UTF-8 characters: each piece logged as "\ufffd" with the bytes of U+FFFD
# (the token decoded on its own); the completion is re-tokenized from the message text, giving HF's ids (the token
# bytes would give U+FFFD characters instead)
if python3 -c "import tokenizers" 2>/dev/null; then
    python3 - "$T" <<'PY'
import json, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file("tests/golden/ckpt/moe/tokenizer.json")
text = "héllo 世界, ça va?"
ids = tok.encode(text, add_special_tokens=False).ids
pieces = [tok.decode([i], skip_special_tokens=False) for i in ids]
content = [{"token": p, "logprob": -0.5, "bytes": list(p.encode("utf-8", errors="replace"))} for p in pieces]
case = {"id": "vllm-fffd", "prompt": "[gMASK]<sop><|user|>\nhi<|assistant|>\n",
        "response": {"choices": [{"message": {"content": text}, "logprobs": {"content": content}}]}}
open(sys.argv[1] + "/fffd.jsonl", "w").write(json.dumps(case) + "\n")
json.dump({"ids": ids, "split": sum("\ufffd" in p for p in pieces)}, open(sys.argv[1] + "/fffd.expected", "w"))
PY
    "$GLM4V" score -m tests/golden/ckpt/moe "$T/fffd.jsonl" -o "$T/fffd.json" -q >/dev/null 2>&1
    python3 -c '
import json, sys; x = json.load(open(sys.argv[1]))["cases"][0]; w = json.load(open(sys.argv[2]))
ok = w["split"] > 0 and x["error"] is None and [p["token"] for p in x["positions"]] == w["ids"] and "message text" in x["note"]
print(("ok - " if ok else "not ok - ") + "response tokens logged as U+FFFD (%d pieces): re-tokenized from the message text into HF'"'"'s %d ids" % (w["split"], len(w["ids"])))' "$T/fffd.json" "$T/fffd.expected"
else echo "# skip - U+FFFD response tokens: python3 tokenizers is not installed"; fi

# ---- the report's numbers against transformers' teacher forcing (tests/data/score/forced_*, written by
# tests/golden/make_score_forced.py): completions off HF's greedy path, logprobs and top lists of varying lengths
python3 - "$T" <<'PY'
import json, sys
T = sys.argv[1]; exp = json.load(open("tests/data/score/forced_expected.json"))
by = {}
for line in open("tests/data/score/forced_cases.jsonl"):
    c = json.loads(line); by.setdefault(exp[c["id"]]["ckpt"], []).append(line)
for i, (ck, lines) in enumerate(sorted(by.items())):
    open(f"{T}/forced{i}.jsonl", "w").write("".join(lines)); open(f"{T}/forced{i}.ckpt", "w").write(ck)
PY
for f in "$T"/forced*.jsonl; do
    "$GLM4V" score -m "$(cat "${f%.jsonl}.ckpt")" "$f" -o "${f%.jsonl}.json" -q >/dev/null 2>&1
done
python3 - "$T" <<'PY'
import glob, json, sys
T = sys.argv[1]; exp = json.load(open("tests/data/score/forced_expected.json"))
def check(cond, msg): print(("ok - " if cond else "not ok - ") + msg)
got = {c["id"]: c for f in sorted(glob.glob(T + "/forced*.json")) for c in json.load(open(f))["cases"]}
for cid, r in exp.items():
    c = got.get(cid)
    if not c or c["error"]:
        check(False, f"{cid}: scored ({c and c['error']})"); continue
    fd = c["first_divergence"]
    check((c["prompt_tokens"], c["agree"], c["near_ties"], fd and fd["position"]) ==
          (r["prompt_tokens"], r["agree"], r["near_ties"], r["first_divergence"]),
          f"{cid}: prompt tokens, agreement, near ties, first divergence = HF's ({r['agree']}/{len(r['positions'])}, first {r['first_divergence']})")
    exact = all(p[k] == q[k] for p, q in zip(c["positions"], r["positions"])
                for k in ("token", "rank", "top1", "in_our_topk", "ours_in_their_topk") if k in q)
    check(len(c["positions"]) == len(r["positions"]) and exact, f"{cid}: token, rank, top-1, top-k memberships = HF's")
    worst = 0.0
    for p, q in zip(c["positions"], r["positions"]):
        for k in ("logprob", "top1_logprob", "margin", "dlogprob", "kl"):
            if k in q:
                if (p[k] is None) != (q[k] is None): worst = float("inf")
                elif q[k] is not None: worst = max(worst, abs(p[k] - q[k]))
    check(worst <= 1e-5, f"{cid}: logprob, top-1 logprob, margin, dlogprob, KL within 1e-5 of HF's (max {worst:.2g})")
PY
