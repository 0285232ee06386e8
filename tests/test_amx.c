// SPDX-License-Identifier: MIT
// test_amx.c - the AMX path of the bf16 mode (ops_amx.c, opt-in, untested on hardware): its kernel, built here over
// a software model of the tile instructions (Intel SDM pseudo-code), bit-identical to the naive chain for every tile
// edge (input rows and weight rows not multiples of 16, K not a multiple of 32 or odd, denormal inputs, rows whose
// sums reach the FTZ edge) and batch-invariant; where this CPU has usable AMX tiles, the instructions themselves
// against the same chain (the check that would make the path tested).
#include "../ops.h"
#include "../ops_amx.h"
#include "../ops_bf16.h"
#include "test_util.h"

#include <string.h>

static uint64_t rs = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) { return t_rnd(&rs); }
#define bits t_bits

// a random bf16: mostly |v| < 0.1, some denormal (tiny) and some whose products fall below FLT_MIN
static uint16_t rval(int tiny) {
    float f = t_frand(&rs) * 0.1f;
    if (tiny && rnd() % 12 == 0) f *= 1e-36f;
    return f32_to_bf16(f);
}

typedef void (*BlockFn)(float *, int64_t, const uint16_t *, int64_t, const uint16_t *, int, int, int);

// kernel fn on m input rows x nr weight rows of K against amx_chain_naive, and row i alone (m = 1) against its
// place in the batch; returns the number of differing outputs
static long run_case(BlockFn fn, int m, int nr, int K, int tiny) {
    const int Kp = (K + 31) / 32 * 32, ldq16 = Kp + 32; // (as ops_bf16.c prepares rows: zero-padded, 64 bytes apart more)
    uint16_t *xq = calloc((size_t)m * ldq16, 2), *w = malloc((size_t)nr * K * 2 + 2);
    float *y = malloc((size_t)m * (nr + 3) * 4), *y1 = malloc((size_t)(nr + 3) * 4);
    for (int i = 0; i < m; i++)
        for (int k = 0; k < K; k++) xq[(size_t)i * ldq16 + k] = rval(tiny);
    for (size_t e = 0; e < (size_t)nr * K; e++) w[e] = rval(tiny);
    const int ldy = nr + 3;
    for (size_t e = 0; e < (size_t)m * ldy; e++) y[e] = -7.0f; // (outputs past nr must stay as they are)
    fn(y, ldy, xq, ldq16, w, K, m, nr);
    long bad = 0;
    for (int i = 0; i < m; i++) {
        for (int r = 0; r < nr; r++) {
            const float ref = amx_chain_naive(xq + (size_t)i * ldq16, w + (size_t)r * K, K);
            if (bits(y[(size_t)i * ldy + r]) != bits(ref)) {
                if (bad < 4) printf("# m %d nr %d K %d: y[%d][%d] %08x, naive %08x\n", m, nr, K, i, r, bits(y[(size_t)i * ldy + r]), bits(ref));
                bad++;
            }
        }
        for (int r = nr; r < ldy; r++) bad += y[(size_t)i * ldy + r] != -7.0f;
    }
    for (int i = 0; i < m; i += m > 3 ? m / 3 : 1) { // a row alone gives its bits in the batch
        fn(y1, ldy, xq + (size_t)i * ldq16, ldq16, w, K, 1, nr);
        bad += memcmp(y1, y + (size_t)i * ldy, (size_t)nr * 4) != 0;
    }
    free(xq), free(w), free(y), free(y1);
    return bad;
}

static void check_kernel(BlockFn fn, const char *what) {
    static const int ms[] = {1, 5, 16, 17, 32, 33, 50}, nrs[] = {1, 7, 16, 20, 33}, Ks[] = {1, 2, 31, 32, 33, 64, 97, 300};
    long bad = 0, n = 0;
    for (unsigned a = 0; a < sizeof ms / sizeof *ms; a++)
        for (unsigned b = 0; b < sizeof nrs / sizeof *nrs; b++)
            for (unsigned c = 0; c < sizeof Ks / sizeof *Ks; c++, n++) bad += run_case(fn, ms[a], nrs[b], Ks[c], (a + b + c) % 2);
    bad += run_case(fn, 40, 35, 4096, 1), n++;
    CHECK(bad == 0, "%s: every output equals the naive AMX chain, bit for bit, in %ld shapes (rows, weight rows and K at "
                    "and around the tile edges, denormals), and a row alone equals its row in the batch",
          what, n);
}

// the chain's edge: a sum that cancels to within a few ulp of FLT_MIN is flushed to a zero of its sign (FTZ)
static void check_ftz(void) {
    uint16_t x[32] = {0}, w[32] = {0};
    x[0] = f32_to_bf16(0x1p-60f), w[0] = f32_to_bf16(0x1p-66f); // 2^-126 = FLT_MIN: kept
    x[1] = f32_to_bf16(-0x1p-60f), w[1] = f32_to_bf16(0x1p-67f); // - 2^-127: FLT_MIN / 2, a denormal: flushed
    const float r = amx_chain_naive(x, w, 2);
    CHECK(bits(r) == 0, "AMX chain: FLT_MIN - FLT_MIN / 2 flushes to +0 (FTZ), got %08x", bits(r));
}

int main(void) {
    ops_init();
    check_kernel(amx_block_emu, "amx_block on the software tiles");
    check_ftz();
    if (amx_usable()) check_kernel(amx_block, "amx_block on this CPU's AMX tiles");
    else printf("ok - # SKIP AMX instructions: this CPU has no usable AMX-BF16 tiles (the path stays untested)\n");
    return test_done();
}
