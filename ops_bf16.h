// SPDX-License-Identifier: MIT
// ops_bf16.h - the bf16 compute mode (--compute bf16): every dense Linear (bf16 / f16 / f32 weights) with its input
// rows rounded to bf16 and fp32 accumulation, and attention's two products on bf16 operands (attention_head), as a
// PyTorch bf16 model's matmuls (torch.bfloat16, oneDNN vdpbf16ps).
// One summation order on every path: AVX512_BF16 vdpbf16ps, and its exact emulation on AVX2 and in portable C.
#ifndef GLM4V_OPS_BF16_H
#define GLM4V_OPS_BF16_H

#include "base.h"

typedef enum { COMPUTE_F32 = 0, COMPUTE_BF16 = 1 } ComputeMode;
extern int ops_compute; // ComputeMode of every dense Linear (process-wide; set once before the model runs)

// "f32" or "bf16" -> ops_compute; -1 + glm_errmsg on another name
int ops_set_compute(const char *name);
const char *ops_compute_name(void); // "f32" / "bf16"
// the kernel that runs the bf16 products: "avx512bf16" (vdpbf16ps), "avx2-emulation", "portable-emulation";
// "fp32" in the f32 mode. The three bf16 paths give identical bits (tests/test_bf16.c). "amx-bf16-untested": the
// opt-in AMX tiles (GLM4V_AMX=1 on a CPU with AMX-BF16: ops_amx.h) for the dense Linears, a chain of their own
// (other bits); attention and the FP8 x FP8 products keep vdpbf16ps; "amx-bf16-emulated": that chain on software
// tiles (GLM4V_AMX=emulate, for tests)
// weight rows per block of a bf16-mode Linear task (ops.c): a multiple of the kernel's tile
int bf16c_rows_per_block(int dflt);
const char *ops_compute_path(void);

// The dot chain of output y = x . w (K elements, both bf16): K zero-padded to a multiple of 32; in chunk c lane j
// (0..15) runs vdpbf16ps's two fp32 FMAs: acc[j] = fma(w[32c+2j+1], x[32c+2j+1], acc[j]), then the even pair, each
// with denormal inputs read as zero (DAZ) and a denormal result flushed to zero (FTZ), round to nearest even; then
// the 16-lane tree of ops.c (ops_tree16). Its prepared input row holds bf16c_row_floats(K) floats.
size_t bf16c_row_floats(int K);
// one input row x[K] (fp32) rounded to bf16 (f32_to_bf16) in the layout the current path reads
void bf16c_prepare_row(float *dst, const float *x, int K);
// y[i * ldy + r] = row i of xq (m rows, stride ldq floats) . W_r for r in [r0, r1); W bf16, f16 or f32 (f16 / f32
// rows rounded to bf16 as they are read, the same bits as a checkpoint rounded to bf16 once)
// pf (or NULL): pf_bytes that the next block reads cold (its weight rows, or its input rows), prefetched a line
// per 32 k of every tile in turn, so that the next block does not wait for them
void bf16c_block(float *y, int64_t ldy, const float *xq, int64_t ldq, const Tensor *W, int m, int r0, int r1,
                 const void *pf, size_t pf_bytes);
// the same over nr bf16 rows given as they are (row r at w + r * K): y[i * ldy + r] = row i of xq . row r (always
// the chain above, never the AMX one: FP8 x FP8 prompts must match their decode kernel)
void bf16c_block_rows(float *y, int64_t ldy, const float *xq, int64_t ldq, const uint16_t *w, int K, int m, int nr);
// Attention in the bf16 mode (ops.c attention_head): both matrix products with bf16 operands packed in pairs along
// the summed dimension (uint32: the first element in the low half, as vdpbf16ps reads them) and one fp32 lane per
// output: C[i, n] (+)= chain over kp of the vdpbf16ps step (odd pair, then even, DAZ / FTZ) of A(i, kp) =
// A[i * ars + kp * acs] (broadcast) and B[kp * ldb + n]; from 0 or (accumulate) from C. The same bits on every path.
void gemm_pairs(float *C, int64_t ldc, const uint32_t *A, int64_t ars, int64_t acs, const uint32_t *B, int64_t ldb,
                int M, int N, int Kp, int accumulate);
// dst[kp * ldd + n] = pair(src[2kp][n], src[2kp + 1][n]) for kp < (rows + 1) / 2 (a missing odd row is zero), each
// element rounded with f32_to_bf16; src rows of stride lds. cs (or NULL): each element first multiplied by cs[n] in
// fp32 (attention's P = e * (1 / l), normalised as it is packed)
void pack_pairs_rows(uint32_t *dst, int64_t ldd, const float *src, int64_t lds, int rows, int n, const float *cs);
// dst[r * ldd + kp] = pair(src[r][2kp], src[r][2kp + 1]) for kp < (cols + 1) / 2 (a missing odd column is zero)
void pack_pairs_cols(uint32_t *dst, int64_t ldd, const float *src, int64_t lds, int rows, int cols);
// reference twin of gemm_pairs: bf16c_pair_step one output at a time
void gemm_pairs_naive(float *C, int64_t ldc, const uint32_t *A, int64_t ars, int64_t acs, const uint32_t *B,
                      int64_t ldb, int M, int N, int Kp, int accumulate);
// reference twin: the chain above written plainly from Intel's VDPBF16PS pseudo-code, one output at a time
// (x rounded with f32_to_bf16, W converted with f32_to_bf16 when not bf16), + b
void linear_bf16c_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n);
// one vdpbf16ps lane step on scalars (the emulation): acc + a1 * b1 then + a0 * b0, DAZ / FTZ, RNE
float bf16c_pair_step(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1);
// one DAZ / FTZ / RNE fma of two bf16 into an fp32 accumulator: acc + a * b (the step of both chains: two per pair
// here, one per element in the AMX chain of ops_amx.h)
float bf16c_fma_step(float acc, uint16_t a, uint16_t b);
// the hardware instruction on the same scalars (AVX512_BF16 only; the test compares the two)
float bf16c_pair_step_hw(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1);
// register-only vdpbf16ps loop on every thread for about `seconds`: GFLOP/s counting 2 per multiply-add (0 without
// AVX512_BF16)
double bf16_dot_peak_gflops(double seconds);

#endif
