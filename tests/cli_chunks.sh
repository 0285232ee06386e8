#!/usr/bin/env bash
# cli_chunks.sh - batch invariance: one prompt (text + an image) prefilled in chunks of 1 (token by token: the decode
# path), 7, 64, 191, 192, 512 and 2048 tokens, with 1 or 2 threads, then 4 greedy tokens, gives a byte-identical dump
# (every Linear and attention computes each row as if it were alone); with AVX2 only (GLM4V_ISA=avx2) and the portable
# C (GLM4V_PORTABLE=1) the dump's tensors are bit-identical too (compared tensor by tensor: the provenance names the
# instruction set). The long prompt (~2150 tokens) runs on AVX-512; the other instruction sets, slower, on a short one.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# deterministic word salad: `words N SEED`
words() {
    awk -v n="$1" -v s="$2" 'BEGIN {
        split("the cat sat on a mat and looked at picture of blue sky with clouds river tree", w, " ")
        for (i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%s ", w[1 + int(s / 65536) % 17] }
        print "" }'
}
words 950 1 >"$T/long.txt"
words 90 2 >"$T/short.txt"
img=tests/data/images/synth_97x61.png
# run NAME ENV PROMPT CHUNK THREADS MODEL [FLAGS]: dump to $T/NAME.st
run() {
    env $2 "$GLM4V" -m "weights/$6" -f "$T/$3.txt" -i $img -n 4 -q --chunk "$4" -t "$5" --dump "$T/$1.st" ${7:-} \
        >/dev/null 2>"$T/err" || { echo "not ok - $1: run failed: $(tail -n1 "$T/err")"; return 1; }
}
ntok() { head -c 100000 "$1" | tr -d '\0' | grep -o '"input_ids":{"dtype":"I64","shape":\[[0-9]*' | grep -o '[0-9]*$'; }
for model in tiny-glm4v-moe tiny-glm4v-dense; do
    m=${model#tiny-glm4v-}
    # AVX-512 (or the best the machine has), long prompt: the reference is chunk 512 with 2 threads
    run $m-ref "" long 512 2 $model || continue
    n=$(ntok "$T/$m-ref.st")
    [ "${n:-0}" -gt 2048 ] && echo "ok - $m: long prompt of $n tokens (> 2048)" || echo "not ok - $m: prompt of ${n:-?} tokens"
    chunks="1 7 64 191 192 2048"
    [ $m = dense ] && chunks="1 191 192 2048"
    t=1
    for c in $chunks; do
        t=$((3 - t))
        run $m-c$c "" long $c $t $model || continue
        cmp -s "$T/$m-c$c.st" "$T/$m-ref.st" && echo "ok - $m: --chunk $c -t $t: dump byte-identical to --chunk 512 -t 2" ||
            echo "not ok - $m: --chunk $c -t $t: dump differs from --chunk 512 -t 2: $("$COMPARE" "$T/$m-c$c.st" \
                "$T/$m-ref.st" --rtol 0 --atol 0 2>&1 | grep -E '^FAIL' | head -n 2 | tr '\n' ' ')"
    done
    # other instruction sets, short prompt (~250 tokens with the image): against AVX-512 with chunk 512
    run $m-sref "" short 512 2 $model || continue
    for v in GLM4V_ISA=avx2 GLM4V_PORTABLE=1; do
        for c in 1 7 192; do
            [ $v = GLM4V_PORTABLE=1 ] && [ $c = 1 ] && [ $m = dense ] && continue # (slow; the moe run covers it)
            run $m-v "$v" short $c 1 $model || continue
            if out=$("$COMPARE" "$T/$m-v.st" "$T/$m-sref.st" --rtol 0 --atol 0 2>&1); then
                echo "ok - $m: $v --chunk $c: dump tensors bit-identical to AVX-512 --chunk 512 ($(grep -c '^PASS' <<<"$out") tensors)"
            else
                echo "not ok - $m: $v --chunk $c: $(grep -E '^FAIL' <<<"$out" | head -n 2 | tr '\n' ' ')"
            fi
        done
    done
done

# --compute bf16 (the moe model): the same invariance over chunk sizes and threads, and the same bits on every path
# (AVX512_BF16 vdpbf16ps, its AVX2 and portable emulations; the dump names the path)
run bf16-ref "" long 512 2 tiny-glm4v-moe "--compute bf16" && {
    grep -q '"compute.mode":"bf16"' <(head -c 100000 "$T/bf16-ref.st" | tr -d '\0') &&
        echo "ok - bf16: the dump names compute.mode bf16" || echo "not ok - bf16: no compute.mode bf16 in the dump"
    t=1
    for c in 1 7 191 192 2048; do
        t=$((3 - t))
        run bf16-c$c "" long $c $t tiny-glm4v-moe "--compute bf16" || continue
        cmp -s "$T/bf16-c$c.st" "$T/bf16-ref.st" && echo "ok - bf16: --chunk $c -t $t: dump byte-identical to --chunk 512 -t 2" ||
            echo "not ok - bf16: --chunk $c -t $t: dump differs from --chunk 512 -t 2"
    done
    run bf16-sref "" short 512 2 tiny-glm4v-moe "--compute bf16" &&
        for v in GLM4V_ISA=avx2 GLM4V_PORTABLE=1; do
            run bf16-v "$v" short 7 1 tiny-glm4v-moe "--compute bf16" || continue
            if out=$("$COMPARE" "$T/bf16-v.st" "$T/bf16-sref.st" --rtol 0 --atol 0 2>&1); then
                echo "ok - bf16: $v --chunk 7: dump tensors bit-identical to the best path with --chunk 512 ($(grep -c '^PASS' <<<"$out") tensors)"
            else
                echo "not ok - bf16: $v --chunk 7: $(grep -E '^FAIL' <<<"$out" | head -n 2 | tr '\n' ' ')"
            fi
        done
}

# the vision tower: an image's embeddings are the same alone and batched with a second image (its patches then
# share every Linear with the other image's): the first rows of image_embeds, byte for byte
# tensor_bytes FILE NAME: the raw bytes of one tensor of a safetensors file
tensor_bytes() {
    local hl hdr off
    hl=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    hdr=$(head -c $((8 + hl)) "$1" | tail -c "$hl")
    off=$(grep -o "\"$2\":{[^}]*}" <<<"$hdr" | grep -o '"data_offsets":\[[0-9]*,[0-9]*' | grep -o '[0-9]*,[0-9]*')
    tail -c +$((8 + hl + ${off%,*} + 1)) "$1" | head -c $((${off#*,} - ${off%,*}))
}
for model in tiny-glm4v-moe tiny-glm4v-dense; do
    m=${model#tiny-glm4v-}
    "$GLM4V" -m weights/$model -p "Hi" -i $img -n 0 -q --dump "$T/one.st" >/dev/null 2>&1 &&
        "$GLM4V" -m weights/$model -p "Hi" -i $img -i tests/data/images/photo_450x300.png -n 0 -q \
            --dump "$T/two.st" >/dev/null 2>&1 || { echo "not ok - $m: vision runs failed"; continue; }
    tensor_bytes "$T/one.st" image_embeds >"$T/one.bin"
    tensor_bytes "$T/two.st" image_embeds | head -c "$(stat -c %s "$T/one.bin")" >"$T/two.bin"
    [ -s "$T/one.bin" ] && cmp -s "$T/one.bin" "$T/two.bin" &&
        echo "ok - $m: an image's embeddings are byte-identical alone and with a second image" ||
        echo "not ok - $m: an image's embeddings differ alone and with a second image"
done
