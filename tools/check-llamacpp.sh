#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-llamacpp.sh - llama.cpp checked against glm4v.c on the same GGUF files (optional; never in CI).
#
# usage: tools/check-llamacpp.sh LLAMA_CPP_DIR [--bench | --bench-only] [--tol T]
#   LLAMA_CPP_DIR: a llama.cpp source tree built with cmake into LLAMA_CPP_DIR/build (targets llama-debug,
#   llama-completion, llama-mtmd-cli; llama-bench for --bench), e.g. the vendor/llama.cpp of the llama-cpp-python
#   sdist: cmake -B build -DGGML_NATIVE=ON && cmake --build build -j --target llama-debug llama-completion \
#   llama-mtmd-cli llama-bench
#
# It converts our tiny checkpoints with that tree's own converter (tools/make_gguf_fixtures.sh: text + mmproj, BF16 and
# Q8_0), then per file:
#   prompt   llama-debug --save-logits on a raw prompt: its prompt token ids and last-position logits against ours
#            (./glm4v --raw --dump on the same file): tokens equal?, top-1 agreement, max |logit error| over max |logit|
#   greedy   llama-completion greedy (--temp 0) for N tokens against ours greedy on the same file: the texts, and
#            the byte where they first differ
#   image    llama-mtmd-cli greedy with an image and the same chat template (templates/glm45v.jinja) against ours:
#            the texts, for an image both processors resize (llama.cpp resamples its own way) and for one already on
#            the 28-pixel grid (no resampling: the vision tower, merger and M-RoPE compared alone)
# and prints a table. Exit status 1 when a prompt's tokens differ, its top-1 differs, or its relative logit error is
# above --tol (default 0.05: llama.cpp's CPU matmuls round activations to bf16 / q8_0, ours keep fp32); the greedy
# and image texts are reported, not judged (the tiny random models' logits are nearly flat: llama.cpp's activation
# rounding flips a near-tie after a few tokens); 2 on a usage or tool error.
# --bench: then, per GGUF file, llama-bench (-t THREADS -p 512 -n BENCH_N -r BENCH_R) and ours (./glm4v -t THREADS
# --raw on a ~540-token prompt, BENCH_N greedy tokens) on the same file and threads, one after the other: our speed
# over llama.cpp's for the prompt and for decode (ours: prompt tokens / prefill seconds, and the N - 1 decode steps
# of N generated tokens over their seconds, as llama-bench counts tg). The files: BENCH_GGUF (space-separated), by
# default the real-dimension bench checkpoint's Q8_0 and Q4_K conversions that `make bench` caches
# (build/bench-q8_0.gguf, build/bench-q4_k.gguf) when they exist, else the tiny Q8_0 files (a smoke test of the
# harness, dominated by per-token overheads). THREADS: BENCH_THREADS (default nproc); BENCH_N 16; BENCH_R 2.
# Every file is read once before (page cache warm for both). --bench-only: the bench alone (no conversion, no checks).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
LC=${1:-}
[ -n "$LC" ] && [ -d "$LC" ] || { echo "usage: tools/check-llamacpp.sh LLAMA_CPP_DIR [--bench] [--tol T]" >&2; exit 2; }
shift
BENCH=0 ONLY=0 TOL=0.05 N=12
while [ $# -gt 0 ]; do
    case $1 in
    --bench) BENCH=1 ;;
    --bench-only) BENCH=1 ONLY=1 ;;
    --tol) TOL=$2; shift ;;
    *) echo "check-llamacpp: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
B=$LC/build/bin
tools=(llama-debug llama-completion llama-mtmd-cli)
[ $ONLY = 1 ] && tools=()
[ $BENCH = 1 ] && tools+=(llama-bench)
for t in "${tools[@]}"; do
    [ -x "$B/$t" ] || { echo "check-llamacpp: $B/$t is not built" >&2; exit 2; }
done
[ -x ./glm4v ] && [ -x ./glm4v-compare ] || { echo "check-llamacpp: build glm4v first (make)" >&2; exit 2; }
commit=$(git -C "$LC" rev-parse --short HEAD 2>/dev/null || grep -o 'llama.cpp@[0-9a-f]*' "$LC/../../CHANGELOG.md" 2>/dev/null | head -n1)
echo "llama.cpp: $LC (${commit:-commit unknown})"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
bench_files=${BENCH_GGUF:-}
if [ $BENCH = 1 ] && [ -z "$bench_files" ] && [ -f build/bench-q8_0.gguf ]; then
    bench_files="build/bench-q8_0.gguf"
    [ -f build/bench-q4_k.gguf ] && bench_files+=" build/bench-q4_k.gguf"
