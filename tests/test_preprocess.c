// SPDX-License-Identifier: MIT
// test_preprocess.c - vision input: decoding, smart_resize, resize, Glm4vImageProcessor(Pil) pixel values, video
// frames, frame sampling and timestamps, against HuggingFace transformers (tests/data/image_processor.safetensors,
// tests/data/golden/dense.video.safetensors, tests/data/preprocess/cases.h from tests/golden/make_preprocess_cases.py,
// tests/golden/cases/dense.image_jpeg.safetensors)
#include "preprocess.h"
#include "test_util.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/preprocess/cases.h"

// Glm4vImageProcessor / Glm4vVideoProcessor defaults (5.x) as proc_config_defaults sets them
static ProcConfig test_proc_config(void) {
    ProcConfig pc;
    memset(&pc, 0, sizeof pc);
    pc.min_pixels = 12544;
    pc.max_pixels = 11760000;
    pc.vmin_pixels = 12544;
    pc.vmax_pixels = 47040000;
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(pc.image_mean, mean, sizeof mean);
    memcpy(pc.image_std, std, sizeof std);
    pc.rescale_factor = 1.0 / 255;
    memcpy(pc.vimage_mean, mean, sizeof mean);
    memcpy(pc.vimage_std, std, sizeof std);
    pc.vrescale_factor = 1.0 / 255;
    pc.patch_size = 14;
    pc.temporal_patch_size = 2;
    pc.merge_size = 2;
    pc.video_fps = 2;
    pc.video_max_duration = 300;
    return pc;
}

static uint32_t crc(const void *p, size_t n) { return (uint32_t)crc32(0L, (const Bytef *)p, (uInt)n); }

// the procedural image of make_preprocess_cases.py synth()
static Image synth_image(int w, int h, uint32_t seed) {
    Image im = {w, h, xmalloc((size_t)w * h * 3)};
    for (uint32_t y = 0; y < (uint32_t)h; y++)
        for (uint32_t x = 0; x < (uint32_t)w; x++)
            for (uint32_t c = 0; c < 3; c++) {
                uint32_t v = x * 0x9E3779B1u + y * 0x85EBCA77u + c * 0xC2B2AE3Du + seed * 0x27D4EB2Fu;
                v ^= v >> 15;
                v *= 0x2C1B3C6Du;
                v ^= v >> 12;
                v *= 0x297A2D39u;
                v ^= v >> 15;
                uint32_t grad = (x * 255 / (uint32_t)w + y * 3 + c * 60) & 255, sel = (v >> 8) & 7, out;
                if (sel == 0) out = v & 255;
                else if (sel == 1) out = 255 * ((v >> 11) & 1);
                else out = (grad + (v & 31)) & 255;
                im.rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)out;
            }
    return im;
}

static void test_smart_resize(void) {
    int n = (int)(sizeof smart_resize_cases / sizeof smart_resize_cases[0]), bad = 0;
    for (int i = 0; i < n; i++) {
        const SmartResizeCase *c = &smart_resize_cases[i];
        int oh = 0, ow = 0;
        int rc = smart_resize(c->nf, c->h, c->w, 2, 28, c->minp, c->maxp, &oh, &ow);
        int ok = c->oh < 0 ? rc == -1 : (rc == 0 && oh == c->oh && ow == c->ow);
        if (!ok) {
            bad++;
            printf("# smart_resize(%d, %d, %d, min %lld, max %lld): got rc %d %d x %d, HF %d x %d\n", c->nf, c->h, c->w,
                   c->minp, c->maxp, rc, oh, ow, c->oh, c->ow);
        }
    }
    CHECK(bad == 0, "smart_resize matches HF on %d cases (errors included), %d differ", n, bad);
    int oh, ow;
    CHECK(smart_resize(2, 28, 5601, 2, 28, 12544, 11760000, &oh, &ow) == -1 && strstr(glm_errmsg, "aspect ratio"),
          "smart_resize aspect > 200 error: %s", glm_errmsg);
}

