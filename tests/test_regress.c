// SPDX-License-Identifier: MIT
// test_regress.c - replays the fuzz seeds (fuzz/corpus/<target>/) and every input that once crashed a parser
// (tests/data/regress/<target>/) through the fuzz targets' own code (fuzz/fuzz_<target>.c, included here with their
// entry points renamed), so `make test` and `make test-asan` keep them fixed. A target that faults kills this
// program (reported as a failure by the runner, with the file name on stderr).
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLVMFuzzerTestOneInput fz_safetensors
#include "../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_config
#include "../fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_tokenizer
#include "../fuzz/fuzz_tokenizer.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_tokenize
#define LLVMFuzzerInitialize fz_tokenize_init
#include "../fuzz/fuzz_tokenize.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fz_image
#include "../fuzz/fuzz_image.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_prompt
#define LLVMFuzzerInitialize fz_prompt_init
#include "../fuzz/fuzz_prompt.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fz_compare
#include "../fuzz/fuzz_compare.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_jinja
#include "../fuzz/fuzz_jinja.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_chat_output
#include "../fuzz/fuzz_chat_output.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_gguf
#include "../fuzz/fuzz_gguf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_gguf_model
#include "../fuzz/fuzz_gguf_model.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_pdf
#include "../fuzz/fuzz_pdf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_json
#include "../fuzz/fuzz_json.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_openai
#include "../fuzz/fuzz_openai.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_score
#define LLVMFuzzerInitialize fz_score_init
#include "../fuzz/fuzz_score.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fz_quant
#include "../fuzz/fuzz_quant.c"
#undef LLVMFuzzerTestOneInput

#include "test_util.h"

typedef int (*FuzzFn)(const uint8_t *, size_t);

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// run every file of dir through fn (in name order); returns the number of files, -1 when dir cannot be read
static int replay_dir(const char *dir, const char *target, FuzzFn fn) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096)
        if (e->d_name[0] != '.') names[n++] = xstrdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_name);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len;
        char *buf = read_file(path, &len, 1 << 26);
        if (buf) {
            fprintf(stderr, "replaying %s (%s)\n", path, target);
            fn((const uint8_t *)buf, len);
            free(buf);
        }
        free(names[i]);
    }
    return n;
}

int main(void) {
    static const struct { const char *name; FuzzFn fn; } targets[] = {
        {"safetensors", fz_safetensors}, {"config", fz_config}, {"tokenizer", fz_tokenizer}, {"tokenize", fz_tokenize},
        {"image", fz_image},
        {"prompt", fz_prompt},
        {"compare", fz_compare},
        {"jinja", fz_jinja},
        {"chat_output", fz_chat_output},
        {"gguf", fz_gguf},
        {"gguf_model", fz_gguf_model},
        {"pdf", fz_pdf},
        {"openai", fz_openai},
        {"json", fz_json},
        {"score", fz_score},
        {"quant", fz_quant},
    };
    fz_tokenize_init(NULL, NULL);
    fz_prompt_init(NULL, NULL);
    fz_score_init(NULL, NULL);
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        char dir[256];
        snprintf(dir, sizeof dir, "fuzz/corpus/%s", targets[k].name);
        int seeds = replay_dir(dir, targets[k].name, targets[k].fn);
        snprintf(dir, sizeof dir, "%s/regress/%s", test_data_dir(), targets[k].name);
        int regs = replay_dir(dir, targets[k].name, targets[k].fn);
        CHECK(seeds > 0, "%s: %d fuzz seeds and %d past crash inputs replayed without fault", targets[k].name, seeds,
              regs < 0 ? 0 : regs);
    }
    tokenizer_free(fz_tok);
    tokenizer_free(fz_ptok);
    engine_free(&fz_sengine);
    return test_done();
}
