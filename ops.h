// SPDX-License-Identifier: MIT
// ops.h - the kernels (ops.c): Linear over bf16/f16/f32 weights, norms, activations, attention. fp32 activations;
// every fast kernel has a naive twin and gives the same bits for any thread count and instruction set.
#ifndef GLM4V_OPS_H
#define GLM4V_OPS_H

#include "base.h"

#include <math.h>

typedef struct {
    int avx2, avx512f, avx512bw, avx512bf16, f16c, fma; // runtime CPU features actually used
    int avx512vbmi;                                     // vpermi2b (quant_fp8x.c's FP8 -> bf16 table lookup)
    int avx512vnni;                                     // vpdpbusd (quant_i8x.c's int8 dot products)
    int amx_bf16; // AMX tiles for the bf16 mode's dense Linears: GLM4V_AMX=1 and usable (ops_amx.h; untested);
                  // 2: GLM4V_AMX=emulate, the same kernel on software tiles (tests)
} CpuFeatures;
extern CpuFeatures cpu;
// detect features (GLM4V_PORTABLE=1: scalar kernels; GLM4V_ISA=avx2: no AVX-512; GLM4V_AMX=1: AMX tiles where the
// CPU has them, else one line on stderr)
void ops_init(void);
// OpenMP's idle threads: a thread waiting at a barrier or for the next parallel region spins GOMP_SPINCOUNT times
// before it sleeps, by default 300000 (15 ms where PAUSE exits to the hypervisor, as on this project's VMs): on a
// machine shared with other jobs the spinning thread holds its core while its sibling, preempted mid-task, waits for
// one, and decode ran 2-3x slower. libgomp reads the variable when it is loaded, before main, so front ends call this
// first in main: unless GOMP_SPINCOUNT, OMP_WAIT_POLICY or GLM4V_NO_REEXEC is set it sets GOMP_SPINCOUNT to
// OPS_SPINCOUNT and re-executes the program (/proc/self/exe) once; where that fails the program goes on as it was
#define OPS_SPINCOUNT "3000"
void ops_omp_reexec(char **argv);
const char *ops_features(void); // "avx512f,avx512bf16,..." for provenance

// y[n, out] = x[n, in] . W[out, in]^T (+ b[out]);  parallel over output tiles, the same bits for any thread count and
// instruction set; each row's bits as if it were alone (batch-invariant: any n, row position, chunk, threads)
void linear(float *y, const float *x, const Tensor *W, const Tensor *b, int n);
void linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n);
// the same in fp32 whatever the compute mode (--compute bf16 keeps what HF upcasts to float32 in fp32)
void linear_fp32(float *y, const float *x, const Tensor *W, const Tensor *b, int n);
// one Linear of a batch: y[n, W->rows] (row stride ldy) = x[n, W->cols] (row stride ldx) . W^T (+ b)
typedef struct {
    float *y;          // [n, ldy]
    int64_t ldy;       // row stride of y (floats)
    const float *x;    // [n, ldx]
    int64_t ldx;       // row stride of x (floats)
    const Tensor *W;   // [out, in]
    const Tensor *b;   // [out] or NULL
    int n;             // rows
} LinearJob;
#define LINEAR_MAX_JOBS 512
// several Linears in one parallel region (e.g. q/k/v, gate/up, the experts of a token): one OpenMP fork per batch
void linear_batch(const LinearJob *jobs, int njobs);
// C[M, N] (+)= A . B with A(i, k) = A[i * ars + k * acs] broadcast and B [K, N] (ldb) rows as vectors: one fma chain
// per output over k (accumulate: starting from C); bits independent of the instruction set. The GEMM inside
// attention_head, exposed for its agreement test with the naive twin in tests/test_ops.c
void gemm_bcast(float *C, int64_t ldc, const float *A, int64_t ars, int64_t acs, const float *B, int64_t ldb, int M,
                int N, int K, int accumulate);
// expf within about 1 ulp, the same bits on every instruction set (softmax, SiLU)
float exp_fast(float x);
// row r of W as fp32
void tensor_row_f32(float *dst, const Tensor *W, int64_t r);
// element i (flat) as fp32
float tensor_get(const Tensor *W, int64_t i);
// w[n] as fp32 (norm weights, biases)
void tensor_to_f32(float *dst, const Tensor *W, int64_t n);

// out[n, d] = rmsnorm(x) * w  (HF Glm4vRMSNorm / Glm4vMoeRMSNorm)
void rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps);
// out[n, d] = layernorm(x) * w + b (biased variance)
void layernorm(float *out, const float *x, const float *w, const float *b, int n, int d, float eps);
void softmax_inplace(float *x, int n);
static inline float silu_f(float x) { return x / (1.0f + expf(-x)); }
float gelu_erf(float x);
// the 16-lane tree every dot product ends with: s[j] = a[j] + a[j+8], then + 4, + 2, + 1
float ops_tree16(const float a[16]);
// deterministic dot product in a fixed lane order
float dot_f32(const float *a, const float *b, int n);
// y = silu(g) * u elementwise (exp_fast; y may alias g or u); _naive: libm expf
void swiglu(float *y, const float *g, const float *u, int n);
void swiglu_naive(float *y, const float *g, const float *u, int n);
// eager attention for one head (softmax fp32; --compute bf16: q.k and P.v on bf16 operands, ops_bf16.h):
// q [nq, ldq], k/v [nk, ldk/ldv], out [nq, ldo];
// q_offset >= 0: causal (query i sees keys j <= q_offset + i); < 0: bidirectional.
// scores: attention_scratch_floats(nk) floats of per-thread scratch
void attention_head(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                    int nq, int nk, int hd, float scale, int q_offset, float *scores);
void attention_head_naive(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v,
                          int ldv, int nq, int nk, int hd, float scale, int q_offset);
// attention_head in the bf16 mode (ops_compute == COMPUTE_BF16), bidirectional, hd even and <= 512, on K and V
// packed once by the caller for every query chunk of the head: kpk [nk, ldkp] = pack_pairs_cols of K (hd / 2 pairs
// a row), vpk [(nk + 1) / 2, ldvp] = pack_pairs_rows of V (hd a row). The same bits as attention_head on k and v.
void attention_head_kvpairs(float *out, int ldo, const float *q, int ldq, const uint32_t *kpk, int64_t ldkp,
                            const uint32_t *vpk, int64_t ldvp, int nq, int nk, int hd, float scale, float *scores);
size_t attention_scratch_floats(int nk);
// allocate every OpenMP thread's kernel tile buffer for weights with up to max_cols columns
void ops_reserve(size_t max_cols);
// the same, plus the permuted activations of Linears over up to `rows` rows (prefill chunks, vision batches)
void ops_reserve_rows(size_t rows, size_t max_cols);

#endif
