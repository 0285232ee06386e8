#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_cases.sh - every case written by tests/golden/make_golden.py (tests/golden/cases/NAME.*): the CLI's dump
# against HF's, with glm4v-compare at its default fp32 tolerance (rtol 1e-4): input ids, positions, pixels, grids,
# image features, every hidden state, module taps, router choices, logits and the 12 greedy tokens.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
C=tests/golden/cases
for args in $C/*.args; do
    name=$(basename "$args" .args)
    mapfile -t A <"$args"
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
    required="input_ids logits generated_ids"
    case $name in *image*) required="$required pixel_values image_embeds" ;; esac
    for t in $required; do
        grep -q "^PASS  *$t " "$T/$name.cmp" && echo "ok - $name: $t equal" || echo "not ok - $name: $t not compared"
    done
done
