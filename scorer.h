// SPDX-License-Identifier: MIT
// scorer.h - `glm4v score` (scorer.c): another backend's completions checked token by token against the exact model
// by teacher forcing, as vLLM's check_logprobs_close (each side's token in the other's top-k) and llama.cpp's
// perplexity KL-divergence check do it. One case = one JSONL line (the prompt and what the backend generated); the
// prompt + completion go through the engine in one prefill with the logits of every position, and each completion
// position gets our logprob of their token, its rank, our top-1 and margin, the logprob difference, top-k
// memberships and the KL divergence over the shared top-k support. Reports: JSON (stable schema, README.md), a
// terminal table, a self-contained HTML page; shards of a run merge into the report of the whole run, byte for byte.
// Nothing here prints or exits: errors are -1 + glm_errmsg, or a case's "error" field.
#ifndef GLM4V_SCORER_H
#define GLM4V_SCORER_H

#include "engine.h"

#include <cjson/cJSON.h>

#define SCORE_MAX_TOP_K 1000 // --top-k bound

// the verdict's thresholds (a preset, then flags)
typedef struct {
    char preset[16];          // "fp32", "bf16", "quant" or "custom" (the report's settings name it)
    double near_tie;          // a divergence where our top-1 logprob minus ours of their token <= this is a near tie
    double max_abs_dlogprob;  // fail when max |their logprob - ours| exceeds this (cases giving logprobs)
    double mean_abs_dlogprob; // fail when mean |their logprob - ours| exceeds this
    double min_agree;         // fail when (agreeing + near-tie positions) / positions is below this
} ScoreThresholds;

// how cases are scored
typedef struct {
    int top_k;          // top-k memberships and the KL support (default 20)
    int chunk;          // prefill rows per step (default 512; the logits do not depend on it)
    ScoreThresholds th; // the verdict
    MediaOptions media; // how images and videos become pixels
} ScoreOptions;

// defaults: top_k 20, chunk 512, preset fp32, torchvision resize
void score_options_default(ScoreOptions *o);
// the thresholds of a preset ("fp32", "bf16", "quant"); -1 + glm_errmsg for another name
int score_preset(ScoreThresholds *t, const char *name);

// HF-style input_ids (the processor's output: each image's <|image|> placeholder expanded to its tokens) given with
// nimages images: each run of <|image|> ids becomes one placeholder again, in place; returns the new count (ids with
// one placeholder per image are left as they are)
int score_placeholder_ids(const Engine *e, int *ids, int n, int nimages);
// score one case (a JSONL line): the case's report object (id, index, n_tokens, agree, first_divergence, ...,
// positions); a malformed line or a failing case gives an object with "error" set, never NULL
cJSON *score_case(const Engine *e, const char *line, size_t len, int index, const ScoreOptions *o);

// which cases a run scores: index % count == shard (count 1: all)
typedef struct {
    int shard, count; // K and N of --shard K/N
} ScoreShard;

// the report text: {"summary", "settings", "cases"} (+ "shard" first when sh is not NULL: a --shard K/N part, N = 1
// included, so that --merge takes it), the cases in index order, one per line; malloc'd, NULL + glm_errmsg when out
// of memory. total: the cases of the whole run
char *score_report_text(const cJSON *settings, const cJSON *cases, const ScoreShard *sh, int total);
// score the cases of a JSONL text (one a line; blank lines are not cases; a leading UTF-8 BOM skipped) that belong to
// shard sh (NULL: all, an unsharded report): the report text (score_report_text), malloc'd; NULL + glm_errmsg only when out of memory. Progress through e->progress
char *score_jsonl(const Engine *e, const char *text, size_t len, const ScoreOptions *o, const ScoreShard *sh);
// the cases of a JSONL text (its non-blank lines, as score_jsonl counts them)
int score_count_cases(const char *text, size_t len);
// the settings object of a run (model, top_k, thresholds)
cJSON *score_settings(const Engine *e, const ScoreOptions *o);
// merge partial reports (texts of the files named paths) into the unsharded report text; NULL + glm_errmsg when they
// do not make one run (a shard missing or twice, other settings)
char *score_merge(char *const *texts, const size_t *lens, char *const *paths, int n);
// 1 when every case of a parsed report passed
int score_all_passed(const cJSON *report);
// the terminal table (one line per case, worst first) into f
void score_table(FILE *f, const cJSON *report);
// the self-contained HTML page of a parsed report (inline CSS and SVG, model text escaped); malloc'd, NULL + glm_errmsg
char *score_html(const cJSON *report);

#endif
