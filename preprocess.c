// SPDX-License-Identifier: MIT
// preprocess.c - Glm4vImageProcessor / Glm4vVideoProcessor (transformers 5.x; Glm46V* for GLM-4.6V): smart_resize,
// antialiased bicubic resize, rescale + normalize, patchify.
//
// The default resize reproduces torchvision's antialiased bicubic resize of uint8 images as PyTorch runs it on x86 CPUs
// with AVX2 (aten/src/ATen/native/cpu/UpSampleKernelAVXAntialias.h, weights from UpSampleKernel.cpp
// _compute_index_ranges_int16_weights); the references in tests/ were made on such a CPU. RESIZE_PIL reproduces
// Pillow's Image.resize(BICUBIC) (libImaging/Resample.c) up to Pillow 12 (horizontal pass first; the hf-golden
// fixtures were made with it), RESIZE_PIL13 Pillow >= 13, which runs the vertical pass first when the height shrinks
// by more than twice as many pixels as the width.
#include "preprocess.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>



// ----------------------------------------------------------------------------
// smart_resize (transformers.models.glm4v.image_processing_glm4v.smart_resize, 5.x)

// Python round(): half to even (the default rounding mode makes nearbyint do exactly that)
static double py_round(double x) { return nearbyint(x); }

// output size: multiples of factor with t*h*w inside [min_pixels, max_pixels], aspect ratio kept
int smart_resize(int num_frames, int height, int width, int temporal_factor, int factor, int64_t min_pixels,
                 int64_t max_pixels, int *out_h, int *out_w) {
    if (height <= 0 || width <= 0 || factor <= 0 || temporal_factor <= 0)
        return glm_err("smart_resize: bad size %d x %d (factor %d, temporal %d)", height, width, factor,
                       temporal_factor);
    // if num_frames < temporal_factor: raise ValueError
    if (num_frames < temporal_factor)
        return glm_err("smart_resize: t:%d must be larger than temporal_factor:%d", num_frames, temporal_factor);
    // if height < factor or width < factor: scale = max(factor / height, factor / width); int(height * scale), ...
    if (height < factor || width < factor) {
        double a = (double)factor / height, b = (double)factor / width;
        double scale = a > b ? a : b;
        double hs = height * scale, ws = width * scale;
        if (hs >= INT_MAX || ws >= INT_MAX) return glm_err("smart_resize: %d x %d is too thin", height, width);
        height = (int)hs;
        width = (int)ws;
        if (height <= 0 || width <= 0) return glm_err("smart_resize: %d x %d is too thin", height, width);
    }
    // if max(height, width) / min(height, width) > 200: raise ValueError
    double ratio = (double)(height > width ? height : width) / (height < width ? height : width);
    if (ratio > 200) return glm_err("absolute aspect ratio must be smaller than 200, got %.17g", ratio);
    // h_bar = round(height / factor) * factor; w_bar = ...
    // t_bar = round(num_frames / temporal_factor) * temporal_factor
    int64_t h_bar = (int64_t)py_round((double)height / factor) * factor;
    int64_t w_bar = (int64_t)py_round((double)width / factor) * factor;
    int64_t t_bar = (int64_t)py_round((double)num_frames / temporal_factor) * temporal_factor;
    int64_t thw;
    int big = __builtin_mul_overflow(t_bar, h_bar, &thw) || __builtin_mul_overflow(thw, w_bar, &thw);
    // num_frames * height * width: exact in double below 2^53 (Python divides the exact integer)
    double nhw = (double)num_frames * height * width;
    if (big || thw > max_pixels) {
        // beta = math.sqrt((num_frames * height * width) / max_pixels)
        double beta = sqrt(nhw / (double)max_pixels);
        // h_bar = max(factor, math.floor(height / beta / factor) * factor)
        double fh = floor(height / beta / factor) * factor, fw = floor(width / beta / factor) * factor;
        h_bar = fh > factor ? (int64_t)fh : factor;
        w_bar = fw > factor ? (int64_t)fw : factor;
    } else if (thw < min_pixels) {
        // beta = math.sqrt(min_pixels / (num_frames * height * width))
        double beta = sqrt((double)min_pixels / nhw);
        // h_bar = math.ceil(height * beta / factor) * factor
        h_bar = (int64_t)ceil(height * beta / factor) * factor;
        w_bar = (int64_t)ceil(width * beta / factor) * factor;
    }
    if (h_bar <= 0 || w_bar <= 0 || h_bar > INT_MAX / 4 || w_bar > INT_MAX / 4)
        return glm_err("smart_resize: resized size %lld x %lld out of range", (long long)h_bar, (long long)w_bar);
    *out_h = (int)h_bar;
    *out_w = (int)w_bar;
    return 0;
}

