#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_isa.sh - every kernel follows one order of operations on every instruction set: a dump (image, prefill,
# decode) is bit-identical with AVX-512, with AVX-512 F / BW only (GLM4V_ISA=avx512: no BF16, VBMI, VNNI), with AVX2
# only (GLM4V_ISA=avx2) and with the portable C (GLM4V_PORTABLE=1),
# and for any OPENBLAS_CORETYPE (no BLAS on the default path). Compared tensor by tensor with --rtol 0 --atol 0.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for model in tiny-glm4v-moe tiny-glm4v-dense; do
    # a 450x300 photo: 704 patches and ~200 prompt tokens, so the vision tower and (in one chunk, moe) the prefill
    # run large batches; the dense model prefills in chunks of 7
    chunk=512
    [ $model = tiny-glm4v-dense ] && chunk=7
    args=(-m weights/$model -p "Describe the picture." -i tests/data/images/photo_450x300.png -n 6 -q --chunk $chunk -t 2)
    "$GLM4V" "${args[@]}" --dump "$T/ref.st" >/dev/null 2>"$T/err" || echo "not ok - $model: reference run failed: $(tail -n1 "$T/err")"
    for v in "GLM4V_ISA=avx2" "GLM4V_ISA=avx512" "GLM4V_PORTABLE=1" "OPENBLAS_CORETYPE=PRESCOTT GLM4V_NO_REEXEC=1"; do
        if ! env $v "$GLM4V" "${args[@]}" --dump "$T/v.st" >/dev/null 2>"$T/err"; then
            echo "not ok - $model $v: run failed: $(tail -n1 "$T/err")"
            continue
        fi
        if out=$("$COMPARE" "$T/v.st" "$T/ref.st" --rtol 0 --atol 0 2>&1); then
            echo "ok - $model $v: dump bit-identical to the default run ($(grep -c '^PASS' <<<"$out") tensors)"
        else
            echo "not ok - $model $v: $(grep -E '^FAIL|divergence' <<<"$out" | head -n 2 | tr '\n' ' ')"
        fi
    done
done
