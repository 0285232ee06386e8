// SPDX-License-Identifier: MIT
// ggml_quants.h - ggml's tensor types (ids, names, block sizes: ggml/src/ggml.c type_traits, gguf-py
// constants.GGML_QUANT_SIZES), exact fp32 dequantisation of the types the published GLM GGUF files use (ggml's
// dequantize_row_* in ggml/src/ggml-quants.c, same operations in the same order), and matrix-vector products
// y = W[rows, K] . x[K] that read the blocks directly with fp32 activations (AVX-512 / AVX2 / portable C, one order
// of operations on all three, so the same bits for any instruction set and thread count).
#ifndef GGML_QUANTS_H
#define GGML_QUANTS_H
#include <stddef.h>
#include <stdint.h>

// ggml type ids (enum ggml_type)
enum {
    GQ_F32 = 0, GQ_F16 = 1, GQ_Q4_0 = 2, GQ_Q4_1 = 3, GQ_Q5_0 = 6, GQ_Q5_1 = 7, GQ_Q8_0 = 8, GQ_Q8_1 = 9,
    GQ_Q2_K = 10, GQ_Q3_K = 11, GQ_Q4_K = 12, GQ_Q5_K = 13, GQ_Q6_K = 14, GQ_Q8_K = 15,
    GQ_IQ2_XXS = 16, GQ_IQ2_XS = 17, GQ_IQ3_XXS = 18, GQ_IQ1_S = 19, GQ_IQ4_NL = 20, GQ_IQ3_S = 21, GQ_IQ2_S = 22,
    GQ_IQ4_XS = 23, GQ_I8 = 24, GQ_I16 = 25, GQ_I32 = 26, GQ_I64 = 27, GQ_F64 = 28, GQ_IQ1_M = 29, GQ_BF16 = 30,
    GQ_TQ1_0 = 34, GQ_TQ2_0 = 35, GQ_MXFP4 = 39, GQ_NVFP4 = 40, GQ_Q1_0 = 41,
    GQ_TYPE_COUNT = 42
};

#define GQ_QK_K 256 // super-block size of the K-quants

// one ggml type
typedef struct GQType {
    const char *name;    // ggml / gguf-py name ("Q4_K"); NULL for ids that are not (or no longer) types
    int block;           // elements per block
    int bytes;           // bytes per block
    int supported;       // 1 when gq_dequant / gq_matvec handle it
} GQType;

// the type of id, or NULL when id is not a ggml type
const GQType *gq_type(uint32_t id);
// its name, or "?" for unknown ids
const char *gq_type_name(uint32_t id);
// bytes of n elements of type id (n a multiple of the block size); 0 for unknown types or a partial block
size_t gq_row_bytes(uint32_t id, int64_t n);


// naive reference: the first n elements (a multiple of the block size) of src, of type id, into y[n] as ggml's
// dequantize_row_* computes them. 0, or -1 for an unsupported type or a partial block.
int gq_dequant(uint32_t id, const void *src, float *y, int64_t n);

// the instruction set the kernels use: 2 AVX-512 (F + BW), 1 AVX2 + FMA, 0 portable C.
// Chosen once from the CPU; GLM4V_PORTABLE=1 forces 0, GLM4V_ISA=avx2 caps it at 1.
int gq_isa(void);
// use isa (capped at what the CPU has) from now on; returns the one in use (tests compare the three)
int gq_set_isa(int isa);

// y[r] = sum_k W[r, k] x[k] for r < rows, W of type id with rows of K elements (K a multiple of the block size,
// rows row_bytes apart, row_bytes >= gq_row_bytes(id, K)). Order: 16 lanes, lane j accumulates fma(w[16c+j],
// x[16c+j]) over the chunks c in order (w the exact dequantised weight; K zero-padded to a multiple of 16), then
// the tree ((l[j] + l[j+8]) + ...) of dot_f32 in ops.c; the same bits as gq_matvec_naive on every instruction set.
// Rows are split over nthreads OpenMP threads (<= 0: the OpenMP default). 0, or -1 for an unsupported type.
int gq_matvec(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, float *y,
              int nthreads);
// the same on the calling thread only (no OpenMP region: the quantised Linear of quant.c runs it inside its tasks)
int gq_matvec_serial(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, float *y);
// the same for one activation row over many rows (decode): the rows cut into GQ_R consecutive parts read side by side
// by the 4-row kernel (GQ_R sequential streams, each prefetched on into its next row); the same bits
int gq_matvec_streams(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, float *y);
// the same for M activation rows x + m ldx (a server's batched step): y[m ldy + r]; F32, F16, BF16, Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, Q4_K, Q5_K and Q6_K (AVX-512) read each weight once for the M rows, the other types (and AVX2) run
// gq_matvec_streams per row; the same bits as M single rows
int gq_matmul_streams(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, int64_t ldx,
                      int M, float *y, int64_t ldy);
// naive twin: gq_dequant of each row, then the same 16-lane sum in scalar C
int gq_matvec_naive(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, float *y);
#endif
