// SPDX-License-Identifier: MIT
// ops_amx.c - the bf16 compute mode's dense Linear on Intel AMX tiles (ops_amx.h): opt-in (GLM4V_AMX=1), UNTESTED on
// hardware. A tile holds 16 rows of 64 bytes; TDPBF16PS C += A . B takes A as 16 rows of 32 bf16 (16 pairs along K)
// and B as 16 rows (one per pair) of 16 columns (a pair of bf16 each, "VNNI" layout), so C[i][n] (fp32) gains
// A[i][2p] * B[p][2n] then A[i][2p + 1] * B[p][2n + 1] for p = 0..15 in turn: one chain per output along K.
// Here A = 16 prepared input rows (read in place: they are bf16 rows already), B = 16 weight rows rearranged into
// pairs x rows once per call (a thread buffer), C = 16 x 16 outputs; two input tiles share each weight tile.
// Built twice: as itself (the instructions, target amx-tile / amx-bf16) and, in tests/test_amx.c, with
// GLM4V_AMX_EMULATE defined: the same code over a software model of the five tile instructions (Intel SDM
// pseudo-code), so the tiling is checked on any CPU.
#include "ops_amx.h"
#include "ops_bf16.h"
#include "base.h"

#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <cpuid.h>
#include <immintrin.h>

#define AMX_CH 32 // bf16 along K per tile row (64 bytes): one chunk
#define AMX_T 16  // rows of a tile: input rows, weight rows (columns of C) and pairs of a chunk

// the tile configuration ldtilecfg reads (palette 1): bytes per row and rows of tiles 0..15
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} AmxCfg;

#ifdef GLM4V_AMX_EMULATE
// ---------------------------------------------------------------------------- software model (tests)
#define AMX_FN(f) f##_emu
#define AMX_TARGET
typedef struct {
    int rows, colsb;     // configured shape
    uint8_t d[16][64];   // [rows][colsb] bytes
} EmuTile;
static _Thread_local EmuTile emu_tile[8];
static void emu_loadconfig(const AmxCfg *c) {
    for (int t = 0; t < 8; t++) emu_tile[t].rows = c->rows[t], emu_tile[t].colsb = c->colsb[t];
}
static void emu_loadd(int t, const void *p, size_t stride) {
    memset(emu_tile[t].d, 0, sizeof emu_tile[t].d);
    for (int r = 0; r < emu_tile[t].rows; r++) memcpy(emu_tile[t].d[r], (const uint8_t *)p + r * stride, (size_t)emu_tile[t].colsb);
}
static void emu_stored(int t, void *p, size_t stride) {
    for (int r = 0; r < emu_tile[t].rows; r++) memcpy((uint8_t *)p + r * stride, emu_tile[t].d[r], (size_t)emu_tile[t].colsb);
}
static void emu_zero(int t) { memset(emu_tile[t].d, 0, sizeof emu_tile[t].d); }
static uint16_t emu_bf16(const EmuTile *t, int r, int e) {
    uint16_t v;
    memcpy(&v, t->d[r] + 2 * e, 2);
    return v;
}
// TDPBF16PS (SDM): FOR m < dst.rows: FOR k < a.colsb / 4: FOR n < dst.colsb / 4:
//   tmp.fp32[n] += make_fp32(a.row[m].bf16[2k+0]) * make_fp32(b.row[k].bf16[2n+0])
//   tmp.fp32[n] += make_fp32(a.row[m].bf16[2k+1]) * make_fp32(b.row[k].bf16[2n+1])   (DAZ, FTZ, RNE)
static void emu_dp(int c, int a, int b) {
    EmuTile *C = &emu_tile[c];
    const EmuTile *A = &emu_tile[a], *B = &emu_tile[b];
    for (int m = 0; m < C->rows; m++)
        for (int k = 0; k < A->colsb / 4; k++)
            for (int n = 0; n < C->colsb / 4; n++) {
                float acc;
                memcpy(&acc, C->d[m] + 4 * n, 4);
                acc = bf16c_fma_step(acc, emu_bf16(A, m, 2 * k), emu_bf16(B, k, 2 * n));
                acc = bf16c_fma_step(acc, emu_bf16(A, m, 2 * k + 1), emu_bf16(B, k, 2 * n + 1));
                memcpy(C->d[m] + 4 * n, &acc, 4);
            }
}
#define TILE_LOADCONFIG(cfg) emu_loadconfig(cfg)
#define TILE_LOADD(t, p, s) emu_loadd(t, p, s)
#define TILE_STORED(t, p, s) emu_stored(t, p, s)
#define TILE_ZERO(t) emu_zero(t)
#define TILE_DPBF16PS(c, a, b) emu_dp(c, a, b)
#define TILE_RELEASE() ((void)0)
#else
// ---------------------------------------------------------------------------- the instructions
#define AMX_FN(f) f
#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16")))
#define TILE_LOADCONFIG(cfg) _tile_loadconfig(cfg)
#define TILE_LOADD(t, p, s) _tile_loadd(t, p, s)
#define TILE_STORED(t, p, s) _tile_stored(t, p, s)
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_DPBF16PS(c, a, b) _tile_dpbf16ps(c, a, b)
#define TILE_RELEASE() _tile_release()