// ----------------------------------------------------------------------------
// antialiased bicubic resize on uint8 RGB, separable: horizontal pass, uint8 image, vertical pass

// PyTorch HelperInterpCubic::aa_filter<double, true> (Keys cubic, a = -0.5) via cubic_convolution1/2 (UpSample.h)
static double torch_bicubic_filter(double x) {
    const double A = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2.0) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0.0;
}

// Pillow Resample.c bicubic_filter (a = -0.5)
static double pil_bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// fixed-point filter taps of one axis
typedef struct {
    int ksize;     // taps per output index (max_interp_size)
    int *xmin;     // [out] first input index
    int *xsize;    // [out] number of taps used
    int32_t *k;    // [out, ksize] fixed-point weights
    int prec;      // fractional bits of k
} Coeffs;

// release the tap tables
static void coeffs_free(Coeffs *c) {
    free(c->xmin);
    free(c->xsize);
    free(c->k);
    memset(c, 0, sizeof *c);
}

// PyTorch _compute_index_ranges_int16_weights (antialias=True) / Pillow precompute_coeffs + normalize_coeffs_8bpc
static int precompute_coeffs(Coeffs *c, int in_size, int out_size, ResizeMode mode) {
    memset(c, 0, sizeof *c);
    // scale = area_pixel_compute_scale(in, out, align_corners=False) = in / out (Pillow: (in1 - in0) / outSize)
    double scale = (double)in_size / out_size;
    // support = (scale >= 1.0) ? (interp_size * 0.5) * scale : interp_size * 0.5   (interp_size 4: bicubic)
    double support = scale >= 1.0 ? (4 * 0.5) * scale : 4 * 0.5;
    // max_interp_size = (int) std::ceil(support) * 2 + 1
    double ks = ceil(support) * 2 + 1;
    if (ks > (double)(INT_MAX / 8) / out_size)
        return glm_err("resize: %d -> %d needs too many filter taps", in_size, out_size);
    c->ksize = (int)ks;
    c->xmin = xmalloc(sizeof(int) * out_size);
    c->xsize = xmalloc(sizeof(int) * out_size);
    c->k = xcalloc((size_t)out_size * c->ksize, sizeof(int32_t));
    double *w = xcalloc((size_t)c->ksize, sizeof(double)); // [ksize] float weights of one output index
    double *wall = xcalloc((size_t)out_size * c->ksize, sizeof(double)); // [out, ksize]
    double wt_max = 0.0;
    double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    for (int i = 0; i < out_size; i++) {
        // center = scale * (i + 0.5)
        double center = scale * (i + 0.5);
        // xmin = max(int64(center - support + 0.5), 0); xsize = min(int64(center + support + 0.5), input_size) - xmin
        int64_t xmin = (int64_t)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int64_t xmax = (int64_t)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        int64_t xsize = xmax - xmin;
        // xsize = clamp(xsize, 0, max_interp_size)
        if (xsize < 0) xsize = 0;
        if (xsize > c->ksize) xsize = c->ksize;
        double total = 0.0;
        for (int64_t j = 0; j < xsize; j++) {
            // w = filter_fn((j + xmin - center + 0.5) * invscale)
            double x = ((double)(j + xmin) - center + 0.5) * invscale;
            w[j] = mode == RESIZE_TORCH ? torch_bicubic_filter(x) : pil_bicubic_filter(x);
            total += w[j];
        }
        for (int64_t j = 0; j < xsize; j++) {
            if (total != 0.0) {
                w[j] /= total;
                if (w[j] > wt_max) wt_max = w[j];
            }
            wall[(size_t)i * c->ksize + j] = w[j];
        }
        c->xmin[i] = (int)xmin;
        c->xsize[i] = (int)xsize;
    }
    free(w);
    if (mode != RESIZE_TORCH) {
        // #define PRECISION_BITS (32 - 8 - 2)
        c->prec = 22;
    } else {
        // for (weights_precision = 0; weights_precision < 22; ++weights_precision) {
        //     int next_value = (int) (0.5 + wt_max * (1 << (weights_precision + 1)));
        //     if (next_value >= (1 << 15)) break; }
        int p;
        for (p = 0; p < 22; ++p) {
            int next_value = (int)(0.5 + wt_max * (1 << (p + 1)));
            if (next_value >= (1 << 15)) break;
        }
        c->prec = p;
    }
    if (c->prec < 1) {
        free(wall);
        coeffs_free(c);
        return glm_err("resize: %d -> %d: degenerate filter weights", in_size, out_size);
    }
    // v = w * (1 << precision); k = (v < 0) ? (int) (-0.5 + v) : (int) (0.5 + v)
    for (size_t t = 0; t < (size_t)out_size * c->ksize; t++) {
        double v = wall[t] * (1 << c->prec);
        c->k[t] = v < 0 ? (int32_t)(-0.5 + v) : (int32_t)(0.5 + v);
    }
    free(wall);
    return 0;
}