static void test_resize(void) {
    int n = (int)(sizeof resize_cases / sizeof resize_cases[0]), bad[2] = {0, 0}, cnt[2] = {0, 0};
    int legacy_cnt = 0, legacy_bad = 0;
    for (int i = 0; i < n; i++) {
        const ResizeCase *c = &resize_cases[i];
        Image src = synth_image(c->w, c->h, (uint32_t)c->seed), dst;
        cnt[c->mode]++;
        // Pillow <= 12 runs the horizontal pass first always, Pillow 13 unless the height shrinks much more: where
        // both orders agree the reference checks RESIZE_PIL too
        int64_t dh = c->h - c->oh, dw = c->w - c->ow;
        if (c->mode && CASES_PIL_MODE == RESIZE_PIL13 && !(dh > 0 && dh > 2 * dw)) {
            Image d2;
            if (image_resize(&d2, &src, c->ow, c->oh, RESIZE_PIL) == 0) {
                legacy_cnt++;
                legacy_bad += crc(d2.rgb, (size_t)d2.w * d2.h * 3) != c->crc;
                image_free(&d2);
            }
        }
        if (image_resize(&dst, &src, c->ow, c->oh, c->mode ? CASES_PIL_MODE : RESIZE_TORCH)) {
            bad[c->mode]++;
            printf("# resize %d x %d -> %d x %d: %s\n", c->w, c->h, c->ow, c->oh, glm_errmsg);
        } else {
            if (crc(dst.rgb, (size_t)dst.w * dst.h * 3) != c->crc) {
                bad[c->mode]++;
                printf("# resize mode %d %d x %d -> %d x %d differs\n", c->mode, c->w, c->h, c->ow, c->oh);
            }
            image_free(&dst);
        }
        image_free(&src);
    }
    CHECK(bad[0] == 0, "bicubic resize = torchvision uint8 (AVX2 kernel) bit for bit on %d sizes (%d differ)", cnt[0],
          bad[0]);
    CHECK(bad[1] == 0, "bicubic resize = PIL Image.resize (%s) bit for bit on %d sizes (%d differ)",
          CASES_PIL_MODE == RESIZE_PIL13 ? "Pillow >= 13" : "Pillow <= 12", cnt[1], bad[1]);
    if (CASES_PIL_MODE == RESIZE_PIL13)
        CHECK(legacy_bad == 0, "RESIZE_PIL (Pillow <= 12) agrees where the pass order is the same (%d sizes, %d "
              "differ)", legacy_cnt, legacy_bad);
}

static void test_proc_cases(void) {
    ProcConfig pc = test_proc_config();
    int n = (int)(sizeof proc_cases / sizeof proc_cases[0]), bad[2] = {0, 0}, cnt[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        const ProcCase *c = &proc_cases[i];
        Image im = synth_image(c->w, c->h, (uint32_t)c->seed);
        PixelBatch pb = {0};
        cnt[c->mode]++;
        int rc = preprocess_frames(&pb, &im, 1, &pc, c->mode ? CASES_PIL_MODE : RESIZE_TORCH, 0);
        int ok = rc == 0 && pb.nitems == 1 && pb.grid[0][0] == c->gt && pb.grid[0][1] == c->gh &&
                 pb.grid[0][2] == c->gw && pb.ncols == 1176 &&
                 crc(pb.pixel_values, (size_t)pb.npatches * pb.ncols * sizeof(float)) == c->crc;
        if (!ok) {
            bad[c->mode]++;
            printf("# %s %d x %d: rc %d grid %d %d %d (HF %d %d %d) %s\n",
                   c->mode ? "Glm4vImageProcessorPil" : "Glm4vImageProcessor", c->w, c->h, rc, pb.grid[0][0],
                   pb.grid[0][1], pb.grid[0][2], c->gt, c->gh, c->gw, rc ? glm_errmsg : "pixel values differ");
        }
        pixel_batch_free(&pb);
        image_free(&im);
    }
    CHECK(bad[0] == 0, "Glm4vImageProcessor pixel_values bit-identical on %d generated images (5x40 .. 3500x2600; %d "
          "differ)", cnt[0], bad[0]);
    CHECK(bad[1] == 0, "Glm4vImageProcessorPil (%s) pixel_values bit-identical on %d generated images (%d differ)",
          CASES_PIL_MODE == RESIZE_PIL13 ? "Pillow >= 13" : "Pillow <= 12", cnt[1], bad[1]);
}

