#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_determinism.sh - a dump with two images and generated tokens is byte-identical for -t 1, -t 2 and a second
# -t 1 run (and for another output path); its header carries the provenance and no path, thread count or time.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ok() { echo "ok - $*"; }
no() { echo "not ok - $*"; }
for model in tiny-glm4v-moe tiny-glm4v-dense; do
    args=(-m weights/$model -p "Compare the two pictures." -i tests/data/images/synth_200x150.png
          -i tests/data/images/synth_97x61.png -n 8 -q --chunk 20)
    "$GLM4V" "${args[@]}" -t 1 --dump "$T/a.st" >"$T/a.out" 2>"$T/err" || no "$model: -t 1 run failed: $(tail -n1 "$T/err")"
    "$GLM4V" "${args[@]}" -t 2 --dump "$T/b.st" >"$T/b.out" 2>"$T/err" || no "$model: -t 2 run failed: $(tail -n1 "$T/err")"
    mkdir -p "$T/sub"
    "$GLM4V" "${args[@]}" -t 1 --dump "$T/sub/c.st" >"$T/c.out" 2>"$T/err" || no "$model: second -t 1 run failed"
    cmp -s "$T/a.st" "$T/b.st" && ok "$model: dump identical for -t 1 and -t 2" || no "$model: dumps differ for -t 1 and -t 2"
    cmp -s "$T/a.st" "$T/sub/c.st" && ok "$model: dump identical on a second run (other path)" || no "$model: dumps differ between runs"
    cmp -s "$T/a.out" "$T/b.out" && ok "$model: same generated text" || no "$model: generated text differs"
    hdr=$(head -c 200000 "$T/a.st" | tr -d '\0')
    for key in crc32.logits crc32.image_embeds glm4v.version glm4v.commit config.crc32 gen.temperature gen.top_k \
               gen.top_p gen.seed gen.repetition_penalty preprocess.resize cpu.features; do
        grep -q "\"$key\"" <<<"$hdr" && ok "$model: header has $key" || no "$model: header lacks $key"
    done
    if grep -q -e "$T" -e "synth_200x150" -e "weights/" -e '"threads"' <<<"$hdr"; then no "$model: header leaks a path or threads"
    else ok "$model: header has no path or thread count"; fi
    for name in pixel_values image_grid_thw image_embeds generated_ids generated_logits position_ids hidden_states.0; do
        grep -q "\"$name\":{" <<<"$hdr" && ok "$model: dump has $name" || no "$model: dump lacks $name"
    done
done

# sampling: a fixed --seed reproduces the same tokens; the settings are in the dump's provenance
s=(-m weights/tiny-glm4v-moe -p "Tell me a story." -n 16 -q --temp 0.9 --top-k 50 --top-p 0.95)
"$GLM4V" "${s[@]}" --seed 7 --dump "$T/s1.st" >"$T/s1" 2>/dev/null
"$GLM4V" "${s[@]}" --seed 7 -t 1 --dump "$T/s2.st" >"$T/s2" 2>/dev/null
"$GLM4V" "${s[@]}" --seed 8 >"$T/s3" 2>/dev/null
cmp -s "$T/s1" "$T/s2" && cmp -s "$T/s1.st" "$T/s2.st" && ok "sampling with --seed 7 reproduces text and dump" ||
    no "sampling with a fixed seed differs"
cmp -s "$T/s1" "$T/s3" && no "--seed 8 gave the same text as --seed 7" || ok "another seed samples other tokens"
hdr=$(head -c 200000 "$T/s1.st" | tr -d '\0')
grep -q '"gen.seed":"7"' <<<"$hdr" && grep -q '"gen.mode":"sample"' <<<"$hdr" && ok "seed and mode in the provenance" ||
    no "seed/mode missing from the provenance"
# -n 0 reads the prompt only
"$GLM4V" -m weights/tiny-glm4v-moe -p "Hi" -n 0 -q --dump "$T/n0.st" >"$T/n0" 2>/dev/null && [ ! -s "$T/n0" ] &&
    grep -q '"generated_ids":{"dtype":"I64","shape":\[0\]' <(head -c 100000 "$T/n0.st" | tr -d '\0') &&
    ok "-n 0: prompt only, no output, generated_ids empty" || no "-n 0"

# generation_config.json with do_sample: its settings become the defaults; --temp 0 is greedy
cp -r weights/tiny-glm4v-moe "$T/gs"
printf '{"do_sample": true, "temperature": 0.6, "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.1}' \
    >"$T/gs/generation_config.json"
"$GLM4V" -m "$T/gs" -p "Hi" -n 4 -q --dump "$T/gs1.st" >/dev/null 2>&1
hdr=$(head -c 200000 "$T/gs1.st" | tr -d '\0')
grep -q '"gen.mode":"sample"' <<<"$hdr" && grep -q '"gen.temperature":"0.600000024"' <<<"$hdr" &&
    grep -q '"gen.top_k":"20"' <<<"$hdr" && grep -q '"gen.repetition_penalty":"1.10000002"' <<<"$hdr" &&
    ok "generation_config.json do_sample: its settings are the defaults" || no "generation_config defaults: $hdr"
"$GLM4V" -m "$T/gs" -p "Hi" -n 4 -q --temp 0 --dump "$T/gs2.st" >/dev/null 2>&1
grep -q '"gen.mode":"greedy"' <(head -c 200000 "$T/gs2.st" | tr -d '\0') && ok "--temp 0 is greedy" || no "--temp 0 not greedy"
