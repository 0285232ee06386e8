#!/usr/bin/env bash
# cli_amx.sh - the AMX chain of `--compute bf16` (ops_amx.h: opt-in, untested on hardware) through whole runs, on its
# software tiles (GLM4V_AMX=emulate, CPUs with AVX512_BF16): within bf16 tolerance of transformers exactly as the
# default bf16 chain must be (cli_bf16.sh's checks, run again), batch-invariant over chunk sizes and threads (its own
# bits: the dump names the path), and GLM4V_AMX=1 on a CPU without AMX says so in one line and changes nothing.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if ! grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then
    echo "ok - # SKIP cli_amx: no AVX512_BF16 here (GLM4V_AMX=emulate reads the avx512bf16 path's input rows)"
    exit 0
fi
# accuracy against HF fp32 and PyTorch bf16, as cli_bf16.sh checks the default chain
GLM4V_AMX=emulate bash tests/cli_bf16.sh | sed 's/^\(not \)\{0,1\}ok - /&AMX chain (emulated): /'
img=tests/data/images/synth_97x61.png
awk 'BEGIN { split("the cat sat on a mat and looked at picture of blue sky with clouds river tree", w, " ")
    s = 3; for (i = 0; i < 60; i++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%s ", w[1 + int(s / 65536) % 17] } }' >"$T/p.txt"
# run NAME ENV CHUNK THREADS: dump to $T/NAME.st (the moe model, text + image, 3 greedy tokens)
run() {
    env $2 "$GLM4V" -m weights/tiny-glm4v-moe -f "$T/p.txt" -i $img -n 3 -q --chunk "$3" -t "$4" --compute bf16 \
        --dump "$T/$1.st" >/dev/null 2>"$T/$1.err" || { echo "not ok - $1: run failed: $(tail -n1 "$T/$1.err")"; return 1; }
}
path() { head -c 200000 "$1" | tr -d '\0' | grep -o '"compute.path":"[^"]*"' | cut -d'"' -f4; }
run ref GLM4V_AMX=emulate 512 2 || exit 0
p=$(path "$T/ref.st")
[ "$p" = amx-bf16-emulated ] && echo "ok - AMX chain: the dump names the path ($p)" || echo "not ok - AMX chain: compute.path '$p'"
t=1
for c in 1 7 64; do
    t=$((3 - t))
    run c$c GLM4V_AMX=emulate $c $t || continue
    cmp -s "$T/c$c.st" "$T/ref.st" && echo "ok - AMX chain (emulated): --chunk $c -t $t: dump byte-identical to --chunk 512 -t 2" ||
        echo "not ok - AMX chain (emulated): --chunk $c -t $t: dump differs from --chunk 512 -t 2"
done
# GLM4V_AMX=1 without AMX tiles: one line, the default bf16 path's dump
if ! grep -qw amx_bf16 /proc/cpuinfo 2>/dev/null; then
    run dp "" 512 2 && run on GLM4V_AMX=1 512 2 &&
        { cmp -s "$T/dp.st" "$T/on.st" && [ "$(wc -l <"$T/on.err")" -eq 1 ] && grep -q 'GLM4V_AMX' "$T/on.err" &&
            echo "ok - GLM4V_AMX=1 without AMX tiles: one line ($(cat "$T/on.err")), the avx512bf16 dump" ||
            echo "not ok - GLM4V_AMX=1 without AMX tiles: $(head -c 300 "$T/on.err")"; }
fi