// image_processor.safetensors: Glm4vImageProcessor(Pil).NAME.pixel_values / .grid_thw for tests/data/images/NAME.*
static void test_fixture_images(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/image_processor.safetensors", test_data_dir());
    SFile sf;
    if (sf_open(&sf, path)) {
        CHECK(0, "open %s: %s", path, glm_errmsg);
        return;
    }
    ProcConfig pc = test_proc_config();
    int checked = 0;
    for (int i = 0; i < sf.n; i++) {
        const char *name = sf.t[i].name;
        const char *suffix = ".pixel_values";
        size_t ln = strlen(name), ls = strlen(suffix);
        if (ln <= ls || strcmp(name + ln - ls, suffix)) continue;
        int pil = strncmp(name, "Glm4vImageProcessorPil.", 23) == 0;
        const char *stem = strchr(name, '.') + 1;
        char img_name[256];
        snprintf(img_name, sizeof img_name, "%.*s", (int)(ln - ls - (stem - name)), stem);
        const char *exts[] = {".png", ".jpg", ".jpeg"};
        Image im = {0};
        int found = 0;
        for (int e = 0; e < 3 && !found; e++) {
            snprintf(path, sizeof path, "%s/images/%s%s", test_data_dir(), img_name, exts[e]);
            if (file_exists(path)) found = image_load(&im, path, 0) == 0;
        }
        if (!found) {
            CHECK(0, "%s: source image %s not loadable: %s", name, img_name, glm_errmsg);
            continue;
        }
        PixelBatch pb = {0};
        // the fixtures were made with Pillow <= 12 (horizontal pass first): RESIZE_PIL
        int rc = preprocess_frames(&pb, &im, 1, &pc, pil ? RESIZE_PIL : RESIZE_TORCH, 0);
        char gname[300];
        snprintf(gname, sizeof gname, "%.*s.grid_thw", (int)(ln - ls), name);
        const STensor *ref = &sf.t[i], *g = sf_find(&sf, gname);
        int grid_ok = g && g->dtype == DT_I64 && rc == 0 && ((const int64_t *)g->data)[0] == pb.grid[0][0] &&
                      ((const int64_t *)g->data)[1] == pb.grid[0][1] && ((const int64_t *)g->data)[2] == pb.grid[0][2];
        CHECK(grid_ok, "%s grid (%d, %d, %d)", gname, pb.grid[0][0], pb.grid[0][1], pb.grid[0][2]);
        if (grid_ok && ref->dtype == DT_F32 && ref->ndim == 2 && ref->shape[0] == pb.npatches &&
            ref->shape[1] == pb.ncols) {
            const float *r = ref->data;
            size_t nv = (size_t)pb.npatches * pb.ncols, ndiff = 0;
            double maxd = 0;
            for (size_t k = 0; k < nv; k++) {
                double d = fabs((double)r[k] - pb.pixel_values[k]);
                if (d > 1e-6) ndiff++;
                if (d > maxd) maxd = d;
            }
            CHECK(ndiff == 0, "%s: %zu of %zu values differ by > 1e-6, max |diff| %.3g", name, ndiff, nv, maxd);
        } else {
            CHECK(0, "%s: shape mismatch (%lld rows, expected %lld): %s", name, (long long)pb.npatches,
                  (long long)ref->shape[0], rc ? glm_errmsg : "");
        }
        checked++;
        pixel_batch_free(&pb);
        image_free(&im);
    }
    CHECK(checked >= 6, "%d fixture entries checked", checked);
    sf_close(&sf);
}

static void test_decode(void) {
    int n = (int)(sizeof decode_cases / sizeof decode_cases[0]), njpeg = 0;
    char path[512];
    for (int i = 0; i < n; i++) {
        const DecodeCase *c = &decode_cases[i];
        snprintf(path, sizeof path, "%s/preprocess/%s", test_data_dir(), c->file);
        Image im;
        if (image_load(&im, path, 0)) {
            CHECK(0, "decode %s: %s", c->file, glm_errmsg);
            continue;
        }
        int same = im.w == c->w && im.h == c->h && crc(im.rgb, (size_t)im.w * im.h * 3) == c->crc;
        if (!strstr(c->file, ".jpg")) {
            CHECK(same, "decode %s = transformers load_image + the processor's convert_to_rgb (%d x %d)", c->file, im.w, im.h);
        } else {
            // libjpeg-turbo as PIL drives it: every value equal; PIL's pixels (.ref.png) say how far off a mismatch is
            njpeg++;
            char refp[600];
            snprintf(refp, sizeof refp, "%s.ref.png", path);
            Image ref;
            int ok = image_load(&ref, refp, 0) == 0, maxd = 0;
            ok = ok && ref.w == im.w && ref.h == im.h;
            size_t ndiff = 0;
            for (size_t k = 0; ok && k < (size_t)im.w * im.h * 3; k++) {
                int d = abs((int)im.rgb[k] - ref.rgb[k]);
                ndiff += d > 0;
                if (d > maxd) maxd = d;
            }
            CHECK(same && ok && ndiff == 0, "decode %s = transformers load_image (PIL + libjpeg-turbo), %d x %d: %zu "
                  "values differ (max %d levels)", c->file, im.w, im.h, ndiff, maxd);
            image_free(&ref);
        }
        image_free(&im);
    }
    CHECK(njpeg >= 15, "%d JPEG decode cases (4:2:0, 4:2:2, 4:4:4, 4:4:0, 4:1:1, gray, progressive, arithmetic, "
          "restart markers, RGB, CMYK, YCCK, EXIF-rotated, corrupt scan data)", njpeg);
}