fi
if [ $ONLY = 0 ] || [ -z "$bench_files" ]; then
    tools/make_gguf_fixtures.sh "$LC" "$T/g" >/dev/null || { echo "check-llamacpp: conversion failed" >&2; exit 2; }
fi
[ -z "$bench_files" ] && bench_files="$T/g/tiny-glm4v-moe-q8_0.gguf $T/g/tiny-glm4v-dense-q8_0.gguf"
# greedy: GLM's raw prompt format (llama-completion reads special tokens in the prompt); prompt logits: plain text
# (llama-debug tokenizes without special tokens)
PROMPT='[gMASK]<sop><|user|>
What is in the picture of the blue sky with clouds?<|assistant|>'
PLAIN='What is in the picture of the blue sky with clouds? A river, a tree and a cat sat on a mat.'
img=tests/data/images/photo_450x300.png
# same_text A B: "same text (N chars)" or where llama.cpp's output (A) and ours (B) part
same_text() {
    python3 - "$1" "$2" <<'PY'
import sys
# llama.cpp prints each token's bytes, ours the text HF's decode gives (an invalid UTF-8 sequence as U+FFFD)
a = open(sys.argv[1], "rb").read().replace(b"[end of text]", b"").decode("utf-8", "replace").strip()
b = open(sys.argv[2], "rb").read().decode("utf-8", "replace").strip()
if a == b: print("same text (%d chars)" % len(a))
else:
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    print("DIFFER at char %d: llama.cpp %r / ours %r" % (i, a[max(0, i - 8):i + 16], b[max(0, i - 8):i + 16]))
PY
}
# images: one the processors resize (450 x 300 -> 448 x 308 in both, by different resamplers) and one on the
# 28-pixel grid already (its 448 x 280 crop: no resampling anywhere)
python3 -c "from PIL import Image; Image.open('$img').convert('RGB').crop((0, 0, 448, 280)).save('$T/grid.png')" ||
    { echo "check-llamacpp: python3 with Pillow is needed" >&2; exit 2; }
fail=0
[ $ONLY = 0 ] && printf '%-32s %-8s %-7s %-6s %-12s %s\n' file case tokens top1 max_rel_err "greedy / note"
for arch in moe dense; do
    [ $ONLY = 1 ] && break
    for q in bf16 q8_0; do
        m=$T/g/tiny-glm4v-$arch-$q.gguf mm=$T/g/mmproj-tiny-glm4v-$arch-$q.gguf
        name=$(basename "$m")
        # prompt logits
        rm -rf "$T/ld"
        "$B/llama-debug" -m "$m" -p "$PLAIN" --save-logits --logits-output-dir "$T/ld" -t 2 >"$T/ld.log" 2>&1
        ./glm4v -m "$m" --raw -p "$PLAIN" -n 0 -q --dump "$T/ours.st" >/dev/null 2>"$T/err"
        res=$(python3 - "$T/ld" "$T/ours.st" <<'PY'
import glob, json, struct, sys
import numpy as np
d, st = sys.argv[1], sys.argv[2]
lb = glob.glob(d + "/llamacpp-*[!s].bin")
tb = glob.glob(d + "/llamacpp-*-tokens.bin")
if not lb or not tb:
    print("- - - llama-debug wrote no logits"); sys.exit()
ll = np.fromfile(lb[0], dtype="<f4"); lt = np.fromfile(tb[0], dtype="<i4").tolist()
with open(st, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); base = 8 + n
    def get(name, dt):
        e = h[name]; f.seek(base + e["data_offsets"][0]); b = f.read(e["data_offsets"][1] - e["data_offsets"][0])
        return np.frombuffer(b, dtype=dt).reshape(e["shape"])
    ids = get("input_ids", "<i8").reshape(-1).tolist(); lg = get("logits", "<f4")
ours = lg[-1]
V = min(len(ours), len(ll))
tok = "equal" if ids == lt else "DIFFER"
top1 = "agree" if int(np.argmax(ours[:V])) == int(np.argmax(ll[:V])) else "DIFFER"
rel = float(np.max(np.abs(ours[:V] - ll[:V])) / max(np.max(np.abs(ours[:V])), 1e-30))
note = "" if tok == "equal" else f"ours {ids[:6]}... llama.cpp {lt[:6]}..."
print(f"{tok} {top1} {rel:.3g} {note}")
PY
)
        read -r tok top1 rel note <<<"$res"
        if [ "$tok" != equal ] || [ "$top1" != agree ] || python3 -c "import sys; sys.exit(0 if float('$rel') > $TOL else 1)" 2>/dev/null; then fail=1; fi
        # greedy text
        "$B/llama-completion" -m "$m" -p "$PROMPT" -n $N --temp 0 --top-k 1 -no-cnv --no-display-prompt -t 2 --seed 0 \
            --special --no-warmup </dev/null >"$T/lc.txt" 2>"$T/lc.log"
        ./glm4v -m "$m" --raw -p "$PROMPT" -n $N --temp 0 -q >"$T/our.txt" 2>"$T/err"
        g=$(same_text "$T/lc.txt" "$T/our.txt")
        printf '%-32s %-8s %-7s %-6s %-12s %s %s\n' "$name" prompt "$tok" "$top1" "$rel" "$g" "$note"
        # images (reported)
        for im in "$img" "$T/grid.png"; do
            case $im in *grid.png) what="image 448x280 (no resize)" ;; *) what="image 450x300 (resized)" ;; esac
            "$B/llama-mtmd-cli" -m "$m" --mmproj "$mm" --image "$im" -p "What is in the picture?" -n $N --temp 0 \
                --top-k 1 -t 2 --jinja --chat-template "$(cat templates/glm45v.jinja)" </dev/null >"$T/mt.txt" 2>"$T/mt.log"
            rc=$?
            ./glm4v -m "$m" --mmproj "$mm" -i "$im" -p "What is in the picture?" -n $N --temp 0 -q >"$T/oi.txt" 2>"$T/err"
            if [ $rc -ne 0 ]; then
                printf '%-32s %s: llama-mtmd-cli failed: %s\n' "$name" "$what" "$(grep -iE 'error|fail' "$T/mt.log" | tail -n1 | cut -c1-120)"
            else
                printf '%-32s %s: %s\n' "$name" "$what" "$(same_text "$T/mt.txt" "$T/oi.txt")"
            fi
        done
    done
