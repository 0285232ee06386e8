// SPDX-License-Identifier: MIT
// bench_bytes.h - the weight bytes a decode step reads, as every bench program counts them (bench.c's decode and
// serve figures, bench_quant.c's quantised and GGUF ones): attention, norms, the dense MLP or the router, the top-k
// experts and the shared expert, one embedding row and lm_head, each tensor at its stored size. Header-only, as
// bench_util.h.
#ifndef GLM4V_BENCH_BYTES_H
#define GLM4V_BENCH_BYTES_H

#include "../engine.h"
#include "../ops.h"

// bytes of a weight as stored (quantised: the quantised rows, the scale table and the zero points; ggml blocks: the
// rows, scales inside)
static inline double tbytes(const Tensor *t) {
    if (!t->data) return 0;
    if (t->dtype == DT_GGML) return (double)t->rows * t->ld;
    if (!is_quantised(t)) return (double)t->rows * t->cols * dtype_size[t->dtype];
    const double srows = (double)((t->rows + t->block_rows - 1) / t->block_rows);
    double b = (double)t->rows * t->ld + srows * t->scale_cols * dtype_size[t->scale_dtype];
    if (t->zero) b += (double)((t->rows * (t->dtype == DT_Q4 ? 4 : 8) + 31) / 32) * t->scale_cols * 4;
    return b;
}

// weight bytes one decode step reads (as bench.c counts them: attention, norms, dense MLP or router + top-k experts
// + shared expert, the embedding row, lm_head)
static inline double step_bytes(const Weights *w, const Config *c) {
    const TextConfig *t = &c->text;
    const Tensor *E = &w->embed_tokens;
    double b = (E->dtype == DT_GGML ? (double)E->ld : (double)t->hidden_size * dtype_size[E->dtype]) + tbytes(&w->norm) +
               tbytes(&w->lm_head);
    for (int l = 0; l < t->num_hidden_layers; l++) {
        const TextLayer *L = &w->layers[l];
        const Tensor *all[] = {&L->input_layernorm, &L->post_self_attn_layernorm, &L->post_attention_layernorm,
                               &L->post_mlp_layernorm, &L->q_proj, &L->q_bias, &L->k_proj, &L->k_bias, &L->v_proj,
                               &L->v_bias, &L->o_proj};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) b += tbytes(all[i]);
        if (L->is_moe_layer)
            b += tbytes(&L->router) + tbytes(&L->router_bias) +
                 t->num_experts_per_tok * (tbytes(&L->exp_gate[0]) + tbytes(&L->exp_up[0]) + tbytes(&L->exp_down[0])) +
                 tbytes(&L->sh_gate) + tbytes(&L->sh_up) + tbytes(&L->sh_down);
        else
            b += tbytes(&L->gate_proj) + tbytes(&L->up_proj) + tbytes(&L->gate_up_proj) + tbytes(&L->down_proj);
    }
    return b;
}


#endif