// the colour-key files as video frames (image_load_file): load_image's pixels, not whitened (Glm4vVideoProcessor
// converts frames as arrays, so its convert_to_rgb finds no transparency to composite)
static void test_frame_decode(void) {
    int n = (int)(sizeof frame_cases / sizeof frame_cases[0]), bad = 0;
    char path[512];
    for (int i = 0; i < n; i++) {
        const DecodeCase *c = &frame_cases[i];
        snprintf(path, sizeof path, "%s/preprocess/%s", test_data_dir(), c->file);
        Image im;
        if (image_load_file(&im, path, 0)) {
            bad++;
            printf("# frame %s: %s\n", c->file, glm_errmsg);
            continue;
        }
        if (!(im.w == c->w && im.h == c->h && crc(im.rgb, (size_t)im.w * im.h * 3) == c->crc)) {
            bad++;
            printf("# frame %s differs from load_image\n", c->file);
        }
        image_free(&im);
    }
    CHECK(n >= 10 && bad == 0, "%d colour-key files as video frames = load_image, not whitened (%d differ)", n, bad);
}

// JPEG files through Glm4vImageProcessor: pixel_values bit-identical to HF's (load_image(path) + the processor)
static void test_jpeg_pixel_values(void) {
    ProcConfig pc = test_proc_config();
    int n = (int)(sizeof jpeg_proc_cases / sizeof jpeg_proc_cases[0]), bad = 0;
    char path[512];
    for (int i = 0; i < n; i++) {
        const JpegProcCase *c = &jpeg_proc_cases[i];
        snprintf(path, sizeof path, "%s/preprocess/%s", test_data_dir(), c->file);
        Image im;
        PixelBatch pb = {0};
        int rc = image_load(&im, path, 0);
        if (rc == 0) {
            rc = preprocess_frames(&pb, &im, 1, &pc, RESIZE_TORCH, 0);
            image_free(&im);
        }
        if (rc || pb.grid[0][0] != c->gt || pb.grid[0][1] != c->gh || pb.grid[0][2] != c->gw ||
            crc(pb.pixel_values, (size_t)pb.npatches * pb.ncols * sizeof(float)) != c->crc) {
            bad++;
            printf("# %s: %s\n", c->file, rc ? glm_errmsg : "grid or pixel_values differ");
        }
        pixel_batch_free(&pb);
    }
    CHECK(bad == 0, "Glm4vImageProcessor pixel_values of %d JPEG files bit-identical to HF (%d differ)", n, bad);

    // dense.image_jpeg (tests/golden): HF's pixel_values of photo_160x120.jpg, the CLI case's image
    snprintf(path, sizeof path, "%s/../golden/cases/dense.image_jpeg.safetensors", test_data_dir());
    SFile sf;
    if (sf_open(&sf, path)) {
        CHECK(0, "open %s: %s", path, glm_errmsg);
        return;
    }
    const STensor *ref = sf_find(&sf, "pixel_values");
    snprintf(path, sizeof path, "%s/images/photo_160x120.jpg", test_data_dir());
    Image im;
    PixelBatch pb = {0};
    int rc = image_load(&im, path, 0);
    if (rc == 0) {
        rc = preprocess_frames(&pb, &im, 1, &pc, RESIZE_TORCH, 0);
        image_free(&im);
    }
    if (rc == 0 && ref && ref->dtype == DT_F32 && ref->ndim == 2 && ref->shape[0] == pb.npatches &&
        ref->shape[1] == pb.ncols) {
        size_t nv = (size_t)pb.npatches * pb.ncols, ndiff = 0;
        double maxd = 0;
        for (size_t k = 0; k < nv; k++) {
            double d = fabs((double)((const float *)ref->data)[k] - pb.pixel_values[k]);
            ndiff += d > 1e-6;
            if (d > maxd) maxd = d;
        }
        CHECK(ndiff == 0, "photo_160x120.jpg pixel_values = HF dense.image_jpeg: %zu of %zu values differ by > 1e-6, "
              "max |diff| %.3g", ndiff, nv, maxd);
    } else {
        CHECK(0, "photo_160x120.jpg vs dense.image_jpeg pixel_values: %s", rc ? glm_errmsg : "shape mismatch");
    }
    pixel_batch_free(&pb);
    sf_close(&sf);
}

