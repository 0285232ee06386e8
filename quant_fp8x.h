// SPDX-License-Identifier: MIT
// quant_fp8x.h - Linear over FP8 E4M3 weights whose scheme also quantises the input to FP8 per token (the official
// GLM-4.5V-FP8 / GLM-4.6V-FP8 releases): the exact products of the two codes summed by the bf16 mode's vdpbf16ps
// chain (quant_fp8x.c). quant.c's quant_linear_batch hands such Linears here.
#ifndef GLM4V_QUANT_FP8X_H
#define GLM4V_QUANT_FP8X_H
#include "ops.h"

#define FP8X_BLOCK 20 // batches of more than 4 rows: weight rows converted per tile pass (4 x 5 tiles)
// 1 when W's Linear runs here: FP8 E4M3 weights, one scale per tensor or per output channel, no zero point, and
// dynamic per-token FP8 input quantisation that is enabled (quant_act_enabled)
int fp8x_applies(const Tensor *W);
// floats of one prepared input row for K columns (the codes in unpack order, in the bf16 path's layout; then, where
// the AVX2 decode kernel runs, the same codes times 2^8 in its fp32 layout)
size_t fp8x_row_floats(int K);
// n input rows x (row stride ldx) quantised per token: sx[i] = the row's scale, dst + i * ldq = its E4M3 codes as
// bf16, K zero-padded to a multiple of 64 and permuted into unpack order (the layout bf16c_prepare_row writes)
void fp8x_prepare(float *dst, int64_t ldq, float *sx, const float *x, int64_t ldx, int n, int K);
// y[i * ldy + r] for the n prepared rows and output rows r in [r0, r1) of W (no bias):
//   (sum_k qx_i[k] * qw_r[k]) * sx[i] * scale(r)
// one chain per output whatever n, r0, r1 and the path: the decode kernels (n <= 4: AVX512_BF16 + VBMI, else AVX2 +
// F16C) read the FP8 bytes directly; otherwise rows are converted block by block into a per-thread bf16 buffer for
// ops_bf16.c's tiles
void fp8x_rows(float *y, int64_t ldy, const float *xq, int64_t ldq, const float *sx, const Tensor *W, int n, int r0,
               int r1);
// reference twin: the chain written out from Intel's VDPBF16PS pseudo-code (bf16c_pair_step) one output at a time, + b
void fp8x_linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n);
// position p (0..63) of a block in unpack order holds element fp8x_unpack_src(p) of the block
int fp8x_unpack_src(int p);
#endif
