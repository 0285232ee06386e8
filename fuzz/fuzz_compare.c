// SPDX-License-Identifier: MIT
// fuzz_compare.c - libFuzzer target: glm4v-compare's readers on arbitrary bytes: .npy (header dict, dtype, shape),
// .npz (zip central directory, zip64 records, stored/deflated entries, CRC) and safetensors, then its per-file
// preparation (aliases, top-k row reordering) and a comparison of every tensor with itself. The first byte picks
// the reader. compare.c's parsers are static: the file is included here with its main renamed.
#define main glm4v_compare_main
#include "../compare.c"
#undef main

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t sel = data[0] % 3;
    data++, size--;
    TFile f;
    memset(&f, 0, sizeof f);
    f.path = "fuzz.npz";
    f.buf = malloc(size ? size : 1); // the reader's buffer, exact size
    if (!f.buf) return 0;
    if (size) memcpy(f.buf, data, size);
    int rc;
    if (sel == 0) rc = npy_parse(&f, f.buf, size, "fuzz", NULL, "fuzz.npy");
    else if (sel == 1) rc = npz_parse(&f, f.buf, size);
    else {
        rc = sf_parse(&f.sf, f.buf, size, "fuzz.safetensors");
        if (rc == 0) {
            f.is_sf = 1;
            for (int i = 0; i < f.sf.n; i++) {
                const STensor *t = &f.sf.t[i];
                tfile_add(&f, t->name, t->dtype, t->ndim, t->shape, t->data, NULL);
            }
        }
    }
    if (rc == 0) {
        tfile_prepare(&f);
        for (int i = 0; i < f.n; i++) {
            Row r;
            memset(&r, 0, sizeof r);
            r.name = f.e[i].name;
            r.a = r.b = &f.e[i];
            r.rank = rank_of(r.name);
            compare_pair(&r, 0, 1e-4);
            find_ent(&f, r.name);
        }
        last_hidden(&f);
    }
    tfile_close(&f); // frees f.buf and the entries (also after a failed parse)
    return 0;
}
