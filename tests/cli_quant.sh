#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_quant.sh - quantised checkpoints (tests/golden/quant, made by tests/golden/make_quant_cases.py): the CLI's dump
# against the HF references with glm4v-compare at its default fp32 tolerance (rtol 1e-4): hidden states, router
# outputs, the 12 greedy tokens and their logits; byte-identical dumps for 1 and 2 threads, AVX2 and portable C, and
# for a prompt prefilled token by token, in chunks of 7 or in one chunk.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
C=tests/golden/quant/cases
for args in $C/*.args; do
    name=$(basename "$args" .args)
    mapfile -t A <"$args"
    if [ -f "$C/$name.quantize" ]; then # the checkpoint is ./glm4v quantize's output: made here, then used
        mapfile -t Q <"$C/$name.quantize"
        rm -rf "$T/$name.q"
        if ! "$GLM4V" quantize "${Q[0]}" "$T/$name.q" "${Q[@]:1}" -q 2>"$T/$name.qerr"; then
            echo "not ok - $name: glm4v quantize failed: $(tail -n1 "$T/$name.qerr")"
            continue
        fi
        echo "ok - $name: glm4v quantize ${Q[*]:1} wrote a folder"
        A=("${A[@]/@QUANTIZED@/$T/$name.q}")
    fi
    if [ -f "$C/$name.frames" ]; then # the video's frames, as a folder in file-name order
        mkdir -p "$T/$name.frames"
        while read -r f; do cp "$f" "$T/$name.frames/"; done <"$C/$name.frames"
        A+=(--video "$T/$name.frames")
    fi
    if ! "$GLM4V" "${A[@]}" -n 12 -q --dump "$T/$name.st" >"$T/$name.out" 2>"$T/$name.err"; then
        echo "not ok - $name: glm4v failed: $(tail -n1 "$T/$name.err")"
        continue
    fi
    if "$COMPARE" "$T/$name.st" "$C/$name.safetensors" >"$T/$name.cmp" 2>&1; then
        echo "ok - $name: dump matches HF ($(grep -c '^PASS' "$T/$name.cmp") tensors compared)"
    else
        echo "not ok - $name: $(grep -E 'first divergence|^FAIL' "$T/$name.cmp" | head -n 3 | tr '\n' ' ')"
    fi
    required="input_ids hidden_states.1 generated_ids generated_logits"
    case $name in moe*) required="$required model.language_model.layers.1.mlp.gate.out0" ;; esac
    case $name in *image*) required="$required image_grid_thw" ;; *video*) required="$required video_grid_thw" ;; esac
    for t in $required; do
        grep -q "^PASS  *$t " "$T/$name.cmp" && echo "ok - $name: $t equal" || echo "not ok - $name: $t not compared"
    done
done

# determinism: the same bytes for any thread count and instruction set (FP8 with activation quantisation, int4;
# GLM4V_ISA=avx512: the AVX-512 F / BW feature set of Skylake-SP, where FP8 x FP8 decodes with the AVX2 kernel)
for name in moe-fp8-dynamic.text moe-w4a16-g32.image; do
    mapfile -t A <"$C/$name.args"
    "$GLM4V" "${A[@]}" -n 4 -q -t 1 --dump "$T/d1.st" >/dev/null 2>&1
    "$GLM4V" "${A[@]}" -n 4 -q -t 2 --dump "$T/d2.st" >/dev/null 2>&1
    GLM4V_ISA=avx2 "$GLM4V" "${A[@]}" -n 4 -q -t 2 --dump "$T/d3.st" >/dev/null 2>&1
    GLM4V_PORTABLE=1 "$GLM4V" "${A[@]}" -n 4 -q -t 2 --dump "$T/d4.st" >/dev/null 2>&1
    GLM4V_ISA=avx512 "$GLM4V" "${A[@]}" -n 4 -q -t 2 --dump "$T/d5.st" >/dev/null 2>&1
    for v in "d2 2 threads" "d3 AVX2" "d4 portable C" "d5 AVX-512 without BF16 / VBMI / VNNI"; do
        f=${v%% *}
        if [ -s "$T/$f.st" ] && "$COMPARE" "$T/$f.st" "$T/d1.st" --rtol 0 --atol 0 >"$T/cmp" 2>&1; then
            echo "ok - $name: ${v#* } gives the bits of 1 thread with AVX-512 ($(grep -c '^PASS' "$T/cmp") tensors)"
        else
            echo "not ok - $name: ${v#* } differs: $(grep -E '^FAIL|divergence' "$T/cmp" | head -n 2 | tr '\n' ' ')"
        fi
    done
done

# batch invariance on quantised weights: the prompt prefilled token by token (--chunk 1: every Linear on the decode
# kernels) and in chunks of 7 with 2 threads give the dump of one 512-token chunk (the batch path: rows dequantised
# block by block), byte for byte (int4 sums in octet order on both paths, FP8 / int8 in dot_f32's)
for name in moe-w4a16-g32.image moe-fp8-dynamic.text dense-w4a16-g128-asym.text dense-w8a16.text; do
    mapfile -t A <"$C/$name.args"
    "$GLM4V" "${A[@]}" -n 3 -q --chunk 512 -t 1 --dump "$T/c512.st" >/dev/null 2>&1
    for v in "1 1" "7 2"; do
        rm -f "$T/cv.st"
        "$GLM4V" "${A[@]}" -n 3 -q --chunk ${v% *} -t ${v#* } --dump "$T/cv.st" >/dev/null 2>"$T/cv.err"
        [ -s "$T/c512.st" ] && cmp -s "$T/cv.st" "$T/c512.st" &&
            echo "ok - $name: --chunk ${v% *} -t ${v#* }: dump byte-identical to --chunk 512" ||
            echo "not ok - $name: --chunk ${v% *} -t ${v#* }: dump differs from --chunk 512 $(tail -n1 "$T/cv.err")"
    done
done

# a sharded folder in the released layout (index, 2 shards, F32 router bias, unused MTP layer) quantises to the same
# model as the single-file one
"$GLM4V" quantize tests/golden/ckpt/moe-released "$T/rel" --scheme fp8 -q 2>"$T/qe" &&
    "$GLM4V" quantize tests/golden/ckpt/moe "$T/one" --scheme fp8 -q 2>>"$T/qe" &&
    "$GLM4V" -m "$T/rel" -p "hi" -n 3 -q --dump "$T/rel.st" >/dev/null 2>>"$T/qe" &&
    "$GLM4V" -m "$T/one" -p "hi" -n 3 -q --dump "$T/one.st" >/dev/null 2>>"$T/qe" &&
    [ -f "$T/rel/model.safetensors.index.json" ] && "$COMPARE" "$T/rel.st" "$T/one.st" --rtol 0 --atol 0 >/dev/null 2>&1 &&
    echo "ok - quantize: a sharded released-layout folder gives the single-file folder's model (bit-identical dump)" ||
    echo "not ok - quantize of a sharded folder: $(tail -n1 "$T/qe")"

# malformed quantised folders (config edited so that it disagrees with the tensors): exit 1, one line naming the tensor
bad_case() { # name source-folder sed-expression expected-text
    rm -rf "$T/bad" && cp -r "tests/golden/quant/ckpt/$2" "$T/bad" && sed -i "$3" "$T/bad/config.json"
    "$GLM4V" -m "$T/bad" -p hi -n 1 -q >/dev/null 2>"$T/bad.err"
    local rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/bad.err")" -eq 1 ] && grep -q "$4" "$T/bad.err"; then
        echo "ok - bad input: $1: $(cat "$T/bad.err")"
    else
        echo "not ok - bad input: $1: exit $rc: $(tail -n2 "$T/bad.err" | tr '\n' ' ')"
    fi
}
bad_case "group that does not divide" moe-w4a16-g32 's/"group_size": 32/"group_size": 24/' "does not divide"
bad_case "group size the scales disagree with" moe-w4a16-g32 's/"group_size": 32/"group_size": 64/' "weight_scale' has shape"
bad_case "FP8 config over int4 tensors" moe-w4a16-g32 's/"type": "int"/"type": "float"/; s/"num_bits": 4/"num_bits": 8/; s/"pack-quantized"/"float-quantized"/' "has a weight_packed but the format is not pack-quantized"
bad_case "int8 tensors under float-quantized" moe-w8a8 's/"int-quantized"/"float-quantized"/' "format float-quantized with int"
bad_case "static activation scales" moe-fp8-dynamic 's/"dynamic": true/"dynamic": false/' "only dynamic symmetric"
bad_case "quantised layers in the ignore list" moe-fp8-dynamic 's/"lm_head",/"lm_head", "re:.*self_attn.*",/' "ignore list names"

# int4 groups that divide some widths only: those Linears stay bf16 and are listed in `ignore` (the dense model's
# down_proj is 256 wide, the others 128: --group 256 quantises down_proj only); the result runs
"$GLM4V" quantize weights/tiny-glm4v-dense "$T/g256" --scheme int4 --group 256 2>"$T/qe" &&
    grep -q "kept as BF16 (ignored)" "$T/qe" && grep -q '"model.language_model.layers.0.self_attn.q_proj"' "$T/g256/config.json" &&
    "$GLM4V" -m "$T/g256" -p hi -n 2 -q >/dev/null 2>>"$T/qe" &&
    echo "ok - quantize: Linears the group does not divide stay bf16, listed in ignore; the folder runs" ||
    echo "not ok - quantize --group 256: $(tail -n1 "$T/qe")"

# quantize refuses a non-empty output folder and leaves no half-written one behind
mkdir -p "$T/full" && touch "$T/full/x"
"$GLM4V" quantize weights/tiny-glm4v-moe "$T/full" --scheme fp8 -q 2>"$T/qe"
[ $? -eq 1 ] && grep -q "not empty" "$T/qe" && [ ! -e "$T/full.tmp" ] && echo "ok - quantize: non-empty OUT_DIR refused" ||
    echo "not ok - quantize: non-empty OUT_DIR not refused: $(tail -n1 "$T/qe")"
"$GLM4V" quantize weights/tiny-glm4v-dense "$T/g48" --scheme int4 --group 48 -q 2>"$T/qe"
[ $? -eq 1 ] && grep -q "divides none" "$T/qe" && [ ! -e "$T/g48" ] && [ ! -e "$T/g48.tmp" ] &&
    echo "ok - quantize: a group that divides no width fails with nothing left behind" ||
    echo "not ok - quantize --group 48: $(tail -n1 "$T/qe")"
"$GLM4V" quantize "$T/moe-ours-fp8.text.q" "$T/again" --scheme int4 -q 2>"$T/qe"
[ $? -eq 1 ] && grep -q "already quantised" "$T/qe" && echo "ok - quantize: an already quantised folder refused" ||
    echo "not ok - quantize of a quantised folder: $(tail -n1 "$T/qe")"
"$GLM4V" quantize weights/tiny-glm4v-moe "$T/x" --scheme int3 2>/dev/null
[ $? -eq 2 ] && echo "ok - quantize --scheme int3: usage error" || echo "not ok - quantize --scheme int3 accepted"
# SIGTERM while the shard is being written (a 95 MB synthetic checkpoint: 300 layers of the tiny dimensions): exit 1
# with one line and neither OUT_DIR nor OUT_DIR.tmp left (or, if it finished first, the complete folder)
if ./tools/synth_ckpt --preset tiny --layers 300 --out "$T/big" >/dev/null 2>&1; then
    "$GLM4V" quantize "$T/big" "$T/bigq" --scheme int4 --group 32 -q 2>"$T/qe" &
    pid=$!
    for _ in $(seq 500); do [ -e "$T/bigq.tmp/model.safetensors" ] && break; sleep 0.01; done
    kill -TERM $pid 2>/dev/null
    wait $pid
    rc=$?
    if [ $rc -eq 1 ] && [ ! -e "$T/bigq" ] && [ ! -e "$T/bigq.tmp" ] && [ "$(wc -l <"$T/qe")" -eq 1 ] &&
        grep -q "interrupted by signal 15" "$T/qe"; then
        echo "ok - quantize: SIGTERM mid-write: exit 1, one line, no folder left: $(cat "$T/qe")"
    elif [ $rc -eq 0 ] && [ -f "$T/bigq/config.json" ] && [ ! -e "$T/bigq.tmp" ]; then
        echo "ok - quantize: finished before SIGTERM arrived: the complete folder, no .tmp # (interruption not exercised)"
    else
        echo "not ok - quantize: SIGTERM mid-write: exit $rc, left: $(ls -d "$T"/bigq* 2>/dev/null | tr '\n' ' ')$(tail -n1 "$T/qe")"
    fi
    rm -rf "$T/big" "$T/bigq"
else
    echo "not ok - tools/synth_ckpt failed"
fi

# --act-quant off changes an FP8-dynamic run, a bad value is a usage error
mapfile -t A <"$C/moe-fp8-dynamic.text.args"
"$GLM4V" "${A[@]}" -n 1 -q --act-quant off --dump "$T/off.st" >/dev/null 2>&1
"$GLM4V" "${A[@]}" -n 1 -q --dump "$T/on.st" >/dev/null 2>&1
[ -s "$T/off.st" ] && ! "$COMPARE" "$T/off.st" "$T/on.st" --rtol 0 --atol 0 >/dev/null 2>&1 && echo "ok - --act-quant off computes with fp32 activations" ||
    echo "not ok - --act-quant off made no difference"
"$GLM4V" "${A[@]}" -n 1 -q --act-quant maybe >/dev/null 2>"$T/bad.err"
[ $? -eq 2 ] && grep -q "act-quant" "$T/bad.err" && echo "ok - --act-quant maybe: usage error" ||
    echo "not ok - --act-quant maybe not refused"
