#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.sh [--hf] [--full] - `make bench` (`make bench-hf`, `make bench-full`: plus a 32768-token prefill): writes the synthetic checkpoint (GLM-4.5V layer dimensions: hidden
# 4096, 96/8 heads of 128, one dense layer of 10944, one MoE layer of 128 experts x 1408 with top-8 and a shared
# expert, the full 24-block vision tower and merger; vocab 1088; ~7 GB) into build/bench once, then measures the
# machine (bench micro), our code paths (bench model) and with --hf HuggingFace transformers on the same
# checkpoint, and prints one key=value per line with the ratios. Threads: OMP_NUM_THREADS (default: every CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_BIN:-build/glm4v-bench}
DIR=${BENCH_DIR:-build/bench}
DECODE=${BENCH_DECODE:-36}
ARGS="--preset realdims --seed 1"
want="$ARGS $(sha256sum tools/synth_ckpt.c | cut -c1-16)"
if [ ! -f "$DIR/model.safetensors" ] || [ "$(cat "$DIR/.bench-stamp" 2>/dev/null)" != "$want" ]; then
    echo "bench: writing the synthetic checkpoint to $DIR (about 7 GB, once)" >&2
    rm -rf "$DIR"
    ./tools/synth_ckpt $ARGS --out "$DIR" >&2
    # drop the freshly written file from the page cache: the run then reads it from disk as a served model does, and
    # through glm4v's MADV_HUGEPAGE mapping it gets 2 MB pages (pages cached by the writes stay small)
    sync "$DIR/model.safetensors"
    dd if="$DIR/model.safetensors" iflag=nocache count=0 status=none || true
    echo "$want" >"$DIR/.bench-stamp"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "machine=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs, $(free -g | awk '/Mem:/{print $2}') GB"
# the FMA and sgemm ceilings are measured before and after the model (best of both): other jobs on a shared machine
# lower them. stream_read_gbs comes from the model run, sampled between its decode windows; the micro runs' STREAM
# figure is printed as stream_read_gbs_micro
m1=$("$BIN" micro)
"$BIN" model "$DIR" "$DECODE" | tee -a "$out"
"$BIN" serve "$DIR" "$DECODE" | tee -a "$out"
m2=$("$BIN" micro)
printf '%s\n%s\n' "$m1" "$m2" | grep -v '^threads=' | sed 's/^stream_read_gbs=/stream_read_gbs_micro=/' |
    awk -F= '{ if (!($1 in v)) k[n++] = $1; if (!($1 in v) || $2 + 0 > v[$1] + 0) v[$1] = $2 }
             END { for (i = 0; i < n; i++) print k[i] "=" v[k[i]] }' | tee -a "$out"
# quantised formats (BENCH_QUANT=0 skips): the checkpoint written by ./glm4v quantize once per format beside the bf16
# one (FP8 per channel + dynamic FP8 activations, int8 per channel, int4 in groups of 128), decoded on the same
# tokens: decode_<f>_tok_s, _weight_gbs, _speedup over bf16, _logits_nmse against bf16
QBIN=${BENCH_QUANT_BIN:-build/glm4v-bench-quant}
if [ "${BENCH_QUANT:-1}" != 0 ] && [ -x "$QBIN" ]; then
    qargs=()
    for s in fp8 int8 int4; do
        qd="$DIR-$s"
        if [ ! -f "$qd/model.safetensors" ] || [ "$(cat "$qd/.bench-stamp" 2>/dev/null)" != "$want $s" ]; then
            echo "bench: writing the $s checkpoint to $qd (once)" >&2
            rm -rf "$qd" "$qd.tmp"
            ./glm4v quantize "$DIR" "$qd" --scheme $s --group 128 -q >&2
            echo "$want $s" >"$qd/.bench-stamp"
        fi
        qargs+=("$s=$qd")
    done
    "$QBIN" "${BENCH_QUANT_STEPS:-12}" "$DIR" "${qargs[@]}" | tee -a "$out"
    # each quantised checkpoint alone in a process: decode_<f>_peak_rss_mb beside its mapped weights and KV cache
    for s in fp8 int8 int4; do
        "$QBIN" --rss 4 "$DIR-$s" | sed "s/^/decode_${s}_/" | tee -a "$out"
    done
