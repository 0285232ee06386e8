// SPDX-License-Identifier: MIT
// preprocess.h - Glm4vImageProcessor / Glm4vVideoProcessor (preprocess.c): smart_resize, bicubic resize, rescale +
// normalize, patchify. Decoding is image.h's, video input video.h's.
#ifndef GLM4V_PREPROCESS_H
#define GLM4V_PREPROCESS_H

#include "checkpoint.h"
#include "image.h"
#include "video.h"

// RESIZE_TORCH: Glm4vImageProcessor (torchvision, default); RESIZE_PIL: Glm4vImageProcessorPil with Pillow <= 12;
// RESIZE_PIL13: the same with Pillow >= 13 (vertical pass first when the height shrinks much more than the width)
typedef enum { RESIZE_TORCH = 0, RESIZE_PIL = 1, RESIZE_PIL13 = 2 } ResizeMode;

// Glm4vImageProcessor.smart_resize: out h, w (multiples of factor); -1 on error (aspect > 200, ...)
int smart_resize(int num_frames, int height, int width, int temporal_factor, int factor,
                 int64_t min_pixels, int64_t max_pixels, int *out_h, int *out_w);
// antialiased bicubic resize of uint8 RGB (RESIZE_TORCH: PyTorch's uint8 AVX2 kernel; RESIZE_PIL*: Pillow)
int image_resize(Image *dst, const Image *src, int out_w, int out_h, ResizeMode mode);

#define PIXEL_BATCH_MAX_ITEMS 64 // images (or videos) in one PixelBatch

// preprocessed visual input: pixel rows in the 2x2 block-major patch order
typedef struct {
    float *pixel_values;  // [P, C*T*ps*ps]
    int64_t npatches;     // P
    int ncols;            // C*T*ps*ps (1176)
    int grid[PIXEL_BATCH_MAX_ITEMS][3]; // (t, h, w) per item, in patches
    int nitems;           // items (images, or videos) in the batch
} PixelBatch;

// frames [nframes] of identical size -> one item appended to pb (zero-initialise pb before the first call):
// smart_resize (images: num_frames = temporal_patch_size and the image budget; videos: nframes and the video budget),
// resize, rescale + normalize, T padded to temporal_patch_size by repeating the last frame, patchify;
// grid (T/2, h/14, w/14). Call once per image; a video is one item (is_video = 1).
int preprocess_frames(PixelBatch *pb, const Image *frames, int nframes, const ProcConfig *pc, ResizeMode mode,
                      int is_video);
void pixel_batch_free(PixelBatch *pb);

#endif
