#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_badinput.sh - the bad-input matrix: broken model folders, checkpoints, configs, tokenizers, images, videos,
# prompts and command lines, each run through the real binaries. Every case must exit 1 (bad input) or 2 (bad usage)
# - never by a signal (>= 128) or a hang (timeout) - with "glm4v: error: ..." naming the culprit as the last stderr
# line, and leave no --dump file (nor PATH.tmp.*) behind. Malformed checkpoints are made here from the tiny ones in
# weights/ with shell tools only (no python in CI).
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
TO=${GLM4V_TEST_TIMEOUT:-120} # seconds per case (sanitizer builds are slower)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
M=weights/tiny-glm4v-moe
D=weights/tiny-glm4v-dense
IMG=tests/data/images/synth_97x61.png
pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; }

# run_args ARGS...: RUN = the CLI with a short generation (-n 2 unless ARGS give their own -n: one value per option)
run_args() {
    local a n=(-n 2)
    for a in "$@"; do [ "$a" = -n ] && n=(); done
    RUN=("$GLM4V" -q "${n[@]}" "$@")
}

# expect CODE PATTERN NAME CMD...: CMD exits CODE, its last stderr line is "glm4v: error: ..." containing PATTERN
# (fixed string), no file is left in $T/out/
expect() {
    local want=$1 pat=$2 name=$3 rc last
    shift 3
    [ "$1" = run ] && shift && run_args "$@" && set -- "${RUN[@]}"
    rm -rf "$T/out" && mkdir -p "$T/out"
    timeout "$TO" "$@" >"$T/stdout" 2>"$T/stderr" </dev/null
    rc=$?
    last=$(tail -n 1 "$T/stderr")
    local pre="glm4v: error: " # (glm4v-compare names itself)
    [ "$(basename -- "$1")" = glm4v-compare ] && pre="glm4v-compare: error: "
    if [ "$rc" -eq 124 ]; then fail "$name: no exit after ${TO}s (hang)"
    elif [ "$rc" -ge 128 ]; then fail "$name: killed by signal $((rc - 128)): $(grep -m1 -E 'ERROR|runtime error' "$T/stderr")"
    elif [ "$rc" -ne "$want" ]; then fail "$name: exit $rc, expected $want: $last"
    elif [[ "$last" != "$pre"* ]]; then fail "$name: last stderr line is not '$pre...': $last"
    elif [[ "$last" != *"$pat"* ]]; then fail "$name: the message does not name '$pat': $last"
    elif [ -n "$(ls -A "$T/out")" ]; then fail "$name: left files behind: $(ls -A "$T/out" | tr '\n' ' ')"
    else pass "$name (exit $rc): ${last#"$pre"}"
    fi
}

# expect_ok NAME CMD...: CMD succeeds (inputs that are odd but valid)
expect_ok() {
    local name=$1 rc
    shift
    [ "$1" = run ] && shift && run_args "$@" && set -- "${RUN[@]}"
    timeout "$TO" "$@" >"$T/stdout" 2>"$T/stderr" </dev/null
    rc=$?
    if [ "$rc" -eq 0 ]; then pass "$name (exit 0)"; else fail "$name: exit $rc: $(tail -n 1 "$T/stderr")"; fi
}

# CMD "run ARGS" stands for "$GLM4V -q -n 2 ARGS" (the CLI with a short generation; ARGS' own -n replaces -n 2)

# ---------------------------------------------------------------------------- helpers to build broken checkpoints

