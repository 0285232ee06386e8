// SPDX-License-Identifier: MIT
// quant_i8x.h - Linear over int8 weights whose scheme also quantises the input to int8 per token (W8A8:
// compressed-tensors int-quantized with dynamic "token" input_activations, or pack-quantized 8-bit weights with
// them): the dot products of the two codes in exact integer arithmetic (quant_i8x.c). quant.c's quant_linear_batch
// hands such Linears here.
#ifndef GLM4V_QUANT_I8X_H
#define GLM4V_QUANT_I8X_H
#include "ops.h"

// 1 when W's Linear runs here: int8 weights (DT_I8, or DT_Q8 without zero points), one scale per tensor or per
// output channel, K <= 65536, and dynamic per-token int8 input quantisation that is enabled (quant_act_enabled)
int i8x_applies(const Tensor *W);
// floats of one prepared input row for K columns (the codes as bytes, K rounded up to 64, then the row's scale and
// its code sum)
size_t i8x_row_floats(int K);
// n input rows x (row stride ldx) quantised per token into dst (row stride ldq) for weights W: the codes (biased by
// 128 to unsigned bytes for DT_I8 weights, as vpdpbusd multiplies unsigned by signed bytes), the scale, the code sum
void i8x_prepare(float *dst, int64_t ldq, const float *x, int64_t ldx, int n, const Tensor *W);
// y[i * ldy + r] for the n prepared rows and output rows r in [r0, r1) of W (no bias):
//   float(sum_k qx_i[k] * qw_r[k]) * sx[i] * scale(r)
// the integer sum is exact, so the bits never depend on the order, the batch, the threads or the instruction set
void i8x_rows(float *y, int64_t ldy, const float *xq, int64_t ldq, const Tensor *W, int n, int r0, int r1);
// reference twin: the same sums in int64 one output at a time, + b
void i8x_linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n);
#endif
