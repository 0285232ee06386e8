// SPDX-License-Identifier: MIT
// ops_amx.h - the bf16 compute mode's dense Linear on Intel AMX tiles (TDPBF16PS: Sapphire Rapids and later).
// Opt-in with GLM4V_AMX=1 and UNTESTED on hardware: no machine this project ran on had AMX. Its chain differs from the
// default bf16 chain (ops_bf16.h): one fp32 accumulator per output over all of K (no 16 lanes, no tree), so with it
// on, a dump's bits differ from the avx512bf16 path's; compute.path names it. tests/test_amx.c checks the tiling
// against the naive chain below through a software model of the tile instructions, and runs the real instructions
// too where the CPU has them.
#ifndef GLM4V_OPS_AMX_H
#define GLM4V_OPS_AMX_H

#include <stdint.h>

// 1 when the CPU has AMX-TILE and AMX-BF16, the OS enables the tile state (XCR0 bits 17 and 18) and Linux grants
// this process the tile data (arch_prctl ARCH_REQ_XCOMP_PERM); asked once
int amx_usable(void);

// The AMX chain of y = x . w (K elements, both bf16), as TDPBF16PS's pseudo-code runs it for one output: from +0,
// for each pair k = 2p, 2p + 1 in turn (K zero-padded to a multiple of 32): acc = fma(x[k], w[k], acc), then the
// odd element, each with denormal inputs read as zero and a denormal result flushed to zero, round to nearest even.
// y[i * ldy + r] = chain(row i of xq, row r of w) for i < m, r < nr. xq: m bf16 rows as ops_bf16.c prepares them
// (zero-padded to a multiple of 32, ldq16 uint16 apart); w: nr bf16 rows of K, K apart.
void amx_block(float *y, int64_t ldy, const uint16_t *xq, int64_t ldq16, const uint16_t *w, int K, int m, int nr);
// the same kernel over a software model of the tile instructions (ops_amx_emu.c: Intel SDM pseudo-code), any CPU
void amx_block_emu(float *y, int64_t ldy, const uint16_t *xq, int64_t ldq16, const uint16_t *w, int K, int m, int nr);
// this thread's buffers of amx_block / amx_block_emu for K up to max_cols (ops_reserve_rows calls it on every thread
// while the AMX path is on: no allocation in the token loop)
void amx_reserve(int max_cols);
void amx_reserve_emu(int max_cols);
// reference twin: the chain above on one output, one pair at a time
float amx_chain_naive(const uint16_t *x, const uint16_t *w, int K);

#endif