// damaged JPEGs: refused with the file name (truncation as PIL: "image file is truncated"), never a crash or leak
static void test_jpeg_bad(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/preprocess/jpeg_420.jpg", test_data_dir());
    size_t len;
    uint8_t *jpg = (uint8_t *)read_file(path, &len, 1 << 20);
    if (!jpg) {
        CHECK(0, "read %s: %s", path, glm_errmsg);
        return;
    }
    Image im, full;
    int full_ok = image_load_mem(&full, jpg, len, "full.jpg", 0) == 0;
    // every prefix is refused, even the one without the EOI (the last 2 bytes): libjpeg's Huffman decoder reads ahead
    // to the marker after the scan, so PIL's suspending decoder stops there and PIL raises "image file is truncated"
    size_t accepted = 0, refused = 0, wrong_msg = 0;
    for (size_t cut = 0; cut < len; cut++) {
        if (image_load_mem(&im, jpg, cut, "trunc.jpg", 0) == 0) {
            accepted++;
            image_free(&im);
        } else {
            refused++;
            wrong_msg += strstr(glm_errmsg, "trunc.jpg") == NULL;
        }
    }
    CHECK(accepted == 0 && wrong_msg == 0, "truncated JPEG: all %zu prefixes refused with the file name (%s)", refused,
          glm_errmsg);
    // a file cut inside a marker segment after the last scan (EOI replaced by a truncated COM): every scanline is
    // out before the end of the data, so PIL (JpegDecode.c, state 4) returns the image; so do we
    uint8_t *bad = xmalloc(len + 16);
    memcpy(bad, jpg, len - 2);
    memcpy(bad + len - 2, "\xff\xfe\x00\x10" "abc", 7);
    int com_ok = image_load_mem(&im, bad, len + 5, "com.jpg", 0) == 0;
    CHECK(full_ok && com_ok && im.w == full.w && im.h == full.h &&
              !memcmp(im.rgb, full.rgb, (size_t)im.w * im.h * 3),
          "JPEG cut after its last scan: decoded, the same pixels (as PIL): %s", com_ok ? "" : glm_errmsg);
    if (com_ok) image_free(&im);
    if (full_ok) image_free(&full);
    // scan data with markers made up inside it: refused or repaired, never a crash (jpeg_corrupt.jpg: repaired as PIL)
    memcpy(bad, jpg, len);
    size_t sos = 0;
    for (size_t k = 2; k + 1 < len; k++)
        if (bad[k] == 0xFF && bad[k + 1] == 0xDA) sos = k;
    for (size_t k = sos + 20; k < len - 40; k += 7) bad[k] ^= 0x5A;
    int rc = image_load_mem(&im, bad, len, "corrupt.jpg", 0);
    CHECK(sos > 0 && (rc == 0 || strstr(glm_errmsg, "corrupt.jpg")), "JPEG with corrupt scan data: %s",
          rc == 0 ? "decoded with repairs" : glm_errmsg);
    if (rc == 0) image_free(&im);
    // header limit: refused from the SOF before any pixel is decoded
    rc = image_load_mem(&im, jpg, len, "small_limit.jpg", 1000); // own lines: see test_compare.c (GCC 12.2 UBSan)
    const int named = strstr(glm_errmsg, "37 x 29 = 1073 pixels, above the limit of 1000") != NULL;
    CHECK(rc == -1 && named,
          "JPEG above --max-image-pixels: %s", glm_errmsg);
    // 12-bit samples (SOF1 precision 12): PIL cannot handle them either
    memcpy(bad, jpg, len);
    for (size_t k = 2; k + 4 < len; k++)
        if (bad[k] == 0xFF && bad[k + 1] == 0xC0) {
            bad[k + 4] = 12;
            break;
        }
    CHECK(image_load_mem(&im, bad, len, "twelve.jpg", 0) == -1 && strstr(glm_errmsg, "twelve.jpg: not a decodable "
              "JPEG (libjpeg: "), "12-bit JPEG refused: %s", glm_errmsg);
    free(bad);
    free(jpg);
    // progressive JPEG with its last scan repeated: ~910 scans decode (as in PIL), more than 1000 are refused
    snprintf(path, sizeof path, "%s/preprocess/jpeg_progressive.jpg", test_data_dir());
    jpg = (uint8_t *)read_file(path, &len, 1 << 20);
    size_t last = 0;
    for (size_t k = 2; jpg && k + 1 < len; k++)
        if (jpg[k] == 0xFF && jpg[k + 1] == 0xDA) last = k;
    if (!jpg || !last) {
        CHECK(0, "read %s: %s", path, glm_errmsg);
        free(jpg);
        return;
    }
    size_t scan = len - 2 - last; // SOS segment + its entropy-coded data, up to the EOI
    const int reps[2] = {900, 1001};
    for (int r = 0; r < 2; r++) {
        uint8_t *many = xmalloc(len + scan * reps[r]);
        size_t m = len - 2;
        memcpy(many, jpg, m);
        for (int k = 0; k < reps[r]; k++, m += scan) memcpy(many + m, jpg + last, scan);
        memcpy(many + m, "\xff\xd9", 2);
        rc = image_load_mem(&im, many, m + 2, "scans.jpg", 0);
        if (r == 0) CHECK(rc == 0, "progressive JPEG with %d extra scans decoded: %s", reps[r], rc ? glm_errmsg : "");
        else
            CHECK(rc == -1 && strstr(glm_errmsg, "more than 1000 scans"), "progressive JPEG with %d extra scans "
                  "refused: %s", reps[r], glm_errmsg);
        if (rc == 0) image_free(&im);
        free(many);
    }
    free(jpg);
}

