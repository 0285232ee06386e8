// SPDX-License-Identifier: MIT
// quant.h - Linear over quantised weights (quant.c): FP8 E4M3, int8 and packed int4/int8 with per-tensor, per-channel,
// per-group or per-block scales (compressed-tensors float-quantized / int-quantized / pack-quantized, and block FP8
// with weight_scale_inv), and the dynamic activation quantisation their schemes apply to a Linear's input
// (compressed_tensors.quantization.lifecycle.forward). The weight formula is base.h's (above Tensor).
#ifndef GLM4V_QUANT_H
#define GLM4V_QUANT_H

#include "ops.h"

// element (r, c) of a quantised weight in fp32, one at a time (the reference every kernel is tested against)
float quant_get(const Tensor *W, int64_t r, int64_t c);
// the scale of row r, column group g, as fp32
float quant_scale(const Tensor *W, int64_t r, int64_t g);
// row r of W dequantised into dst[W->cols]: _naive = quant_get per element; the fast one reads whole vectors of
// quantised bytes (AVX-512 / AVX2 / portable); both exact, so the same bits
void quant_row_naive(float *dst, const Tensor *W, int64_t r);
void quant_row(float *dst, const Tensor *W, int64_t r);
// x[W->cols] . row r of W, in dot_f32's order over the dequantised row (so: the bits of
// dot_f32(x, quant_row(W, r))), reading the quantised bytes directly: the decode kernel (int4 and row-scale int8:
// see below)
float quant_dot(const float *x, const Tensor *W, int64_t r);
// int8 weights with one scale per row (per tensor, per channel or per block of rows: quant_scale_after) sum their
// codes and apply the scale once: quant_dot(x, W, r) is dot_f32(x, quant_row_codes(W, r)) * quant_scale(W, r, 0), the
// same real number as x . (float(q - zero) * scale), within fp32 rounding of it, in decode and in batches alike (one
// multiply per output instead of one per weight: the int8 decode kernel then reads its bytes at memory speed)
int quant_scale_after(const Tensor *W);
void quant_row_codes(float *dst, const Tensor *W, int64_t r); // float(q - zero), row r (no scale)
// int4 (Q4) weights sum in "octet order" instead (quant.c, where the int4 kernels are): quant_dot(x, W, r) is
// dot_f32(xo, wo, Kp) over these permutations of x and of the dequantised row (Kp = K rounded up to 128, zero-padded:
// xo[128c + 16j + k] = x[128c + 8k + j]), in decode and in batches alike
void quant_permute_octets(float *xo, const float *x, int64_t K);

// FP8 E4M3 (torch.float8_e4m3fn) <-> fp32: to_f32 is exact; from_f32 is torch's cast (c10 fp8e4m3fn_from_fp32_value:
// round to nearest even, |x| >= 480 and NaN -> NaN code 0x7f / 0xff)
float fp8_e4m3_to_f32(uint8_t b);
uint8_t fp8_e4m3_from_f32(float f);
// fake-quantise n rows (row stride ld) of K activations in place as `mode` says (compressed-tensors forward_quantize
// with dynamic token-strategy args; vLLM per_token_group_quant_fp8 in groups of `group` columns for ACT_FP8_GROUP)
void quant_act_rows(float *x, int64_t ld, int n, int K, ActQuant mode, int64_t group);

// one row's dynamic FP8 per-token quantisation as codes: q[k] = the E4M3 value of x[k] / scale (fp32, exact), the
// scale returned (quant_act_rows with ACT_FP8_TOKEN writes q[k] * scale)
float quant_act_fp8_codes(float *q, const float *x, int K);
// the same for int8 (ACT_INT8_TOKEN): q[k] = round(clamp(x[k] / scale, -128, 127)); a row whose scale is not finite
// (a NaN or infinite input) gets zero codes and a NaN scale
float quant_act_int8_codes(int8_t *q, const float *x, int K);
// 0: leave the activations in fp32 (--act-quant off); 1 (default): apply each weight's ActQuant
extern int quant_act_enabled;

// a batch of Linears some of whose weights are quantised (ops.c's linear_batch hands such batches here): the plain
// jobs go back to linear_batch; each quantised output is one quant_dot over the (fake-quantised) input row, so the
// bits do not depend on the batch size, the tasks, the threads or the instruction set
void quant_linear_batch(const LinearJob *jobs, int njobs);
// reference: y[n, O] = act(x)[n, K] . dequant(W)^T (+ b), double accumulation over quant_get (like linear_naive)
void quant_linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n);

#endif