// clip8((1 << (prec - 1)) + sum_j k[j] * px[j]) >> prec), as _mm_srai_epi32 + saturating packs (Pillow: clip8())
static inline uint8_t clip8_shift(int64_t acc, int prec) {
    int64_t v = acc >> prec;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

// ImagingResampleHorizontal: out[h, out_w, 3] from in[h, in_w, 3]
static void resample_horizontal(uint8_t *out, const uint8_t *in, int h, int in_w, int out_w, const Coeffs *c) {
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; y++) {
        const uint8_t *row = in + (size_t)y * in_w * 3;
        uint8_t *orow = out + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const int32_t *k = c->k + (size_t)x * c->ksize;
            const uint8_t *p = row + (size_t)c->xmin[x] * 3;
            int64_t s0 = 1 << (c->prec - 1), s1 = s0, s2 = s0;
            for (int j = 0; j < c->xsize[x]; j++) {
                s0 += (int64_t)p[3 * j + 0] * k[j];
                s1 += (int64_t)p[3 * j + 1] * k[j];
                s2 += (int64_t)p[3 * j + 2] * k[j];
            }
            orow[3 * x + 0] = clip8_shift(s0, c->prec);
            orow[3 * x + 1] = clip8_shift(s1, c->prec);
            orow[3 * x + 2] = clip8_shift(s2, c->prec);
        }
    }
}

// ImagingResampleVertical: out[out_h, w, 3] from in[in_h, w, 3]
static void resample_vertical(uint8_t *out, const uint8_t *in, int w, int out_h, const Coeffs *c) {
    size_t stride = (size_t)w * 3;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < out_h; y++) {
        const int32_t *k = c->k + (size_t)y * c->ksize;
        const uint8_t *base = in + (size_t)c->xmin[y] * stride;
        uint8_t *orow = out + (size_t)y * stride;
        for (size_t i = 0; i < stride; i++) {
            int64_t s = 1 << (c->prec - 1);
            for (int j = 0; j < c->xsize[y]; j++) s += (int64_t)base[(size_t)j * stride + i] * k[j];
            orow[i] = clip8_shift(s, c->prec);
        }
    }
}