static void test_bad_inputs(void) {
    Image im;
    char dir[] = "/tmp/glm4v_test_prep_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/notes.png", dir);
    FILE *f = fopen(path, "wb");
    fputs("This is a text file, not a picture.\n", f);
    fclose(f);
    CHECK(image_load(&im, path, 0) == -1 && strstr(glm_errmsg, "not a decodable image") && strstr(glm_errmsg, path),
          "text file as image: %s", glm_errmsg);
    unlink(path);

    snprintf(path, sizeof path, "%s/empty.png", dir);
    f = fopen(path, "wb");
    fclose(f);
    CHECK(image_load(&im, path, 0) == -1 && strstr(glm_errmsg, "not a decodable image"), "empty file: %s", glm_errmsg);
    unlink(path);

    CHECK(image_load(&im, "/nonexistent/dir/missing.png", 0) == -1 && strstr(glm_errmsg, "missing.png"),
          "missing file: %s", glm_errmsg);

    // truncated PNG: every prefix of a real file fails cleanly
    snprintf(path, sizeof path, "%s/images/synth_97x61.png", test_data_dir());
    size_t len;
    char *png = read_file(path, &len, 1 << 24);
    int trunc_ok = png != NULL;
    for (size_t cut = 0; png && cut < len; cut += (cut < 64 ? 1 : 997))
        if (image_load_mem(&im, (const uint8_t *)png, cut, "trunc.png", 0) != -1) {
            trunc_ok = 0;
            image_free(&im);
        }
    CHECK(trunc_ok, "truncated PNG (all prefixes) refused: %s", glm_errmsg);

    // header claiming 200000 x 200000: refused from the header, before decoding
    if (png) {
        uint8_t *big = xmalloc(len);
        memcpy(big, png, len);
        const uint32_t side = 200000;
        uint8_t be[4] = {side >> 24, (side >> 16) & 255, (side >> 8) & 255, side & 255};
        memcpy(big + 16, be, 4); // IHDR width
        memcpy(big + 20, be, 4); // IHDR height
        uint32_t c = (uint32_t)crc32(0L, big + 12, 17);
        uint8_t cb[4] = {c >> 24, (c >> 16) & 255, (c >> 8) & 255, c & 255};
        memcpy(big + 29, cb, 4);
        CHECK(image_load_mem(&im, big, len, "huge.png", 11760000) == -1 && strstr(glm_errmsg, "200000 x 200000") &&
                  strstr(glm_errmsg, "above the limit of 11760000"),
              "200000 x 200000 header refused: %s", glm_errmsg);
        memset(big + 16, 0, 4); // width 0
        c = (uint32_t)crc32(0L, big + 12, 17);
        uint8_t cb2[4] = {c >> 24, (c >> 16) & 255, (c >> 8) & 255, c & 255};
        memcpy(big + 29, cb2, 4);
        CHECK(image_load_mem(&im, big, len, "zero.png", 0) == -1, "zero-width header refused: %s", glm_errmsg);
        free(big);
        free(png);
    }

    Image *fr;
    int nf;
    CHECK(video_load_dir(&fr, &nf, dir, 0) == -1 && strstr(glm_errmsg, "no image files"), "empty frame directory: %s",
          glm_errmsg);
    CHECK(video_load_dir(&fr, &nf, "/nonexistent/frames", 0) == -1, "missing frame directory: %s", glm_errmsg);
    rmdir(dir);
}

