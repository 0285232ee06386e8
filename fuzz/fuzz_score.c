// SPDX-License-Identifier: MIT
// fuzz_score.c - libFuzzer target: one `glm4v score` case line (scorer.c score_case) against the tiny checkpoint:
// the case JSON (messages / prompt / input_ids; completion_ids, completion text, logprobs, top_logprobs, an OpenAI
// response with token strings, bytes and token_id:N), teacher forcing when the case is well formed, the report
// object, and that object printed and read back by the report's own reader. Input: the line's bytes. Local image
// and video paths are read as the CLI reads them (the tiny checkpoint's tests/data files are small).
#include "../json.h"
#include "../scorer.h"

#include <stdlib.h>
#include <string.h>

static Engine fz_sengine;
static int fz_sloaded;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("GLM4V_FUZZ_MODEL");
    if (!dir) dir = "weights/tiny-glm4v-moe";
    if (engine_load(&fz_sengine, dir, NULL, NULL, NULL)) {
        fprintf(stderr, "fuzz_score: %s (run from the repository root)\n", glm_errmsg);
        exit(1);
    }
    fz_sloaded = 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fz_sloaded) LLVMFuzzerInitialize(NULL, NULL);
    if (size > (1 << 16)) return 0; // a case's cost grows with its tokens: long lines say nothing new
    ScoreOptions o;
    score_options_default(&o);
    o.top_k = 5;
    cJSON *c = score_case(&fz_sengine, (const char *)data, size, 0, &o);
    if (!c) abort(); // never NULL
    cJSON *arr = cJSON_CreateArray(), *st = score_settings(&fz_sengine, &o);
    cJSON_AddItemToArray(arr, c);
    char *text = score_report_text(st, arr, NULL, 1);
    // the report is valid strict JSON (UTF-8 strings, numbers that read back), whatever the input
    cJSON *back = text ? json_parse(text, strlen(text), "report") : NULL;
    if (!back) abort();
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(arr), cJSON_Delete(st);
    return 0;
}