done
if [ $BENCH = 1 ]; then
    th=${BENCH_THREADS:-$(nproc)} bn=${BENCH_N:-16} br=${BENCH_R:-2}
    words=$(yes 'the cat sat on a mat' | head -n 60 | tr '\n' ' ')
    echo "bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $th threads; llama-bench -p 512 -n $bn -r $br"
    for m in $bench_files; do
        [ -f "$m" ] || { echo "check-llamacpp: no file $m" >&2; exit 2; }
        cat "$m" >/dev/null
        read -r lp ld < <("$B/llama-bench" -m "$m" -t "$th" -p 512 -n "$bn" -r "$br" -o csv 2>"$T/lb.log" | python3 -c '
import csv, sys
v = {("p" if int(r["n_gen"]) == 0 else "d"): float(r["avg_ts"]) for r in csv.DictReader(sys.stdin)}
print(v.get("p", 0), v.get("d", 0))')
        line=$(OMP_NUM_THREADS=$th ./glm4v -m "$m" --raw -p "$words" -n "$bn" --temp 0 -t "$th" 2>&1 >/dev/null | grep 'generated' | tail -n1)
        python3 - "$line" "${lp:-0}" "${ld:-0}" "$(basename "$m")" "$th" <<'PY'
import re, sys
line, lp, ld, name, th = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
m = re.search(r"prompt (\d+) tokens.* in ([0-9.]+) s .*generated (\d+) tokens in ([0-9.]+) s", line)
if not m:
    print(f"{name}: our run printed no timing line: {line!r}"); sys.exit()
n_p, t_p, n_g, t_g = int(m.group(1)), float(m.group(2)), int(m.group(3)), float(m.group(4))
op = n_p / t_p if t_p > 0 else 0.0
od = (n_g - 1) / t_g if n_g > 1 and t_g > 0 else 0.0
r = lambda a, b: "%.2f" % (a / b) if b else "?"
print(f"{name}, {th} threads: prompt ours {op:.1f} tok/s ({n_p} tokens) / llama.cpp {lp:.1f} (512) = {r(op, lp)}; "
      f"decode ours {od:.2f} tok/s ({n_g - 1} steps) / llama.cpp {ld:.2f} = {r(od, ld)}")
PY
    done
fi
[ $ONLY = 1 ] && exit 0
[ $fail = 0 ] && echo "check-llamacpp: llama.cpp agrees with glm4v.c within --tol $TOL" ||
    echo "check-llamacpp: divergence beyond --tol $TOL (see the table)"
exit $fail