// hf-golden dense.video: the 8 frames of tests/data/video_frames at fps 2, no sampling
static void test_video_golden(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/video_frames", test_data_dir());
    Image *fr = NULL;
    int nf = 0;
    ProcConfig pc = test_proc_config();
    if (video_load_dir(&fr, &nf, path, 0)) {
        CHECK(0, "video_load_dir %s: %s", path, glm_errmsg);
        return;
    }
    CHECK(nf == 8, "video_load_dir: %d frames", nf);
    snprintf(path, sizeof path, "%s/golden/dense.video.safetensors", test_data_dir());
    SFile sf;
    if (sf_open(&sf, path)) {
        CHECK(0, "open %s: %s", path, glm_errmsg);
        images_free(fr, nf);
        return;
    }
    const STensor *ref = sf_find(&sf, "input.pixel_values_videos"), *g = sf_find(&sf, "input.video_grid_thw");
    PixelBatch pb = {0};
    int rc = preprocess_frames(&pb, fr, nf, &pc, RESIZE_TORCH, 1);
    const int64_t *gr = g ? g->data : NULL;
    CHECK(rc == 0 && gr && pb.nitems == 1 && pb.grid[0][0] == gr[0] && pb.grid[0][1] == gr[1] && pb.grid[0][2] == gr[2],
          "video_grid_thw (%d, %d, %d)", pb.grid[0][0], pb.grid[0][1], pb.grid[0][2]);
    if (rc == 0 && ref && ref->shape[0] == pb.npatches && ref->shape[1] == pb.ncols) {
        size_t nv = (size_t)pb.npatches * pb.ncols, ndiff = 0;
        double maxd = 0;
        for (size_t k = 0; k < nv; k++) {
            double d = fabs((double)((const float *)ref->data)[k] - pb.pixel_values[k]);
            ndiff += d > 1e-6;
            if (d > maxd) maxd = d;
        }
        CHECK(ndiff == 0, "dense.video pixel_values_videos: %zu of %zu differ, max |diff| %.3g", ndiff, nv, maxd);
    } else {
        CHECK(0, "dense.video pixel_values_videos shape: %s", rc ? glm_errmsg : "");
    }
    // timestamps: frames at fps 2 -> metadata.timestamps[::2] -> "0" "1" "2" "3"
    double times[8];
    for (int i = 0; i < 8; i++) times[i] = i / 2.0;
    char **ts;
    video_timestamps(&ts, pb.grid[0][0], times, nf, &pc);
    CHECK(pb.grid[0][0] == 4 && !strcmp(ts[0], "0") && !strcmp(ts[1], "1") && !strcmp(ts[2], "2") &&
              !strcmp(ts[3], "3"), "GLM-4.1V/4.5V timestamps %s %s %s %s", ts[0], ts[1], ts[2], ts[3]);
    video_timestamps_free(ts, pb.grid[0][0]);
    pc.glm46v = 1;
    video_timestamps(&ts, 5, times, nf, &pc);
    CHECK(!strcmp(ts[0], "0.0 seconds") && !strcmp(ts[3], "3.0 seconds") && !strcmp(ts[4], "3.0 seconds"),
          "GLM-4.6V timestamps '%s' .. '%s' (padded with the last)", ts[0], ts[4]);
    video_timestamps_free(ts, 5);
    double t2[2] = {0.25, 1.75};
    video_timestamps(&ts, 1, t2, 2, &pc);
    CHECK(!strcmp(ts[0], "0.2 seconds"), "GLM-4.6V timestamp {0.25:.1f} = '%s' (half to even, as Python)", ts[0]);
    video_timestamps_free(ts, 1);
    pc.glm46v = 0;

    // images accumulate: a second item is appended after the first, rows unchanged
    PixelBatch one = {0};
    Image im = synth_image(97, 61, 2);
    int r1 = preprocess_frames(&pb, &im, 1, &pc, RESIZE_TORCH, 0);
    int r2 = preprocess_frames(&one, &im, 1, &pc, RESIZE_TORCH, 0);
    CHECK(r1 == 0 && r2 == 0 && pb.nitems == 2 && pb.npatches == 192 + one.npatches &&
              !memcmp(pb.pixel_values + (size_t)192 * 1176, one.pixel_values, (size_t)one.npatches * 1176 * 4) &&
              pb.grid[1][1] == one.grid[0][1],
          "PixelBatch appends items (%d items, %lld rows)", pb.nitems, (long long)pb.npatches);
    // one video frame: HF smart_resize raises (t:1 < temporal_factor 2)
    PixelBatch v1 = {0};
    CHECK(preprocess_frames(&v1, fr, 1, &pc, RESIZE_TORCH, 1) == -1 && strstr(glm_errmsg, "temporal_factor"),
          "1-frame video refused as HF does: %s", glm_errmsg);
    // frames of different sizes
    Image two[2] = {fr[0], im};
    CHECK(preprocess_frames(&v1, two, 2, &pc, RESIZE_TORCH, 1) == -1, "frames of different sizes refused: %s",
          glm_errmsg);
    image_free(&im);
    pixel_batch_free(&one);
    pixel_batch_free(&v1);
    pixel_batch_free(&pb);
    sf_close(&sf);
    images_free(fr, nf);
}

