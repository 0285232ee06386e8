#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_gguf.sh - llama.cpp GGUF files (weights/gguf/: the tiny checkpoints converted by llama.cpp's own converter) run
# through -m FILE.gguf --mmproj FILE.gguf:
#   BF16: the dump (text; text + an image + a second image; text + a video) is tensor for tensor bit-identical to the
#         one of the HF folder the file was converted from (both architectures: glm4moe and glm4)
#   Q8_0: bit-identical to the HF-folder path on the same weights dequantised by gguf-py (tests/gguf/dequant_folder.py;
#         skipped when python3 lacks gguf / numpy), and --chunk 1 (decode kernels on the blocks) equal to --chunk 512
#         (rows dequantised per tile); the same for the K-quant files written by llama-quantize
#   errors: malformed files, a text file given as --mmproj (and the reverse), an IQ4_NL tensor, a block count below
#           the blocks present, a NaN epsilon: one line, exit 1
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
G=weights/gguf
img=tests/data/images/synth_97x61.png
img2=tests/data/images/photo_160x120.jpg
vid=tests/data/video_frames
# same NAME A.st B.st: the two dumps' tensors are bit-identical
same() {
    if out=$("$COMPARE" "$2" "$3" --rtol 0 --atol 0 2>&1); then
        echo "ok - $1 ($(grep -c '^PASS' <<<"$out") tensors bit-identical)"
    else
        echo "not ok - $1: $(grep -E '^FAIL|rror' <<<"$out" | head -n 2 | tr '\n' ' ')"
    fi
}
# run OUT.st ARGS...: a dump, or "not ok"
run() {
    local o=$1
    shift
    "$GLM4V" "$@" -n 3 -q --dump "$o" >/dev/null 2>"$T/err" || { echo "not ok - $*: $(tail -n1 "$T/err")"; return 1; }
}
cases=("text|-p Hello" "images|-p Describe -i $img -i $img2" "video|-p Watch --video $vid")
for arch in moe dense; do
    hf=weights/tiny-glm4v-$arch
    for c in "${cases[@]}"; do
        name=${c%%|*}
        args=${c#*|}
        # shellcheck disable=SC2086
        run "$T/hf.st" -m $hf $args || continue
        # shellcheck disable=SC2086
        run "$T/bf16.st" -m $G/tiny-glm4v-$arch-bf16.gguf --mmproj $G/mmproj-tiny-glm4v-$arch-bf16.gguf $args &&
            same "$arch $name: BF16 GGUF dump = HF folder dump" "$T/bf16.st" "$T/hf.st"
    done
done

# --processor: an HF processor config over the defaults (here max 50176 pixels: a smaller grid), equal to the folder
# carrying that config
mkdir -p "$T/small"
cp weights/tiny-glm4v-moe/* "$T/small/"
sed 's/"longest_edge": 11760000/"longest_edge": 50176/' weights/tiny-glm4v-moe/processor_config.json >"$T/small/processor_config.json"
big=tests/data/images/photo_450x300.png
run "$T/ps.st" -m "$T/small" -p Describe -i $big &&
    run "$T/pg.st" -m $G/tiny-glm4v-moe-bf16.gguf --mmproj $G/mmproj-tiny-glm4v-moe-bf16.gguf \
        --processor "$T/small/processor_config.json" -p Describe -i $big &&
    same "--processor (max_pixels 50176) = the folder with that processor_config.json" "$T/pg.st" "$T/ps.st"
run "$T/pd.st" -m $G/tiny-glm4v-moe-bf16.gguf --mmproj $G/mmproj-tiny-glm4v-moe-bf16.gguf -p Describe -i $big &&
    ! cmp -s "$T/pd.st" "$T/pg.st" && echo "ok - --processor changes the image grid (defaults otherwise)" ||
    echo "not ok - --processor had no effect"

if python3 -c "import gguf, numpy" 2>/dev/null; then
    for arch in moe dense; do
        python3 tests/gguf/dequant_folder.py $G/tiny-glm4v-$arch-q8_0.gguf $G/mmproj-tiny-glm4v-$arch-q8_0.gguf \
            weights/tiny-glm4v-$arch "$T/dq-$arch" 2>"$T/err" || { echo "not ok - dequant_folder.py: $(tail -n1 "$T/err")"; continue; }
        for c in "${cases[@]}"; do
            name=${c%%|*}
            args=${c#*|}
            # shellcheck disable=SC2086
            run "$T/dq.st" -m "$T/dq-$arch" $args || continue
            # shellcheck disable=SC2086
            run "$T/q8.st" -m $G/tiny-glm4v-$arch-q8_0.gguf --mmproj $G/mmproj-tiny-glm4v-$arch-q8_0.gguf $args &&
                same "$arch $name: Q8_0 GGUF dump = HF path on gguf-py's dequantised weights" "$T/q8.st" "$T/dq.st"
        done
        # shellcheck disable=SC2086
        run "$T/c1.st" -m $G/tiny-glm4v-$arch-q8_0.gguf --mmproj $G/mmproj-tiny-glm4v-$arch-q8_0.gguf -p "Describe" \
            -i $img --chunk 1 -t 1 && run "$T/c512.st" -m $G/tiny-glm4v-$arch-q8_0.gguf \
            --mmproj $G/mmproj-tiny-glm4v-$arch-q8_0.gguf -p "Describe" -i $img --chunk 512 -t 2 &&
            same "$arch Q8_0: --chunk 1 -t 1 (block kernels) = --chunk 512 -t 2 (tiles)" "$T/c1.st" "$T/c512.st"
    done
    # the K-quant files llama.cpp's llama-quantize wrote (Q4_K_M mixtures: Q4_K, Q6_K, Q5_0, Q5_1, Q8_0; Q3_K_S:
    # Q3_K, Q4_0; --pure Q2_K: Q2_K, Q4_0; --pure Q5_K: Q5_K, Q5_1; --pure Q4_1: Q4_1), with the Q8_0 mmproj,
    # against the same reference
    for f in moe-q4_k_m dense-q4_k_m moe-q3_k_s moe-q2_k moe-q5_k dense-q4_1; do
        arch=${f%%-*}
        rm -rf "$T/dqk"
        python3 tests/gguf/dequant_folder.py $G/tiny-glm4v-$f.gguf $G/mmproj-tiny-glm4v-$arch-q8_0.gguf \
            weights/tiny-glm4v-$arch "$T/dqk" 2>"$T/err" || { echo "not ok - dequant_folder.py $f: $(tail -n1 "$T/err")"; continue; }
        run "$T/dq.st" -m "$T/dqk" -p Describe -i $img || continue
        run "$T/k.st" -m $G/tiny-glm4v-$f.gguf --mmproj $G/mmproj-tiny-glm4v-$arch-q8_0.gguf -p Describe -i $img &&
            same "$f (llama-quantize): dump = HF path on gguf-py's dequantised weights" "$T/k.st" "$T/dq.st"
    done
    # another checkpoint's widths (tests/golden/ckpt/moe-var: hidden 96, 16 experts in 4 groups, 4 M-RoPE sections,
    # a vision qkv bias, 16 x 16 position table): Q8_0 text + mmproj against gguf-py's dequantisation
    rm -rf "$T/dqv"
    if python3 tests/gguf/dequant_folder.py $G/golden-moe-var-q8_0.gguf $G/mmproj-golden-moe-var-q8_0.gguf \
        tests/golden/ckpt/moe-var "$T/dqv" 2>"$T/err"; then
        run "$T/dq.st" -m "$T/dqv" -p Describe -i $img --video $vid &&
            run "$T/v.st" -m $G/golden-moe-var-q8_0.gguf --mmproj $G/mmproj-golden-moe-var-q8_0.gguf -p Describe \
                -i $img --video $vid &&
            same "golden moe-var Q8_0 (image + video): dump = HF path on gguf-py's dequantised weights" "$T/v.st" "$T/dq.st"
    else
        echo "not ok - dequant_folder.py moe-var: $(tail -n1 "$T/err")"
    fi
    # tokenizer.chat_template (added with gguf-py's own gguf_new_metadata): used, with the file's eos_token
    python3 -m gguf.scripts.gguf_new_metadata $G/tiny-glm4v-moe-q8_0.gguf "$T/tm.gguf" --force \
        --chat-template '<<{{ eos_token }}|{{ messages[0].content }}>>' >/dev/null 2>&1 &&
        out=$("$GLM4V" -m "$T/tm.gguf" -p Hi --show-prompt 2>&1) && [ "$out" = "<<<|endoftext|>|Hi>>" ] &&
        echo "ok - tokenizer.chat_template of a GGUF file renders (with its eos_token)" ||
        echo "not ok - tokenizer.chat_template: got '${out:-}'"
    python3 -m gguf.scripts.gguf_new_metadata $G/tiny-glm4v-moe-q8_0.gguf "$T/tm.gguf" --force \
        --chat-template-file templates/glm45v.jinja >/dev/null 2>&1 &&
        [ "$("$GLM4V" -m "$T/tm.gguf" --mmproj $G/mmproj-tiny-glm4v-moe-q8_0.gguf -p Hi -i $img --show-prompt 2>&1)" = \
          "$("$GLM4V" -m weights/tiny-glm4v-moe -p Hi -i $img --show-prompt 2>&1)" ] &&
        echo "ok - the GLM-4.5V template from tokenizer.chat_template renders as the folder's" ||
        echo "not ok - the GLM-4.5V template from tokenizer.chat_template renders otherwise"
else
    echo "ok - # SKIP Q8_0 and K-quants against gguf-py's dequantisation: python3 without gguf / numpy"
fi

# errors: one line naming the file, exit 1, no crash
# fails NAME PATTERN ARGS...: the run fails with exit 1 and one stderr line matching PATTERN
fails() {
    local name=$1 pat=$2
    shift 2
    "$GLM4V" "$@" -p hi -n 1 -q >/dev/null 2>"$T/err"
    local rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -qE "$pat" "$T/err"; then
        echo "ok - $name: $(cat "$T/err")"
    else
        echo "not ok - $name: exit $rc, $(wc -l <"$T/err") lines: $(head -c 300 "$T/err")"
    fi
}
m=$G/tiny-glm4v-moe-q8_0.gguf
head -c 1000 $m >"$T/trunc.gguf"
fails "truncated GGUF" "trunc.gguf" -m "$T/trunc.gguf"
head -c 5000 /dev/zero >"$T/zero.gguf"
fails "not a GGUF file" "zero.gguf" -m "$T/zero.gguf"
head -c 200000 $m >"$T/cut.gguf"
fails "GGUF cut in its data" "cut.gguf" -m "$T/cut.gguf"
fails "mmproj given as -m" "clip.*mmproj" -m $G/mmproj-tiny-glm4v-moe-q8_0.gguf
fails "text file given as --mmproj" "clip.projector_type" -m $m --mmproj $G/tiny-glm4v-moe-q8_0.gguf
fails "--mmproj with a folder" "mmproj" -m weights/tiny-glm4v-moe --mmproj $G/mmproj-tiny-glm4v-moe-q8_0.gguf
fails "image without --mmproj" "mmproj|vision" -m $m -i $img
# an IQ4_NL tensor: blk.1.ffn_up_exps.weight's type field (after its name, n_dims and 3 dims) set to 20
cp $m "$T/iq.gguf"
name=blk.1.ffn_up_exps.weight
off=$(grep -boa "$name" "$T/iq.gguf" | head -n1 | cut -d: -f1)
printf '\x14' | dd of="$T/iq.gguf" bs=1 seek=$((off + ${#name} + 4 + 3 * 8)) conv=notrunc status=none
fails "IQ4_NL tensor" "ffn_up_exps.*IQ4_NL" -m "$T/iq.gguf"
# metadata that disagrees with the tensors: a u32 / f32 value right after its key (4-byte type field between)
# kv_patch FILE KEY HEXBYTES: the 4 value bytes of KEY set to HEXBYTES (little-endian, as printf escapes)
kv_patch() {
    local off
    off=$(grep -boa "$2" "$1" | head -n1 | cut -d: -f1)
    printf "$3" | dd of="$1" bs=1 seek=$((off + ${#2} + 4)) conv=notrunc status=none
}
cp $m "$T/bc.gguf"
kv_patch "$T/bc.gguf" glm4moe.block_count '\x01\x00\x00\x00' # 3 (2 layers + NextN) -> 1: blk.1.* left over
fails "block_count below the blocks present" "blk.1.*is in block 1, but glm4moe.block_count is 1" -m "$T/bc.gguf"
cp $G/mmproj-tiny-glm4v-moe-q8_0.gguf "$T/vbc.gguf"
kv_patch "$T/vbc.gguf" clip.vision.block_count '\x01\x00\x00\x00'
fails "clip.vision.block_count below the blocks present" "v.blk.1.*is in block 1, but clip.vision.block_count is 1" -m $m --mmproj "$T/vbc.gguf"
cp $G/mmproj-tiny-glm4v-moe-q8_0.gguf "$T/eps.gguf"
kv_patch "$T/eps.gguf" clip.vision.attention.layer_norm_epsilon '\x00\x00\xc0\x7f' # NaN
fails "NaN layer_norm_epsilon" "layer_norm_epsilon' is nan, not a finite number" -m $m --mmproj "$T/eps.gguf"
# stop ids: the GGUF file's eos / eot / eom (the converter writes them; llama.cpp stops there too). The tiny dense
# folder has none, and this prompt's 13th greedy token is <|endoftext|> (1024): the GGUF run stops at it, the folder
# runs on; with --ignore-eos the BF16 file's dump is bit-identical to the folder's over all 16 tokens
"$GLM4V" -m $G/tiny-glm4v-dense-bf16.gguf -p "word44 436" -n 16 -q --dump "$T/eos.st" >/dev/null 2>&1
"$GLM4V" -m $G/tiny-glm4v-dense-bf16.gguf -p "word44 436" -n 16 -q --ignore-eos --dump "$T/ieos.st" >/dev/null 2>&1
"$GLM4V" -m weights/tiny-glm4v-dense -p "word44 436" -n 16 -q --dump "$T/feos.st" >/dev/null 2>&1
ngen() { head -c 100000 "$1" | tr -d '\0' | grep -o '"generated_ids":{"dtype":"I64","shape":\[[0-9]*' | grep -o '[0-9]*$'; }
[ "$(ngen "$T/eos.st")" = 13 ] && [ "$(ngen "$T/feos.st")" = 16 ] &&
    echo "ok - GGUF stops at the file's eos (13 tokens), the folder without stop ids runs 16" ||
    echo "not ok - stop ids: GGUF $(ngen "$T/eos.st") tokens, folder $(ngen "$T/feos.st") (expected 13 and 16)"
same "--ignore-eos: the BF16 file's 16 tokens = the folder's" "$T/ieos.st" "$T/feos.st"