# mkmodel NAME [SRC]: $T/NAME = a copy of the tiny checkpoint SRC (configs copied, big files linked)
mkmodel() {
    local dst=$T/$1 src=${2:-$M}
    rm -rf "$dst" && mkdir -p "$dst"
    cp "$src"/*.json "$dst"/
    ln -s "$PWD/$src/model.safetensors" "$dst/model.safetensors"
    echo "$dst"
}

# u64le N: 8 bytes little-endian
u64le() {
    local v=$1 i
    for i in 0 1 2 3 4 5 6 7; do printf "\\$(printf %03o $(((v >> (8 * i)) & 255)))"; done
}

# st_header FILE / st_data FILE: the JSON header and the data block of a safetensors file
st_hlen() { od -An -tu8 -N8 "$1" | tr -d ' '; }
st_header() { tail -c +9 "$1" | head -c "$(st_hlen "$1")"; }
st_data() { tail -c +$((9 + $(st_hlen "$1"))) "$1"; }

# st_sed MODEL SEDEXPR: rewrite MODEL's model.safetensors with its header edited by sed (length prefix recomputed)
st_sed() {
    local dir=$1 expr=$2 src
    src=$(readlink -f "$dir/model.safetensors")
    st_header "$src" | LC_ALL=C sed -e "$expr" >"$T/hdr"
    rm -f "$dir/model.safetensors"
    { u64le "$(wc -c <"$T/hdr")"; cat "$T/hdr"; st_data "$src"; } >"$dir/model.safetensors"
}

# cfg_sed MODEL SEDEXPR: edit MODEL/config.json
cfg_sed() { sed -i -e "$2" "$1/config.json"; }

# ---------------------------------------------------------------------------- command line (exit 2)

expect 2 "unknown option '--bogus'" "unknown flag" run -m $M -p hi --bogus
expect 2 "-n: '-5'" "-n -5" run -m $M -p hi -n -5
expect 2 "-n: 'abc'" "-n abc" run -m $M -p hi -n abc
expect 2 "--temp: 'nan'" "--temp nan" run -m $M -p hi --temp nan
expect 2 "--top-p: '2'" "--top-p 2" run -m $M -p hi --top-p 2
expect 2 "-t: '0'" "-t 0" run -m $M -p hi -t 0
expect 2 "--seed: '1e3'" "--seed 1e3" run -m $M -p hi --seed 1e3
expect 2 "--resize" "--resize bogus" run -m $M -p hi --resize bogus
expect 2 "--compute: 'fp16'" "--compute fp16" run -m $M -p hi --compute fp16
expect 2 "--max-image-pixels" "--max-image-pixels 0" run -m $M -p hi --max-image-pixels 0
expect 2 "--fps: '0.0009'" "--fps below its range" run -m $M -p hi --fps 0.0009
# the bounds a message names are accepted (they were compared as floats: 1e-3f > 0.001)
expect_ok "--fps 0.001 (the lower bound)" run -m $M -p hi -n 0 --fps 0.001
expect_ok "--repeat-penalty 0.001 (the lower bound)" run -m $M -p hi -n 1 --repeat-penalty 0.001
expect_ok "--pdf-timeout 0.1 (the lower bound)" run -m $M -p hi -n 0 --pdf-timeout 0.1
expect 2 "-m needs a value" "missing value (-m)" "$GLM4V" -p hi -m
expect 2 "-n needs a value" "missing value (-n)" "$GLM4V" -m $M -p hi -n
expect 2 "-m MODEL_DIR is required" "no -m" "$GLM4V" -p hi
expect 2 "-p TEXT is required" "no -p" "$GLM4V" -m $M
expect 2 "--system" "--system with --raw" run -m $M --raw --system s -p hi

# ---------------------------------------------------------------------------- model folder and configs (exit 1)

expect 1 "$T/nope" "missing model folder" run -m "$T/nope" -p hi
expect 1 "not a folder" "model path is a file" run -m $M/config.json -p hi
mkdir -p "$T/empty"
expect 1 "config.json" "folder without config.json" run -m "$T/empty" -p hi

m=$(mkmodel cfg_notjson); echo '{"text_config": ' >"$m/config.json"
expect 1 "config.json: not valid JSON" "config.json not JSON" run -m "$m" -p hi
m=$(mkmodel cfg_empty); : >"$m/config.json"
expect 1 "config.json" "config.json empty" run -m "$m" -p hi
m=$(mkmodel cfg_array); echo '[1, 2]' >"$m/config.json"
expect 1 "config.json" "config.json is an array" run -m "$m" -p hi
m=$(mkmodel cfg_notext); cfg_sed "$m" 's/"text_config"/"txt_config"/'
expect 1 "text_config" "config without text_config" run -m "$m" -p hi
m=$(mkmodel cfg_type); cfg_sed "$m" 's/"model_type": "glm4v_moe/"model_type": "llama/; s/Glm4vMoeFor/LlamaFor/'
expect 1 "model_type" "config model_type llama" run -m "$m" -p hi
m=$(mkmodel cfg_missing); cfg_sed "$m" '/"hidden_size": 128,/d'
expect 1 "hidden_size" "config missing text hidden_size" run -m "$m" -p hi
m=$(mkmodel cfg_string); cfg_sed "$m" 's/"num_hidden_layers": 3/"num_hidden_layers": "3"/'
expect 1 "num_hidden_layers" "config num_hidden_layers is a string" run -m "$m" -p hi
m=$(mkmodel cfg_zeroheads); cfg_sed "$m" 's/"num_attention_heads": 4/"num_attention_heads": 0/'
expect 1 "num_attention_heads" "config 0 attention heads" run -m "$m" -p hi
m=$(mkmodel cfg_neg); cfg_sed "$m" 's/"intermediate_size": 256/"intermediate_size": -256/'
expect 1 "intermediate_size" "config negative intermediate_size" run -m "$m" -p hi
m=$(mkmodel cfg_frac); cfg_sed "$m" 's/"vocab_size": 1088/"vocab_size": 1088.5/'
expect 1 "vocab_size" "config fractional vocab_size" run -m "$m" -p hi
m=$(mkmodel cfg_huge); cfg_sed "$m" 's/"vocab_size": 1088/"vocab_size": 1e300/'
expect 1 "vocab_size" "config vocab_size 1e300" run -m "$m" -p hi
m=$(mkmodel cfg_layers); cfg_sed "$m" 's/"num_hidden_layers": 3/"num_hidden_layers": 1000000000/'
expect 1 "num_hidden_layers" "config 10^9 layers" run -m "$m" -p hi
m=$(mkmodel cfg_kvheads); cfg_sed "$m" 's/"num_key_value_heads": 2/"num_key_value_heads": 3/'
expect 1 "num_key_value_heads" "config heads not a multiple of kv heads" run -m "$m" -p hi
m=$(mkmodel cfg_mrope); cfg_sed "$m" '/"mrope_section"/,/]/ s/^\( *\)2,$/\15,/'
expect 1 "mrope_section" "config mrope_section not matching the rotary dim" run -m "$m" -p hi
m=$(mkmodel cfg_mrope_str); cfg_sed "$m" 's/"mrope_section": \[/"mrope_section": "x", "y": [/'
expect 1 "mrope_section" "config mrope_section not a list" run -m "$m" -p hi
m=$(mkmodel cfg_eps); cfg_sed "$m" 's/"rms_norm_eps": 1e-05,/"rms_norm_eps": -1,/'
expect 1 "rms_norm_eps" "config negative rms_norm_eps" run -m "$m" -p hi
m=$(mkmodel cfg_rope); cfg_sed "$m" 's/"rope_type": "default"/"rope_type": "yarn"/'
expect 1 "rope_type" "config unsupported rope_type" run -m "$m" -p hi
m=$(mkmodel cfg_experts); cfg_sed "$m" 's/"num_experts_per_tok": 2/"num_experts_per_tok": 9/'
expect 1 "MoE routing" "config top-k above the expert count" run -m "$m" -p hi
m=$(mkmodel cfg_vision); cfg_sed "$m" 's/"out_hidden_size": 128/"out_hidden_size": 64/'
expect 1 "out_hidden_size" "config vision out_hidden_size differs from hidden_size" run -m "$m" -p hi
m=$(mkmodel cfg_vheads); cfg_sed "$m" 's/"num_heads": 4/"num_heads": 0/'
expect 1 "num_heads" "config 0 vision heads" run -m "$m" -p hi
m=$(mkmodel cfg_tokid); cfg_sed "$m" 's/"image_token_id": 1058/"image_token_id": 5000/'
expect 1 "image_token_id" "config image_token_id outside the vocabulary" run -m "$m" -p hi
m=$(mkmodel cfg_shape); cfg_sed "$m" 's/"intermediate_size": 256/"intermediate_size": 255/'
expect 1 "mlp" "config size not matching the tensors (wrong shape)" run -m "$m" -p hi
m=$(mkmodel gen_bad); echo '{"temperature": "hot"}' >"$m/generation_config.json"
expect 1 "generation_config.json" "generation_config.json wrong type" run -m "$m" -p hi
m=$(mkmodel proc_bad); echo '{"image_processor": {"patch_size": 0}}' >"$m/processor_config.json"
expect 1 "processor_config.json" "processor_config.json patch_size 0" run -m "$m" -p hi
m=$(mkmodel proc_std); echo '{"image_processor": {"image_std": [1, 0, 1]}}' >"$m/processor_config.json"
expect 1 "image_std" "processor_config.json zero image_std" run -m "$m" -p hi
m=$(mkmodel proc_json); echo '{"image_processor": ' >"$m/processor_config.json"
expect 1 "processor_config.json" "processor_config.json not JSON" run -m "$m" -p hi
# settings glm4v does not implement are refused, not ignored (transformers would normalise differently)
m=$(mkmodel proc_norm); sed -i 's/"do_normalize": true/"do_normalize": false/' "$m/processor_config.json"
expect 1 'processor_config.json: "do_normalize": false' "processor_config.json do_normalize false" run -m "$m" -p hi
printf '{"resample": 2}' >"$T/pre.json"
expect 1 "$T/pre.json: \"resample\"" "--processor with resample 2 (bilinear)" run -m $M -p hi --processor "$T/pre.json"
printf '{"size": {"shortest_edge": 3136}}' >"$T/pre2.json"
expect 1 "$T/pre2.json: \"size\" must hold" "--processor with a size lacking longest_edge" run -m $M -p hi \
    --processor "$T/pre2.json"

# ---------------------------------------------------------------------------- safetensors (exit 1)

SRC=$M/model.safetensors
SIZE=$(wc -c <"$SRC")
HLEN=$(st_hlen "$SRC")
m=$(mkmodel st_tiny); rm "$m/model.safetensors"; head -c 5 "$SRC" >"$m/model.safetensors"
expect 1 "model.safetensors" "safetensors of 5 bytes" run -m "$m" -p hi
m=$(mkmodel st_empty); rm "$m/model.safetensors"; : >"$m/model.safetensors"
expect 1 "model.safetensors" "empty safetensors" run -m "$m" -p hi
m=$(mkmodel st_inhdr); rm "$m/model.safetensors"; head -c $((HLEN / 2)) "$SRC" >"$m/model.safetensors"
expect 1 "header length" "safetensors cut inside the header (header length larger than the file)" run -m "$m" -p hi
m=$(mkmodel st_trunc); rm "$m/model.safetensors"; head -c $((SIZE - 1)) "$SRC" >"$m/model.safetensors"
expect 1 "past the end" "safetensors cut by one byte (tensor offsets past the end)" run -m "$m" -p hi
m=$(mkmodel st_biglen); rm "$m/model.safetensors"
{ u64le 18446744073709551615; tail -c +9 "$SRC"; } >"$m/model.safetensors"
expect 1 "header length" "safetensors header length 2^64-1" run -m "$m" -p hi
m=$(mkmodel st_notjson); rm "$m/model.safetensors"; { u64le 16; printf 'this is not json'; } >"$m/model.safetensors"
expect 1 "not a JSON object" "safetensors header not JSON" run -m "$m" -p hi
m=$(mkmodel st_offsets); rm "$m/model.safetensors"
H='{"lm_head.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8000000]}}'
{ u64le ${#H}; printf '%s' "$H"; printf 'abcdefgh'; } >"$m/model.safetensors"
expect 1 "past the end" "safetensors offsets past the end" run -m "$m" -p hi
m=$(mkmodel st_span); st_sed "$m" '0,/"data_offsets":\[0,278528\]/s//"data_offsets":[0,278526]/'
expect 1 "data_offsets span" "safetensors offsets not matching the shape" run -m "$m" -p hi
m=$(mkmodel st_dtype); st_sed "$m" '0,/"dtype":"BF16"/s//"dtype":"I16"/'
expect 1 "dtype I16" "safetensors integer dtype for a weight" run -m "$m" -p hi
m=$(mkmodel st_dtype2); st_sed "$m" '0,/"dtype":"BF16"/s//"dtype":"F8_E4M3"/'
expect 1 "F8_E4M3" "safetensors unknown dtype" run -m "$m" -p hi
m=$(mkmodel st_shape); st_sed "$m" '0,/"shape":\[1088,128\]/s//"shape":[128,1088]/'
expect 1 "shape [128,1088]" "safetensors wrong shape" run -m "$m" -p hi
m=$(mkmodel st_negshape); st_sed "$m" '0,/"shape":\[1088,128\]/s//"shape":[-1088,-128]/'
expect 1 "invalid shape" "safetensors negative shape" run -m "$m" -p hi
m=$(mkmodel st_missing); st_sed "$m" 's/"lm_head.weight"/"lm_head.weighx"/'
expect 1 "lm_head.weight" "safetensors missing tensor" run -m "$m" -p hi
m=$(mkmodel st_dup); st_sed "$m" 's/"model.language_model.norm.weight"/"lm_head.weight"/'
expect 1 "appears twice" "safetensors duplicate tensor name" run -m "$m" -p hi

# sharded checkpoints: model.safetensors.index.json
m=$(mkmodel idx_missing); mv "$m/model.safetensors" "$m/model-00001-of-00002.safetensors"
printf '{"weight_map": {"lm_head.weight": "model-00001-of-00002.safetensors", "x": "model-00002-of-00002.safetensors"}}' \
    >"$m/model.safetensors.index.json"
expect 1 "model-00002-of-00002.safetensors" "index names a missing shard" run -m "$m" -p hi
m=$(mkmodel idx_dotdot)
printf '{"weight_map": {"lm_head.weight": "../tiny-glm4v-moe/model.safetensors"}}' >"$m/model.safetensors.index.json"
expect 1 "../tiny-glm4v-moe/model.safetensors" "index names a shard with ../" run -m "$m" -p hi
m=$(mkmodel idx_dotdot2); printf '{"weight_map": {"a": ".."}}' >"$m/model.safetensors.index.json"
expect 1 'invalid shard name ".."' "index names the shard .." run -m "$m" -p hi
m=$(mkmodel idx_abs); printf '{"weight_map": {"a": "/etc/passwd"}}' >"$m/model.safetensors.index.json"
expect 1 "/etc/passwd" "index names an absolute path" run -m "$m" -p hi
m=$(mkmodel idx_nomap); printf '{"metadata": {}}' >"$m/model.safetensors.index.json"
expect 1 "weight_map" "index without weight_map" run -m "$m" -p hi
m=$(mkmodel idx_type); printf '{"weight_map": {"a": 7}}' >"$m/model.safetensors.index.json"
expect 1 "weight_map" "index weight_map value not a string" run -m "$m" -p hi
m=$(mkmodel noweights); rm "$m/model.safetensors"
expect 1 "no model.safetensors" "no weights at all" run -m "$m" -p hi

# ---------------------------------------------------------------------------- tokenizer.json (exit 1)

m=$(mkmodel tok_missing); rm "$m/tokenizer.json"
expect 1 "tokenizer.json" "tokenizer.json missing" run -m "$m" -p hi
m=$(mkmodel tok_trunc); head -c 30000 $M/tokenizer.json >"$m/tokenizer.json"
expect 1 "tokenizer.json: not valid JSON" "tokenizer.json truncated" run -m "$m" -p hi
m=$(mkmodel tok_model); sed -i 's/"type": *"BPE"/"type": "WordPiece"/' "$m/tokenizer.json"
expect 1 "tokenizer.json" "tokenizer.json WordPiece model" run -m "$m" -p hi
m=$(mkmodel tok_regex); sed -i 's/"Regex": *"/"Regex": "(?<!/' "$m/tokenizer.json"
expect 1 "tokenizer.json" "tokenizer.json bad pre-tokenizer regex" run -m "$m" -p hi
m=$(mkmodel tok_binary); head -c 3000 $SRC >"$m/tokenizer.json"
expect 1 "tokenizer.json" "tokenizer.json is binary" run -m "$m" -p hi

# ---------------------------------------------------------------------------- images (exit 1)

printf 'just some text\n' >"$T/text.png"
expect 1 "$T/text.png: not a decodable image" "text file as an image" run -m $M -p hi -i "$T/text.png"
: >"$T/empty.png"
expect 1 "$T/empty.png: not a decodable image" "empty image file" run -m $M -p hi -i "$T/empty.png"
head -c 300 $IMG >"$T/trunc.png"
expect 1 "$T/trunc.png: not a decodable image" "truncated PNG" run -m $M -p hi -i "$T/trunc.png"
head -c 1000 tests/data/images/photo_160x120.jpg >"$T/trunc.jpg"
expect 1 "$T/trunc.jpg" "truncated JPEG" run -m $M -p hi -i "$T/trunc.jpg"
expect 1 "$T/missing.png" "missing image file" run -m $M -p hi -i "$T/missing.png"
expect 1 "tests/data/images" "a folder as an image" run -m $M -p hi -i tests/data/images
# headers claiming absurd sizes: refused from the header, before any decoding
be32() { printf "\\$(printf %03o $((($1 >> 24) & 255)))\\$(printf %03o $((($1 >> 16) & 255)))\\$(printf %03o $((($1 >> 8) & 255)))\\$(printf %03o $(($1 & 255)))"; }
le32() { printf "\\$(printf %03o $(($1 & 255)))\\$(printf %03o $((($1 >> 8) & 255)))\\$(printf %03o $((($1 >> 16) & 255)))\\$(printf %03o $((($1 >> 24) & 255)))"; }
le16() { printf "\\$(printf %03o $(($1 & 255)))\\$(printf %03o $((($1 >> 8) & 255)))"; }
be16() { printf "\\$(printf %03o $((($1 >> 8) & 255)))\\$(printf %03o $(($1 & 255)))"; }
{ printf '\211PNG\r\n\032\n'; be32 13; printf 'IHDR'; be32 100000; be32 100000; printf '\010\002\000\000\000'; be32 0
  head -c 200 /dev/zero; } >"$T/huge.png"
expect 1 "100000 x 100000" "PNG header 100000x100000" run -m $M -p hi -i "$T/huge.png"
{ printf '\211PNG\r\n\032\n'; be32 13; printf 'IHDR'; be32 0; be32 0; printf '\010\002\000\000\000'; be32 0; } >"$T/zero.png"
expect 1 "$T/zero.png" "PNG header 0x0" run -m $M -p hi -i "$T/zero.png"
{ printf 'BM'; le32 100054; le32 0; le32 54; le32 40; le32 200000; le32 200000; le16 1; le16 24; le32 0; le32 0
  le32 0; le32 0; le32 0; le32 0; head -c 64 /dev/zero; } >"$T/huge.bmp"
expect 1 "200000 x 200000" "BMP header 200000x200000" run -m $M -p hi -i "$T/huge.bmp"
{ printf 'BM'; le32 100054; le32 0; le32 54; le32 40; le32 -2147483648; le32 -2147483648; le16 1; le16 24
  head -c 64 /dev/zero; } >"$T/neg.bmp"
expect 1 "$T/neg.bmp" "BMP header -2^31 x -2^31" run -m $M -p hi -i "$T/neg.bmp"
{ printf 'P6\n100000 100000\n255\n'; head -c 64 /dev/zero; } >"$T/huge.ppm"
expect 1 "$T/huge.ppm" "PPM header 100000x100000" run -m $M -p hi -i "$T/huge.ppm"
{ printf 'P5\n99999999999999999999 3\n255\n'; head -c 64 /dev/zero; } >"$T/overflow.pgm"
expect 1 "$T/overflow.pgm" "PGM header with a 20-digit width" run -m $M -p hi -i "$T/overflow.pgm"
{ printf 'GIF89a'; le16 65535; le16 65535; printf '\367\000\000'; head -c 64 /dev/zero; } >"$T/huge.gif"
expect 1 "65535 x 65535" "GIF header 65535x65535" run -m $M -p hi -i "$T/huge.gif"
{ printf '\000\000\002\000\000\000\000\000\000\000\000\000'; le16 65535; le16 65535; printf '\030\000'
  head -c 64 /dev/zero; } >"$T/huge.tga"
expect 1 "65535 x 65535" "TGA header 65535x65535" run -m $M -p hi -i "$T/huge.tga"
{ printf '8BPS'; be16 1; head -c 6 /dev/zero; be16 3; be32 100000; be32 100000; be16 8; be16 3; head -c 64 /dev/zero
} >"$T/huge.psd"
expect 1 "100000 x 100000" "PSD header 100000x100000" run -m $M -p hi -i "$T/huge.psd"
{ printf '#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 100000 +X 100000\n'; head -c 64 /dev/zero; } >"$T/huge.hdr"
expect 1 "$T/huge.hdr" "HDR header 100000x100000" run -m $M -p hi -i "$T/huge.hdr"
{ printf '\377\330\377\300'; be16 17; printf '\010'; be16 65000; be16 65000; printf '\003\001\021\000\002\021\000\003\021\000'
  printf '\377\331'; } >"$T/huge.jpg"
expect 1 "65000 x 65000" "JPEG header 65000x65000" run -m $M -p hi -i "$T/huge.jpg"
expect 1 "above the limit" "--max-image-pixels below the image" run -m $M -p hi -i $IMG --max-image-pixels 100
# an RLE8 BMP (PIL decodes it, stb_image does not): refused with the reason
{ printf 'BM'; le32 70; le32 0; le32 62; le32 40; le32 2; le32 1; le16 1; le16 8; le32 1; le32 8; le32 0; le32 0
  le32 2; le32 0; printf '\000\000\000\000\377\377\377\000'; printf '\002\001\000\000\000\001'; } >"$T/rle8.bmp"
expect 1 "RLE8 compression is not supported" "RLE8 BMP" run -m $M -p hi -i "$T/rle8.bmp"
# a BMP whose rows end early: PIL refuses it ("image file is truncated"), stb_image would fill zeros
{ printf 'BM'; le32 86; le32 0; le32 54; le32 40; le32 4; le32 4; le16 1; le16 24; le32 0; le32 48; le32 0; le32 0
  le32 0; le32 0; head -c 32 /dev/zero; } >"$T/short.bmp"
expect 1 "BMP: truncated" "BMP with its last rows missing" run -m $M -p hi -i "$T/short.bmp"
{ printf '\377\330\377\304'; be16 40; printf '\000'; head -c 16 /dev/zero | tr '\000' '\377'; head -c 21 /dev/zero
  printf '\377\331'; } >"$T/dht.jpg"
expect 1 "$T/dht.jpg" "JPEG with an oversized Huffman table" run -m $M -p hi -i "$T/dht.jpg"

# ---------------------------------------------------------------------------- video (exit 1)

mkdir -p "$T/noframes" && printf 'x' >"$T/noframes/readme.txt"
expect 1 "$T/noframes" "empty frame folder" run -m $D -p hi --video "$T/noframes"
mkdir -p "$T/mixed" && cp tests/data/video_frames/frame_00.png "$T/mixed/a.png" && cp $IMG "$T/mixed/b.png"
expect 1 "one size" "frames of different sizes" run -m $D -p hi --video "$T/mixed"
mkdir -p "$T/badframe" && cp tests/data/video_frames/frame_00.png "$T/badframe/a.png" && printf 'x' >"$T/badframe/b.png"
expect 1 "$T/badframe/b.png" "a broken frame" run -m $D -p hi --video "$T/badframe"
expect 1 "$T/novideo" "missing video" run -m $D -p hi --video "$T/novideo"
printf 'not a video' >"$T/clip.mp4"
expect 1 "ffmpeg not found" "video file without ffmpeg on PATH" env PATH=/nonexistent "$GLM4V" -q -n 2 -m $D -p hi \
    --video "$T/clip.mp4"
if command -v ffprobe >/dev/null && command -v ffmpeg >/dev/null; then
    expect 1 "$T/clip.mp4" "a text file as a video (ffmpeg)" run -m $D -p hi --video "$T/clip.mp4"
fi

# ---------------------------------------------------------------------------- prompts (exit 1, or success)

expect 1 "<|image|>" "--raw: more <|image|> than -i" run -m $M --raw -p "<|user|>a<|image|><|image|>b<|assistant|>" -i $IMG
expect 1 "<|image|>" "--raw: -i without <|image|>" run -m $M --raw -p "<|user|>hi<|assistant|>" -i $IMG
expect 1 "<|video|>" "--raw: <|video|> without --video" run -m $M --raw -p "<|user|><|video|>hi<|assistant|>"
expect 1 "<|video|>" "--raw: --video without <|video|>" run -m $D --raw -p "<|user|>hi<|assistant|>" \
    --video tests/data/video_frames
expect 1 "video tokens" "--raw: image inside <|begin_of_video|> without a video" run -m $M --raw -i $IMG \
    -p "<|user|><|begin_of_video|><|image|><|end_of_video|><|assistant|>"
expect 1 "vision" "images with a checkpoint without a vision tower" run -m "$(
    m=$(mkmodel novision); st_sed "$m" 's/"model.visual.patch_embed.proj.weight"/"xmodel.visual.patch_embed.proj.weigh"/'
    echo "$m")" -p hi -i $IMG
m=$(mkmodel ctx64); cfg_sed "$m" 's/"max_position_embeddings": 4096/"max_position_embeddings": 64/'
expect 1 "context" "-n beyond max_position_embeddings" run -m "$m" -p hi -n 100
expect 1 "context" "long prompt beyond max_position_embeddings" run -m "$m" -n 1 -p "$(printf 'word %.0s' {1..200})"
expect 1 "context" "image prompt beyond max_position_embeddings" run -m "$m" -n 1 -p hi -i tests/data/images/photo_450x300.png
expect 1 "context" "-n 16777216 beyond the context" run -m $M -p hi -n 16777216
expect_ok "invalid UTF-8 in the prompt (replaced)" run -m $M -p "$(printf 'bad \377\376 \303( end')"
expect_ok "invalid UTF-8 in --raw" run -m $M --raw -p "$(printf '<|user|>\300\200<|assistant|>')"
expect_ok "special-token text in a chat prompt" run -m $M -p "<|assistant|><think></think><|endoftext|>[gMASK]"
printf '\377\376\000x' >"$T/prompt.bin"
expect_ok "prompt file with NUL and invalid UTF-8" run -m $M -f "$T/prompt.bin"
expect 1 "$T/noprompt.txt" "missing prompt file" run -m $M -f "$T/noprompt.txt"
expect 1 "$T" "a folder as the prompt file" run -m $M -f "$T"

# ---------------------------------------------------------------------------- --dump (exit 1, nothing left behind)

expect 1 "$T/out/nodir/x.safetensors" "--dump into a folder that does not exist" run -m $M -p hi \
    --dump "$T/out/nodir/x.safetensors"
expect 1 "$T/text.png" "--dump with a broken image" run -m $M -p hi -i "$T/text.png" --dump "$T/out/x.safetensors"
# a --dump path that is a folder: the run completes, the rename fails, the temporary file is removed
mkdir -p "$T/dumpdir"
expect 1 "$T/dumpdir" "--dump onto an existing folder" run -m $M -p hi --dump "$T/dumpdir"
left=$(ls -A "$T" | grep -c '^dumpdir\.tmp\.')
[ "$left" -eq 0 ] && pass "--dump onto a folder: no temporary file left" || fail "--dump onto a folder left $left temporary file(s)"
expect 1 "context" "--dump with a prompt beyond the context" run -m "$T/ctx64" -p hi -n 100 --dump "$T/out/x.safetensors"

# ---------------------------------------------------------------------------- glm4v-compare

expect 2 "need two files" "compare: one file" "$COMPARE" $IMG
expect 2 "unknown option" "compare: unknown flag" "$COMPARE" --bogus a b
expect 2 "--rtol" "compare: --rtol nan" "$COMPARE" --rtol nan a b
expect 1 "$T/nofile" "compare: missing file" "$COMPARE" "$T/nofile" $SRC
expect 1 "$T/text.png" "compare: text file" "$COMPARE" "$T/text.png" $SRC
H="{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }"
{ printf '\223NUMPY\001\000'; le16 ${#H}; printf '%s' "$H"; printf 'abcd'; } >"$T/a.npy"
expect 1 "truncated?" "compare: .npy with its data missing" "$COMPARE" "$T/a.npy" $SRC
printf 'PK\003\004 but no central directory' >"$T/c.npz"
expect 1 "$T/c.npz" "compare: .npz without its central directory" "$COMPARE" "$T/c.npz" $SRC
expect 1 "$T/st_trunc/model.safetensors" "compare: truncated safetensors" "$COMPARE" "$T/st_trunc/model.safetensors" $SRC
