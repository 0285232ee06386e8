#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_golden.sh - the whole CLI (tokenizer, preprocessing, vision tower, positions, decoder, greedy decoding, --dump)
# against the HF fixtures in tests/data/golden, judged by glm4v-compare at its default fp32 tolerance (rtol 1e-4).
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
G=tests/data/golden
pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; }

run_case() { # name model "required tensors" [extra args...]
    local name=$1 model=$2 required=$3; shift 3
    if ! "$GLM4V" -m "$model" --raw -f "$G/$name.prompt.txt" -n 12 -q --dump "$T/$name.st" "$@" >"$T/$name.out" 2>"$T/$name.err"; then
        fail "$name: glm4v failed: $(tail -n1 "$T/$name.err")"
        return
    fi
    # every tensor both files have (input ids, positions, pixels, grids, image features, hidden states, router,
    # logits, generated ids and their logits)
    if "$COMPARE" "$T/$name.st" "$G/$name.safetensors" >"$T/$name.cmp" 2>&1; then
        pass "$name: dump matches HF ($(grep -c '^PASS' "$T/$name.cmp") tensors)"
    else
        fail "$name: $(grep -E 'first divergence|^FAIL' "$T/$name.cmp" | head -n 3 | tr '\n' ' ')"
    fi
    for t in input_ids hidden_states.0 logits generated_ids generated_logits $required; do
        grep -q "^PASS  *$t " "$T/$name.cmp" && pass "$name: $t compared and equal" || fail "$name: $t not compared or different"
    done
}

MOE_ROUTER="model.language_model.layers.1.mlp.gate.out0 model.language_model.layers.1.mlp.gate.out2"
run_case moe.text weights/tiny-glm4v-moe "$MOE_ROUTER"
run_case moe.image weights/tiny-glm4v-moe "position_ids pixel_values image_grid_thw image_embeds $MOE_ROUTER" \
    -i tests/data/images/synth_200x150.png
run_case dense.text weights/tiny-glm4v-dense ""
run_case dense.video weights/tiny-glm4v-dense "position_ids pixel_values_videos video_grid_thw image_embeds" \
    --video tests/data/video_frames --fps 2