// tvF.resize(image, (h, w), BICUBIC, antialias=True) on uint8 / PIL Image.resize((w, h), BICUBIC)
int image_resize(Image *dst, const Image *src, int out_w, int out_h, ResizeMode mode) {
    memset(dst, 0, sizeof *dst);
    if (!src->rgb || src->w <= 0 || src->h <= 0 || out_w <= 0 || out_h <= 0)
        return glm_err("resize: bad sizes %d x %d -> %d x %d", src->w, src->h, out_w, out_h);
    size_t out_bytes, tmp_bytes, vtmp_bytes;
    if (size_mul((size_t)out_w * 3, (size_t)out_h, &out_bytes) ||
        size_mul((size_t)out_w * 3, (size_t)src->h, &tmp_bytes) ||
        size_mul((size_t)src->w * 3, (size_t)out_h, &vtmp_bytes))
        return glm_err("resize: %d x %d too large", out_w, out_h);
    // need_horizontal = xout != xin; need_vertical = yout != yin (a pass is skipped when its size is unchanged)
    int need_h = out_w != src->w, need_v = out_h != src->h;
    Coeffs ch = {0}, cv = {0};
    if (need_h && precompute_coeffs(&ch, src->w, out_w, mode)) return -1;
    if (need_v && precompute_coeffs(&cv, src->h, out_h, mode)) {
        coeffs_free(&ch);
        return -1;
    }
    // Pillow >= 13 (ImagingResampleInner): "If height is being scaled down more than twice the amount the width is,
    // run the vertical pass first"; PyTorch and Pillow <= 12: always horizontal first
    int64_t dh = (int64_t)src->h - out_h, dw = (int64_t)src->w - out_w;
    int horizontal_first = mode != RESIZE_PIL13 || !(dh > 0 && dh > dw * 2);
    uint8_t *out = xmalloc(out_bytes); // [out_h, out_w, 3]
    if (need_h && need_v && horizontal_first) {
        uint8_t *tmp = xmalloc(tmp_bytes); // [src->h, out_w, 3] uint8 between the passes
        resample_horizontal(tmp, src->rgb, src->h, src->w, out_w, &ch);
        resample_vertical(out, tmp, out_w, out_h, &cv);
        free(tmp);
    } else if (need_h && need_v) {
        uint8_t *tmp = xmalloc(vtmp_bytes); // [out_h, src->w, 3]
        resample_vertical(tmp, src->rgb, src->w, out_h, &cv);
        resample_horizontal(out, tmp, out_h, src->w, out_w, &ch);
        free(tmp);
    } else if (need_h) {
        resample_horizontal(out, src->rgb, src->h, src->w, out_w, &ch);
    } else if (need_v) {
        resample_vertical(out, src->rgb, src->w, out_h, &cv);
    } else {
        memcpy(out, src->rgb, out_bytes);
    }
    coeffs_free(&ch);
    coeffs_free(&cv);
    dst->w = out_w;
    dst->h = out_h;
    dst->rgb = out;
    return 0;
}

// ----------------------------------------------------------------------------
// rescale + normalize + patchify (Glm4vImageProcessor._preprocess / Glm4vVideoProcessor._preprocess)

// free the rows and reset the batch
void pixel_batch_free(PixelBatch *pb) {
    if (!pb) return;
    free(pb->pixel_values);
    memset(pb, 0, sizeof *pb);
}

// grow pb by one item of n rows; returns the first new row (or NULL + glm_errmsg)
static float *pixel_batch_append(PixelBatch *pb, int64_t n, int ncols, int t, int h, int w) {
    int cap_items = (int)(sizeof pb->grid / sizeof pb->grid[0]);
    if (pb->nitems >= cap_items) {
        glm_err("too many images/videos in one prompt (at most %d)", cap_items);
        return NULL;
    }
    if (pb->nitems > 0 && pb->ncols != ncols) {
        glm_err("pixel rows of %d values do not match the batch's %d", ncols, pb->ncols);
        return NULL;
    }
    size_t rows, total;
    if (size_add((size_t)pb->npatches, (size_t)n, &rows) || size_mul(rows, (size_t)ncols * sizeof(float), &total))
        return NULL;
    float *pv = realloc(pb->pixel_values, total ? total : 1);
    if (!pv) {
        glm_err("out of memory for %zu pixel rows", rows);
        return NULL;
    }
    pb->pixel_values = pv;
    float *first = pv + (size_t)pb->npatches * ncols;
    pb->npatches = (int64_t)rows;
    pb->ncols = ncols;
    pb->grid[pb->nitems][0] = t;
    pb->grid[pb->nitems][1] = h;
    pb->grid[pb->nitems][2] = w;
    pb->nitems++;
    return first;
}