fi
# GGUF (LLAMA_CPP_DIR: a llama.cpp tree built with cmake; BENCH_GGUF=0 skips): the checkpoint converted once by
# llama.cpp's own converter to Q8_0 (tools/gguf_convert.py) and requantised by its llama-quantize to pure Q4_K
# (--pure: every matrix Q4_K, no mixture; llama-quantize gives the rows of 1408 and 10944 columns, not multiples of
# 256, its Q4_K fallback Q5_0), cached beside it (or in BENCH_GGUF_DIR); decoded on the same tokens as the other
# formats: decode_q8_0_tok_s, decode_q4_k_tok_s, their _weight_gbs, _speedup over bf16, _logits_nmse, _bw_ratio (each
# step's GB/s over the STREAM passes either side of it, bench_stream.h), and below _vs_bf16_gbs (over
# decode_bf16_weight_gbs of the quantised run above).
# The conversion takes ~3 min (Q8_0, 2.8 GB) + ~4.5 min (Q4_K, 1.6 GB) on 2 busy vCPUs.
LC=${LLAMA_CPP_DIR:-}
if [ "${BENCH_GGUF:-1}" != 0 ] && [ -x "$QBIN" ] && [ -n "$LC" ] && [ -x "$LC/build/bin/llama-quantize" ]; then
    gdir=${BENCH_GGUF_DIR:-$(dirname "$DIR")}
    q8="$gdir/$(basename "$DIR")-q8_0.gguf" q4="$gdir/$(basename "$DIR")-q4_k.gguf"
    if [ ! -f "$q8" ] || [ "$(cat "$q8.stamp" 2>/dev/null)" != "$want" ]; then
        echo "bench: converting the checkpoint to $q8 with $LC's convert_hf_to_gguf.py (once)" >&2
        python3 tools/gguf_convert.py "$LC" "$DIR" --outtype q8_0 --outfile "$q8" >&2 && echo "$want" >"$q8.stamp"
        rm -f "$q4"
    fi
    if [ ! -f "$q4" ] && [ -f "$q8" ]; then
        echo "bench: $q4 with llama-quantize --pure --allow-requantize Q4_K (from the Q8_0 file, once)" >&2
        "$LC/build/bin/llama-quantize" --pure --allow-requantize "$q8" "$q4" Q4_K >&2 || rm -f "$q4"
    fi
    gargs=()
    [ -f "$q8" ] && gargs+=("q8_0=$q8")
    [ -f "$q4" ] && gargs+=("q4_k=$q4")
    [ ${#gargs[@]} -gt 0 ] && "$QBIN" "${BENCH_QUANT_STEPS:-12}" "$DIR" "${gargs[@]}" | grep -v '^decode_q_steps=\|^decode_bf16_' | tee -a "$out"
elif [ "${BENCH_GGUF:-1}" != 0 ]; then
    echo "bench: GGUF figures skipped (set LLAMA_CPP_DIR to a llama.cpp tree with build/bin/llama-quantize)" >&2
fi
for a in "$@"; do
    case "$a" in
    --hf) python3 bench/bench_hf.py "$DIR" "$DECODE" | tee -a "$out" ;;
    # the long prefill (BENCH_LONG tokens, default 32768; BENCH_LONG_COMPUTE f32 or bf16): minutes to tens of minutes
    --full) "$BIN" long "$DIR" "${BENCH_LONG:-32768}" "${BENCH_LONG_COMPUTE:-f32}" | tee -a "$out" ;;
    esac
done
# ratios from the numbers of this run
awk -F= '{v[$1] = $2}
END {
    split("fp8 int8 int4 q8_0 q4_k", q, " ")
    for (i = 4; i <= 5; i++)
        if (v["decode_bf16_weight_gbs"] > 0 && v["decode_" q[i] "_weight_gbs"] != "")
            printf "decode_%s_vs_bf16_gbs=%.2f\n", q[i], v["decode_" q[i] "_weight_gbs"] / v["decode_bf16_weight_gbs"]
    if (v["bf16_dot_peak_gflops"] > 0) {
        if (v["prefill_bf16_gflops"] != "") printf "prefill_bf16_flops_ratio=%.2f\n", v["prefill_bf16_gflops"] / v["bf16_dot_peak_gflops"]
        if (v["vision_bf16_gflops"] != "") printf "vision_bf16_flops_ratio=%.2f\n", v["vision_bf16_gflops"] / v["bf16_dot_peak_gflops"]
    }
    if (v["prefill_tok_s"] > 0 && v["prefill_bf16_tok_s"] > 0) printf "prefill_bf16_speedup=%.2f\n", v["prefill_bf16_tok_s"] / v["prefill_tok_s"]
    if (v["vision_bf16_s"] > 0) printf "vision_bf16_speedup=%.2f\n", v["vision_s"] / v["vision_bf16_s"]
    if (v["hf_prefill_tok_s"] > 0 && v["prefill_bf16_tok_s"] > 0)
        printf "prefill_bf16_speedup_vs_hf=%.2f\n", v["prefill_bf16_tok_s"] / v["hf_prefill_tok_s"]
    if (v["hf_vision_s"] > 0 && v["vision_bf16_s"] > 0) {
        printf "vision_speedup_vs_hf=%.2f\n", v["hf_vision_s"] / v["vision_s"]
        printf "vision_bf16_speedup_vs_hf=%.2f\n", v["hf_vision_s"] / v["vision_bf16_s"]
    }
    if (v["long_prefill_weights_mb"] + v["long_prefill_kv_mb"] > 0)
        printf "long_prefill_rss_over_weights_kv=%.3f\n", v["long_prefill_peak_rss_mb"] / (v["long_prefill_weights_mb"] + v["long_prefill_kv_mb"])
    if (v["fma_peak_gflops"] > 0) {
        printf "prefill_flops_ratio=%.2f\n", v["prefill_gflops"] / v["fma_peak_gflops"]
        if (v["vision_gflops"] != "") printf "vision_flops_ratio=%.2f\n", v["vision_gflops"] / v["fma_peak_gflops"]
    }
    split("fp8 int8 int4", qf, " ")
    for (i = 1; i <= 3; i++)
        if (v["decode_" qf[i] "_weights_mb"] + v["decode_" qf[i] "_kv_cache_mb"] > 0)
            printf "decode_%s_rss_over_weights_kv=%.3f\n", qf[i], v["decode_" qf[i] "_peak_rss_mb"] / (v["decode_" qf[i] "_weights_mb"] + v["decode_" qf[i] "_kv_cache_mb"])
    if (v["weights_mb"] + v["kv_cache_mb"] > 0)
        printf "rss_over_weights_kv=%.3f\n", v["peak_rss_mb"] / (v["weights_mb"] + v["kv_cache_mb"])
    if (v["hf_decode_tok_s"] > 0) printf "decode_speedup_vs_hf=%.2f\n", v["decode_tok_s_mean"] / v["hf_decode_tok_s"]
    if (v["hf_prefill_tok_s"] > 0) printf "prefill_speedup_vs_hf=%.2f\n", v["prefill_tok_s"] / v["hf_prefill_tok_s"]
}' "$out"