static void test_sample_frames(void) {
    ProcConfig pc = test_proc_config();
    int n = (int)(sizeof sample_cases / sizeof sample_cases[0]), bad = 0;
    for (int i = 0; i < n; i++) {
        const SampleCase *c = &sample_cases[i];
        pc.glm46v = c->glm46v;
        int *idx = NULL;
        int k = video_sample_frames(&idx, c->total, c->fps, c->duration, &pc);
        // HF returns no index at all for some sub-second clips (processing then fails): an error here
        int ok = c->n == 0 ? k == -1 : (k == c->n && !memcmp(idx, c->idx, sizeof(int) * k));
        if (!ok) {
            bad++;
            printf("# sample_frames(%s, %d frames, fps %g, %g s): %d indices, HF %d\n", c->glm46v ? "4.6V" : "4.5V",
                   c->total, c->fps, c->duration, k, c->n);
        }
        free(idx);
    }
    CHECK(bad == 0, "video_sample_frames = Glm4vVideoProcessor / Glm46VVideoProcessor.sample_frames on %d cases (%d "
          "differ)", n, bad);
}

// a lossless video made by ffmpeg from tests/data/video_frames at 4 fps: sampled at 2 fps -> frames 0 2 4 6
static void test_video_file(void) {
    if (system("ffmpeg -version >/dev/null 2>&1") != 0) {
        CHECK(1, "# skip video_load_file: ffmpeg not installed");
        return;
    }
    char dir[] = "/tmp/glm4v_test_vid_XXXXXX";
    if (!mkdtemp(dir)) return;
    char cmd[1200], vid[600];
    snprintf(vid, sizeof vid, "%s/clip.mkv", dir);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -v error -y -framerate 4 -i '%s/video_frames/frame_%%02d.png' -c:v png '%s'",
             test_data_dir(), vid);
    int made = system(cmd) == 0;
    CHECK(made, "ffmpeg made a test video");
    ProcConfig pc = test_proc_config();
    Image *fr = NULL;
    double *times = NULL;
    int nf = 0;
    if (made && video_load_file(&fr, &nf, &times, vid, &pc, 0) == 0) {
        int ok = nf == 4;
        for (int i = 0; ok && i < 4; i++) {
            char p[600];
            snprintf(p, sizeof p, "%s/video_frames/frame_%02d.png", test_data_dir(), 2 * i);
            Image ref;
            ok = image_load(&ref, p, 0) == 0 && ref.w == fr[i].w && ref.h == fr[i].h &&
                 !memcmp(ref.rgb, fr[i].rgb, (size_t)ref.w * ref.h * 3) && fabs(times[i] - 0.5 * i) < 1e-9;
            image_free(&ref);
        }
        CHECK(ok, "video_load_file: %d frames = source frames 0 2 4 6 at 0 0.5 1 1.5 s", nf);
        images_free(fr, nf);
        free(times);
    } else if (made) {
        CHECK(0, "video_load_file: %s", glm_errmsg);
    }
    CHECK(video_load_file(&fr, &nf, &times, "/nonexistent/clip.mp4", &pc, 0) == -1, "missing video file: %s",
          glm_errmsg);
    // a text file is not a video
    snprintf(vid, sizeof vid, "%s/notes.mp4", dir);
    FILE *f = fopen(vid, "w");
    fputs("not a video\n", f);
    fclose(f);
    CHECK(video_load_file(&fr, &nf, &times, vid, &pc, 0) == -1, "text file as video: %s", glm_errmsg);
    // without ffmpeg on PATH: the documented message
    char *old = getenv("PATH") ? xstrdup(getenv("PATH")) : NULL;
    setenv("PATH", dir, 1);
    CHECK(video_load_file(&fr, &nf, &times, vid, &pc, 0) == -1 && strstr(glm_errmsg, "ffmpeg not found"),
          "no ffmpeg: %s", glm_errmsg);
    if (old) setenv("PATH", old, 1);
    free(old);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

int main(void) {
    test_smart_resize();
    test_resize();
    test_proc_cases();
    test_fixture_images();
    test_decode();
    test_frame_decode();
    test_jpeg_pixel_values();
    test_jpeg_bad();
    test_bad_inputs();
    test_video_golden();
    test_sample_frames();
    test_video_file();
    return test_done();
}