int amx_usable(void) {
    static int state = -1; // (asked once; ops_init runs before any parallel region)
    if (state >= 0) return state;
    state = 0;
    unsigned a, b, c, d;
    // CPUID.(EAX=7, ECX=0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE; CPUID.1:ECX bit 27 OSXSAVE
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d >> 22 & 1) || !(d >> 24 & 1)) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return 0; // XTILECFG, XTILEDATA enabled by the OS
#if defined(__linux__) && defined(SYS_arch_prctl)
    // ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): Linux hands out the tile data on request only
    if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return 0;
    state = 1;
#endif
    return state;
}

float amx_chain_naive(const uint16_t *x, const uint16_t *w, int K) {
    float acc = 0.0f;
    const int Kp = (K + AMX_CH - 1) / AMX_CH * AMX_CH; // (the padding's +0 products still turn a -0 sum into +0)
    for (int k = 0; k < Kp; k += 2) {
        // tmp.fp32[n] += make_fp32(a.bf16[2k+0]) * make_fp32(b.bf16[2n+0]), then the odd element
        acc = bf16c_fma_step(acc, k < K ? x[k] : 0, k < K ? w[k] : 0);
        acc = bf16c_fma_step(acc, k + 1 < K ? x[k + 1] : 0, k + 1 < K ? w[k + 1] : 0);
    }
    return acc;
}
#endif

// ---------------------------------------------------------------------------- the kernel

static _Thread_local uint32_t *amx_wbuf; // [chunks][16 pairs][16 weight rows]: the weight tiles of 16 rows
static _Thread_local size_t amx_wcap;    // uint32
static _Thread_local uint16_t *amx_xbuf; // [2][16][Kp]: input rows of a partial tile, zero rows after them
static _Thread_local size_t amx_xcap;    // uint16

// b[(c * 16 + p) * 16 + n] = the pair (w[n][32c + 2p], w[n][32c + 2p + 1]) of rows n < nt (K apart), zero past K and
// for n >= nt
static void weight_tiles(uint32_t *b, const uint16_t *w, int K, int nt, int Kp) {
    memset(b, 0, (size_t)Kp / 2 * AMX_T * sizeof *b);
    for (int n = 0; n < nt; n++) {
        const uint16_t *row = w + (int64_t)n * K;
        for (int k = 0; k < K; k += 2) {
            const uint32_t lo = row[k], hi = k + 1 < K ? row[k + 1] : 0;
            b[(int64_t)(k / 2) * AMX_T + n] = lo | hi << 16;
        }
    }
}

// grow a thread buffer (first use per size; kept for the next calls)
static void *grow(void *p, size_t *cap, size_t n, size_t es) {
    if (*cap >= n) return p;
    free(p);
    *cap = n;
    return xmalloc(n * es);
}

