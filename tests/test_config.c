// SPDX-License-Identifier: MIT
// test_config.c - config.json in the 5.x and 4.57 layouts, GLM-4.6V (glm46v) configs, HF's head_dim / rotary rules,
// processor configs in both layouts, and the checkpoint folders of tests/golden/ckpt (released layout = 5.x layout).
#include "../weights.h"
#include "test_util.h"

#include <string.h>
#include <unistd.h>

static int parse(Config *c, const char *json) { return config_parse(c, json, strlen(json), "config.json"); }

#define TEXT_COMMON "\"vocab_size\": 1088, \"hidden_size\": 96, \"intermediate_size\": 256, \"num_hidden_layers\": 2, " \
                    "\"num_attention_heads\": 4, \"num_key_value_heads\": 2"
#define MOE_COMMON "\"moe_intermediate_size\": 32, \"n_routed_experts\": 8, \"num_experts_per_tok\": 2"

int main(void) {
    Config a, b;
    // 5.x layout (rope_parameters) vs 4.57 layout (rope_theta, partial_rotary_factor, rope_scaling)
    const char *j5 = "{\"model_type\": \"glm4v_moe\", \"text_config\": {" TEXT_COMMON ", " MOE_COMMON
                     ", \"head_dim\": 32, \"rope_parameters\": {\"rope_theta\": 20000.0, \"partial_rotary_factor\": 0.5,"
                     " \"mrope_section\": [2, 3, 3], \"rope_type\": \"default\"}}, \"vision_config\": {\"hidden_size\": 64,"
                     " \"num_heads\": 4, \"out_hidden_size\": 96, \"depth\": 2, \"intermediate_size\": 80}}";
    const char *j4 = "{\"architectures\": [\"Glm4vMoeForConditionalGeneration\"], \"model_type\": \"glm4v_moe\","
                     " \"text_config\": {" TEXT_COMMON ", " MOE_COMMON ", \"head_dim\": 32, \"rope_theta\": 20000,"
                     " \"partial_rotary_factor\": 0.5, \"rope_scaling\": {\"rope_type\": \"default\", \"mrope_section\":"
                     " [2, 3, 3]}, \"eos_token_id\": [5, 7]}, \"vision_config\": {\"hidden_size\": 64, \"num_heads\": 4,"
                     " \"out_hidden_size\": 96, \"depth\": 2, \"intermediate_size\": 80}}";
    CHECK(parse(&a, j5) == 0, "5.x layout parses (%s)", glm_errmsg);
    CHECK(parse(&b, j4) == 0, "4.57 layout parses (%s)", glm_errmsg);
    CHECK(a.is_moe && b.is_moe, "both are the MoE architecture");
    CHECK(a.text.head_dim == 32 && b.text.head_dim == 32, "MoE head_dim from config (32, not 96/4 = 24)");
    CHECK(a.text.rotary_dim == 16 && b.text.rotary_dim == 16, "rotary dim = int(head_dim * 0.5)");
    CHECK(a.text.rope_theta == 20000.0f && b.text.rope_theta == 20000.0f, "rope_theta from either layout");
    CHECK(a.text.n_mrope_section == 3 && b.text.mrope_section[1] == 3, "mrope_section from either layout");
    CHECK(b.n_eos == 2 && b.eos_ids[1] == 7, "eos ids from text_config");
    CHECK(a.vision.head_dim == 16 && a.vision.mlp_size == 96, "vision head_dim = hidden / heads; block MLP = out_hidden");

    // dense: head_dim is always hidden / heads in attention; partial_rotary_factor defaults to 1.0 in 5.x
    const char *jd = "{\"model_type\": \"glm4v\", \"text_config\": {" TEXT_COMMON ", \"rope_parameters\": {\"rope_theta\":"
                     " 10000.0, \"partial_rotary_factor\": 0.5, \"mrope_section\": [2, 2, 2]}}, \"vision_config\":"
                     " {\"hidden_size\": 64, \"num_heads\": 4, \"out_hidden_size\": 96}}";
    CHECK(parse(&a, jd) == 0 && !a.is_moe && a.text.head_dim == 24 && a.text.rotary_dim == 12,
          "dense: head_dim 96/4 = 24, rotary 12 (%s)", glm_errmsg);
    // GLM-4.6V wrapper config: the text architecture comes from text_config.model_type
    const char *j46 = "{\"model_type\": \"glm46v\", \"architectures\": [\"Glm46VForConditionalGeneration\"],"
                      " \"text_config\": {\"model_type\": \"glm4v_moe_text\", " TEXT_COMMON ", " MOE_COMMON
                      ", \"head_dim\": 32, \"rope_parameters\": {\"rope_theta\": 10000.0, \"partial_rotary_factor\": 0.5,"
                      " \"mrope_section\": [2, 3, 3]}}, \"vision_config\": {\"hidden_size\": 64, \"num_heads\": 4,"
                      " \"out_hidden_size\": 96}}";
    CHECK(parse(&a, j46) == 0 && a.is_moe, "glm46v + glm4v_moe_text = MoE (%s)", glm_errmsg);
    // the MoE default partial_rotary_factor is 0.5 and mrope_section [8, 12, 12]
    const char *jdef = "{\"model_type\": \"glm4v_moe\", \"text_config\": {\"vocab_size\": 10, \"hidden_size\": 1536,"
                       " \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 12, "
                       "\"num_key_value_heads\": 4, \"head_dim\": 128, " MOE_COMMON "}, \"vision_config\": {\"out_hidden_size\": 1536}}";
    CHECK(parse(&a, jdef) == 0 && a.text.rotary_dim == 64 && a.text.mrope_section[0] == 8 && a.text.mrope_section[2] == 12,
          "MoE defaults: rotary 64, mrope [8, 12, 12] (%s)", glm_errmsg);
    CHECK(a.image_token_id == 151363 && a.video_start_token_id == 151341, "GLM-4.5V token id defaults");

    // bad configs: one line naming the file and the field
    const char *bad[] = {"not json", "{}", "{\"model_type\": \"llama\", \"text_config\": {}}",
                         "{\"model_type\": \"glm4v\", \"text_config\": {\"vocab_size\": 10}}",
                         "{\"model_type\": \"glm4v\", \"text_config\": {" TEXT_COMMON ", \"num_attention_heads\": 0}}",
                         "{\"model_type\": \"glm4v\", \"text_config\": {" TEXT_COMMON
                         ", \"rope_parameters\": {\"mrope_section\": [1, 1, 1]}}, \"vision_config\": {\"out_hidden_size\": 96}}",
                         "{\"model_type\": \"glm4v_moe\", \"text_config\": {" TEXT_COMMON ", \"moe_intermediate_size\": 3,"
                         " \"n_routed_experts\": 8, \"num_experts_per_tok\": 9}}",
                         "{\"model_type\": \"glm4v\", \"text_config\": {" TEXT_COMMON ", \"hidden_size\": \"big\"}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = parse(&a, bad[i]);
        CHECK(rc != 0 && strstr(glm_errmsg, "config.json") && !strchr(glm_errmsg, '\n'), "bad config %zu rejected: %s", i,
              glm_errmsg);
    }

    // processor configs: 5.x processor_config.json and the released preprocessor_config.json
    ProcConfig p;
    proc_config_defaults(&p);
    const char *pc5 = "{\"image_processor\": {\"size\": {\"shortest_edge\": 100, \"longest_edge\": 20000}},"
                      " \"video_processor\": {\"size\": {\"shortest_edge\": 200, \"longest_edge\": 40000}, \"fps\": 3},"
                      " \"processor_class\": \"Glm4vProcessor\"}";
    CHECK(proc_config_parse(&p, pc5, strlen(pc5), "processor_config.json", PROC_IMAGE | PROC_VIDEO, NULL) == 0 && p.min_pixels == 100 &&
              p.max_pixels == 20000 && p.vmax_pixels == 40000 && p.video_fps == 3 && !p.glm46v,
          "processor_config.json (5.x layout)");
    proc_config_defaults(&p);
    const char *pre = "{\"size\": {\"shortest_edge\": 12544, \"longest_edge\": 9633792}, \"image_processor_type\":"
                      " \"Glm46VImageProcessor\"}";
    CHECK(proc_config_parse(&p, pre, strlen(pre), "preprocessor_config.json", PROC_IMAGE | PROC_VIDEO, NULL) == 0 && p.max_pixels == 9633792 &&
              p.glm46v,
          "preprocessor_config.json (released layout), Glm46V detected");

    // each processor reads its own object: image and video normalisation kept apart (the video object was read over
    // the image's single set of fields)
    const char *pcn = "{\"image_processor\": {\"image_mean\": [0.5, 0.5, 0.5], \"image_std\": [0.5, 0.5, 0.5]},"
                      " \"video_processor\": {\"image_mean\": [0.1, 0.2, 0.3], \"rescale_factor\": 0.005}}";
    int set = 0, prc = proc_config_parse(&p, pcn, strlen(pcn), "processor_config.json", PROC_IMAGE | PROC_VIDEO, &set);
    CHECK(prc == 0 &&
              set == (PROC_IMAGE | PROC_VIDEO) && p.image_mean[0] == 0.5f && p.image_std[2] == 0.5f &&
              p.rescale_factor == 1.0 / 255 && p.vimage_mean[0] == 0.1f && p.vimage_mean[2] == 0.3f &&
              p.vimage_std[0] == 0.26862954f && p.vrescale_factor == 0.005,
          "processor_config.json: image_processor and video_processor normalise apart (%s)", prc ? glm_errmsg : "");
    // Glm4vImageProcessor reads its budget from size only: a Qwen2-VL-style top-level min_pixels / max_pixels is not
    // read (transformers gives the default grid); a flat file is read by both processors
    const char *qw = "{\"min_pixels\": 3136, \"max_pixels\": 50000, \"fps\": 4}";
    CHECK(proc_config_parse(&p, qw, strlen(qw), "preprocessor_config.json", PROC_IMAGE | PROC_VIDEO, &set) == 0 &&
              p.min_pixels == 12544 && p.max_pixels == 11760000 && p.vmax_pixels == 47040000 && p.video_fps == 4 &&
              p.image_mean[0] == 0.48145466f && p.vimage_mean[0] == 0.48145466f,
          "top-level min_pixels / max_pixels are not read, as transformers does not read them");
    CHECK(proc_config_parse(&p, pcn, strlen(pcn), "processor_config.json", PROC_VIDEO | PROC_NESTED_ONLY, &set) == 0 &&
              set == PROC_VIDEO && p.image_mean[0] == 0.48145466f && p.vimage_mean[0] == 0.1f,
          "only the processors asked for are read");
    CHECK(proc_config_parse(&p, qw, strlen(qw), "processor_config.json", PROC_IMAGE | PROC_NESTED_ONLY, &set) == 0 &&
              set == 0, "a flat processor_config.json sets no processor");
    // settings glm4v has one implementation of: other values refused with the file and field named
    const char *unsup[] = {"{\"do_normalize\": false}", "{\"do_rescale\": false}", "{\"do_resize\": false}",
                           "{\"do_convert_rgb\": false}", "{\"resample\": 2}", "{\"rescale_factor\": 0}",
                           "{\"size\": {\"shortest_edge\": 3136}}", "{\"size\": {\"min_pixels\": 1, \"max_pixels\": 9}}",
                           "{\"video_processor\": {\"do_normalize\": 0}}"};
    for (size_t i = 0; i < sizeof unsup / sizeof *unsup; i++) {
        int rc = proc_config_parse(&p, unsup[i], strlen(unsup[i]), "pc.json", PROC_IMAGE | PROC_VIDEO, NULL);
        CHECK(rc != 0 && strstr(glm_errmsg, "pc.json: \"") && !strchr(glm_errmsg, '\n'), "refused: %s (%s)", unsup[i],
              glm_errmsg);
    }
    const char *sw = "{\"size\": {\"shortest_edge\": 50000, \"longest_edge\": 3000}}"; // transformers runs it
    CHECK(proc_config_parse(&p, sw, strlen(sw), "pc.json", PROC_IMAGE, NULL) == 0 && p.min_pixels == 50000 &&
              p.max_pixels == 3000, "size.shortest_edge above longest_edge read as transformers reads it");

    // the released-layout golden checkpoint loads to the same config as the 5.x one
    Checkpoint c1, c2;
    int r1 = checkpoint_open(&c1, "tests/golden/ckpt/moe"), r2 = checkpoint_open(&c2, "tests/golden/ckpt/moe-released");
    CHECK(r1 == 0 && r2 == 0, "golden checkpoints open (%s)", glm_errmsg);
    if (!r1 && !r2) {
        CHECK(memcmp(&c1.cfg.text, &c2.cfg.text, sizeof c1.cfg.text) == 0, "moe-released text config == moe");
        CHECK(memcmp(&c1.cfg.vision, &c2.cfg.vision, sizeof c1.cfg.vision) == 0, "moe-released vision config == moe");
        CHECK(c2.nfiles == 2, "moe-released: two shards");
        const STensor *t = checkpoint_find(&c2, "model.language_model.layers.1.mlp.gate.e_score_correction_bias");
        CHECK(t && t->dtype == DT_F32, "moe-released: router bias stored as F32");
        Weights w;
        CHECK(weights_bind(&w, &c2) == 0, "moe-released binds (MTP-like layer 3 ignored)");
        weights_free(&w);
        checkpoint_close(&c1), checkpoint_close(&c2);
    }

    // a folder's processor files in transformers' order, each processor from the first that has it: the nested
    // processor_config.json object, else video_preprocessor_config.json (video), else preprocessor_config.json
    char dir[] = "/tmp/glm4v-test-config-XXXXXX";
    if (mkdtemp(dir)) {
        char path[256], cwd[2048], target[2200];
        if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, ".");
        const char *links[] = {"config.json", "model.safetensors", "tokenizer.json"};
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, links[i]);
            snprintf(target, sizeof target, "%s/weights/tiny-glm4v-dense/%s", cwd, links[i]);
            if (symlink(target, path)) perror("symlink");
        }
        struct { const char *name, *json; } files[] = {
            {"processor_config.json", "{\"image_processor\": {\"size\": {\"shortest_edge\": 100, \"longest_edge\": 20000}}}"},
            {"preprocessor_config.json", "{\"size\": {\"shortest_edge\": 200, \"longest_edge\": 30000}, \"fps\": 5}"}};
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
            FILE *f = fopen(path, "w");
            if (f) fputs(files[i].json, f), fclose(f);
        }
        Checkpoint c3;
        int r3 = checkpoint_open(&c3, dir);
        CHECK(r3 == 0 && c3.cfg.proc.max_pixels == 20000 && c3.cfg.proc.vmin_pixels == 200 &&
                  c3.cfg.proc.vmax_pixels == 30000 && c3.cfg.proc.video_fps == 5,
              "image from processor_config.json, video from the stale preprocessor_config.json (%s)", r3 ? glm_errmsg : "");
        if (!r3) checkpoint_close(&c3);
        snprintf(path, sizeof path, "%s/video_preprocessor_config.json", dir);
        FILE *f = fopen(path, "w");
        if (f) fputs("{\"size\": {\"shortest_edge\": 300, \"longest_edge\": 40000}}", f), fclose(f);
        r3 = checkpoint_open(&c3, dir);
        CHECK(r3 == 0 && c3.cfg.proc.max_pixels == 20000 && c3.cfg.proc.vmax_pixels == 40000 && c3.cfg.proc.video_fps == 2,
              "video from video_preprocessor_config.json before preprocessor_config.json (%s)", r3 ? glm_errmsg : "");
        if (!r3) checkpoint_close(&c3);
        const char *all[] = {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json",
                             "preprocessor_config.json", "video_preprocessor_config.json"};
        for (int i = 0; i < 6; i++) snprintf(path, sizeof path, "%s/%s", dir, all[i]), unlink(path);
        rmdir(dir);
    }
    return test_done();
}