// write the normalized frame `tslot` (0..T-1 of the padded frame sequence) into the item's rows
// (patchify: view(gt, tp, C, gh/m, m, ps, gw/m, m, ps).permute(gt, gh/m, gw/m, m, m, C, tp, ps, ps))
// (is_video: the video processor's image_mean / image_std / rescale_factor, else the image processor's)
static void patchify_frame(float *rows, const Image *fr, int tslot, const ProcConfig *pc, ResizeMode mode, int is_video) {
    int ps = pc->patch_size, m = pc->merge_size, tp = pc->temporal_patch_size;
    int gh = fr->h / ps, gw = fr->w / ps, bh_n = gh / m, bw_n = gw / m;
    int ncols = 3 * tp * ps * ps;
    int t = tslot / tp, tt = tslot % tp;
    const float *mean = is_video ? pc->vimage_mean : pc->image_mean, *std = is_video ? pc->vimage_std : pc->image_std;
    const double rescale = is_video ? pc->vrescale_factor : pc->rescale_factor;
    float sub[3], div[3];
    for (int c = 0; c < 3; c++) {
        if (mode != RESIZE_TORCH) {
            sub[c] = mean[c];
            div[c] = std[c];
        } else {
            // _fuse_mean_std_and_rescale_factor: torch.tensor(mean) * (1.0 / rescale_factor), fp32 tensor x scalar
            float s = (float)(1.0 / rescale);
            sub[c] = mean[c] * s;
            div[c] = std[c] * s;
        }
    }
    for (int y = 0; y < fr->h; y++) {
        int gy = y / ps, py = y % ps, bh = gy / m, mh = gy % m;
        for (int x = 0; x < fr->w; x++) {
            int gx = x / ps, px = x % ps, bw = gx / m, mw = gx % m;
            // row (t, bh, bw, mh, mw)
            size_t r = ((((size_t)t * bh_n + bh) * bw_n + bw) * m + mh) * m + mw;
            float *row = rows + r * ncols;
            const uint8_t *p = fr->rgb + ((size_t)y * fr->w + x) * 3;
            for (int c = 0; c < 3; c++) {
                float v;
                if (mode != RESIZE_TORCH) {
                    // rescale: (image.astype(float64) * scale).astype(float32); normalize: (image - mean) / std (fp32)
                    float r8 = (float)((double)p[c] * rescale);
                    v = (r8 - sub[c]) / div[c];
                } else {
                    // tvF.normalize(images.to(float32), mean*255, std*255): tensor.sub_(mean).div_(std)
                    v = ((float)p[c] - sub[c]) / div[c];
                }
                // column ((c * tp + tt) * ps + py) * ps + px
                row[((size_t)(c * tp + tt) * ps + py) * ps + px] = v;
            }
        }
    }
}

// one image or video -> one item appended to pb (Glm4vImageProcessor._preprocess / Glm4vVideoProcessor._preprocess)
int preprocess_frames(PixelBatch *pb, const Image *frames, int nframes, const ProcConfig *pc, ResizeMode mode,
                      int is_video) {
    if (nframes < 1 || !frames) return glm_err("preprocess: no frames");
    int ps = pc->patch_size, m = pc->merge_size, tp = pc->temporal_patch_size;
    if (ps <= 0 || m <= 0 || tp <= 0 || ps > 1024 || m > 64 || tp > 64)
        return glm_err("preprocess: bad patch sizes (patch %d, merge %d, temporal %d)", ps, m, tp);
    int H = frames[0].h, W = frames[0].w;
    for (int i = 0; i < nframes; i++) {
        if (!frames[i].rgb || frames[i].w <= 0 || frames[i].h <= 0) return glm_err("preprocess: frame %d is empty", i);
        if (frames[i].w != W || frames[i].h != H)
            return glm_err("preprocess: frame %d is %d x %d, frame 0 is %d x %d (all frames must have one size)", i,
                           frames[i].w, frames[i].h, W, H);
    }
    // resized_height, resized_width = smart_resize(num_frames=..., factor=patch_size * merge_size, ...)
    // (images: num_frames=temporal_patch_size; videos: the number of frames)
    int rh, rw;
    int64_t minp = is_video ? pc->vmin_pixels : pc->min_pixels, maxp = is_video ? pc->vmax_pixels : pc->max_pixels;
    if (smart_resize(is_video ? nframes : tp, H, W, tp, ps * m, minp, maxp, &rh, &rw)) return -1;
    // pad T to a multiple of temporal_patch_size by repeating the last frame
    int64_t T = ((int64_t)nframes + tp - 1) / tp * tp;
    int64_t gt = T / tp, gh = rh / ps, gw = rw / ps;
    int ncols = 3 * tp * ps * ps;
    int64_t nrows = gt * gh * gw;
    if (gt > INT_MAX) return glm_err("preprocess: too many frames");
    float *rows = pixel_batch_append(pb, nrows, ncols, (int)gt, (int)gh, (int)gw);
    if (!rows) return -1;
    for (int64_t f = 0; f < T; f++) {
        const Image *src = &frames[f < nframes ? f : nframes - 1];
        Image rs;
        // tvF.resize(image, (h, w), BICUBIC, antialias=True) / PIL resize((w, h), BICUBIC); same size: unchanged
        if (image_resize(&rs, src, rw, rh, mode)) {
            pb->nitems--;
            pb->npatches -= nrows;
            return -1;
        }
        patchify_frame(rows, &rs, (int)f, pc, mode, is_video);
        image_free(&rs);
    }
    return 0;
}