// this thread's tile buffers for K up to max_cols (ops_reserve: sized before the token loop, not in it)
void AMX_FN(amx_reserve)(int max_cols) {
    const int Kp = (max_cols + AMX_CH - 1) / AMX_CH * AMX_CH;
    amx_wbuf = grow(amx_wbuf, &amx_wcap, (size_t)Kp / 2 * AMX_T, sizeof *amx_wbuf);
    amx_xbuf = grow(amx_xbuf, &amx_xcap, (size_t)2 * AMX_T * Kp, sizeof *amx_xbuf);
}

AMX_TARGET void AMX_FN(amx_block)(float *y, int64_t ldy, const uint16_t *xq, int64_t ldq16, const uint16_t *w, int K,
                                  int m, int nr) {
    const int Kp = (K + AMX_CH - 1) / AMX_CH * AMX_CH, nch = Kp / AMX_CH;
    AMX_FN(amx_reserve)(K); // (a no-op after ops_reserve)
    AmxCfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    // tiles 0, 1: input rows (A); 2: weights (B); 4, 5: outputs (C); each 16 rows of 64 bytes
    static const int used[5] = {0, 1, 2, 4, 5};
    for (int u = 0; u < 5; u++) cfg.rows[used[u]] = AMX_T, cfg.colsb[used[u]] = 64;
    TILE_LOADCONFIG(&cfg);
    float cbuf[AMX_T * AMX_T];
    for (int r0 = 0; r0 < nr; r0 += AMX_T) {
        const int nt = nr - r0 < AMX_T ? nr - r0 : AMX_T;
        weight_tiles(amx_wbuf, w + (int64_t)r0 * K, K, nt, Kp);
        for (int t0 = 0; t0 < m; t0 += 2 * AMX_T) {
            // input tiles g = 0, 1: rows t0 + 16 g ..; in place when whole, else copied with zero rows after them
            const uint16_t *a[2];
            size_t sa[2];
            int mg[2];
            for (int g = 0; g < 2; g++) {
                const int i0 = t0 + g * AMX_T;
                mg[g] = m - i0 < 0 ? 0 : m - i0 < AMX_T ? m - i0 : AMX_T;
                if (mg[g] == AMX_T) a[g] = xq + (int64_t)i0 * ldq16, sa[g] = (size_t)ldq16 * 2;
                else {
                    uint16_t *p = amx_xbuf + (size_t)g * AMX_T * Kp;
                    memset(p, 0, (size_t)AMX_T * Kp * sizeof *p);
                    for (int i = 0; i < mg[g]; i++) memcpy(p + (size_t)i * Kp, xq + (int64_t)(i0 + i) * ldq16, (size_t)Kp * 2);
                    a[g] = p, sa[g] = (size_t)Kp * 2;
                }
            }
            TILE_ZERO(4);
            TILE_ZERO(5);
            for (int c = 0; c < nch; c++) {
                TILE_LOADD(2, amx_wbuf + (size_t)c * AMX_T * AMX_T, 64);
                TILE_LOADD(0, a[0] + (size_t)c * AMX_CH, sa[0]);
                TILE_DPBF16PS(4, 0, 2);
                if (mg[1]) {
                    TILE_LOADD(1, a[1] + (size_t)c * AMX_CH, sa[1]);
                    TILE_DPBF16PS(5, 1, 2);
                }
            }
            for (int g = 0; g < 2 && mg[g]; g++) {
                if (g == 0) TILE_STORED(4, cbuf, AMX_T * sizeof(float));
                else TILE_STORED(5, cbuf, AMX_T * sizeof(float));
                for (int i = 0; i < mg[g]; i++)
                    memcpy(y + (int64_t)(t0 + g * AMX_T + i) * ldy + r0, cbuf + i * AMX_T, (size_t)nt * sizeof(float));
            }
        }
    }
    TILE_RELEASE();
}
