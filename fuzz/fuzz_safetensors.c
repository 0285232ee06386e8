// SPDX-License-Identifier: MIT
// fuzz_safetensors.c - libFuzzer target: sf_parse (safetensors header length, JSON header, dtypes, shapes, offsets)
// on arbitrary bytes; every tensor it accepts must lie inside the buffer (its bytes are read).
#include "../dump.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // a private copy: ASan then catches any read past the end of the "file"
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    SFile f;
    if (sf_parse(&f, buf, size, "fuzz.safetensors") == 0) {
        // accepted: the tensors tile the data block exactly (contiguous, no overlap, nothing after the last)
        uint64_t hlen = 0, sum = 0;
        for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
        for (int i = 0; i < f.n; i++) sum += f.t[i].nbytes;
        if (sum != size - 8 - hlen) abort();
        uint32_t crc = 0;
        for (int i = 0; i < f.n; i++) {
            const STensor *t = &f.t[i];
            crc ^= crc32_bytes(t->data, t->nbytes); // reads every byte the header promises
            if (sf_find(&f, t->name) != t) abort();  // sorted, unique names
            size_t numel = 1;
            for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
            if (numel * (size_t)dtype_size[t->dtype] != t->nbytes) abort();
        }
        (void)crc;
        sf_close(&f);
    }
    free(buf);
    return 0;
}
