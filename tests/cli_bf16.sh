#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_bf16.sh - `--compute bf16` against transformers: on the tiny cases of tests/golden/bf16 (make_bf16_cases.py),
# our bf16 prefill's max error against HF fp32 (tests/golden/cases) is at most PyTorch bf16's own (the model loaded
# with dtype=torch.bfloat16), for the logits, the last hidden state and the image embeddings, and each of them is
# within bf16 tolerance (2^-5 of the reference's max: 8 bf16 ulps) of PyTorch bf16's. MoE: the tiny checkpoints' router gaps
# (~3e-4) are crossed by bf16 rounding, so positions from the first expert flip of either side on follow another
# expert; the prompt positions before it are compared (the vision tower has no router: all of it).
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# max_abs NAME: the max_abs figure of one compare line on stdin
max_abs() { grep -E "^(PASS|FAIL) +$1 " | sed 's/.*max_abs \([^ ]*\).*/\1/'; }
for lim in tests/golden/bf16/*.limits; do
    c=$(basename "$lim" .limits)
    mapfile -t args <"tests/golden/cases/$c.args"
    "$GLM4V" "${args[@]}" -n 0 -q --compute bf16 --dump "$T/$c.st" >/dev/null 2>"$T/err" ||
        { echo "not ok - $c: run failed: $(tail -n1 "$T/err")"; continue; }
    L=$(grep -c '^logits ' "$lim")
    # the first prompt position whose experts differ from HF fp32 in some layer (compare sorts each row's set)
    ours=$("$COMPARE" "$T/$c.st" "tests/golden/cases/$c.safetensors" --names '*.mlp.gate.out2' 2>/dev/null |
        grep -o 'first_diff \[[0-9]*' | grep -o '[0-9]*$' | sort -n | head -n1)
    theirs=$(awk '$1 == "router_flip" {print $2}' "$lim")
    R=${ours:-$L}
    [ "$theirs" -lt "$R" ] && R=$theirs
    full=$("$COMPARE" "$T/$c.st" "tests/golden/cases/$c.safetensors" --names image_embeds 2>&1)
    pre=$("$COMPARE" "$T/$c.st" "tests/golden/cases/$c.safetensors" --rows "$R" 2>&1)
    for name in $(awk '$1 != "router_flip" {print $1}' "$lim" | sort -u); do
        if [ "$name" = image_embeds ]; then ours_e=$(max_abs "$name" <<<"$full"); rows=all
        else ours_e=$(max_abs "$name" <<<"$pre"); rows="$R of $L"; fi
        torch_e=$(awk -v n="$name" -v r="$R" '$1 == n && (n == "image_embeds" || $2 < r) { if ($3 > m) m = $3 } END { printf "%.3g", m }' "$lim")
        awk -v a="$ours_e" -v b="$torch_e" 'BEGIN { exit !(a != "" && a + 0 <= b + 0) }' &&
            echo "ok - $c: $name error vs HF fp32 $ours_e <= PyTorch bf16's $torch_e (positions: $rows)" ||
            echo "not ok - $c: $name error vs HF fp32 ${ours_e:-?} > PyTorch bf16's $torch_e (positions: $rows)"
    done
    for name in $(awk '$1 != "router_flip" {print $1}' "$lim" | sort -u); do
        rows=(--rows "$R")
        [ "$name" = image_embeds ] && rows=()
        if out=$("$COMPARE" "$T/$c.st" "tests/golden/bf16/$c.safetensors" --names "$name" "${rows[@]}" --rtol 0.03125 2>&1); then
            echo "ok - $c: $name within 2^-5 x max|ref| of PyTorch bf16 (max_abs $(max_abs "$name" <<<"$out"))"
        else
            echo "not ok - $c: $name vs PyTorch bf16: $(grep -E '^FAIL' <<<"$out" | head -n 1)"
        fi
    done
done
