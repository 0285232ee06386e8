// SPDX-License-Identifier: MIT
// preprocess.h - vision input (preprocess.c): image decoding, Glm4vImageProcessor / Glm4vVideoProcessor (smart_resize,
// bicubic resize, rescale + normalize, patchify) and video frames (a folder, or a file through ffmpeg).
#ifndef GLM4V_PREPROCESS_H
#define GLM4V_PREPROCESS_H

#include "checkpoint.h"

typedef struct {
    int w, h;           // pixels
    uint8_t *rgb;       // [h, w, 3]
} Image;

// decode a file into RGB (transformers load_image: EXIF orientation, then PIL convert("RGB"): alpha dropped, gray
// replicated); PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PNM; refuses > max_pixels (0: no limit) from the header
int image_load(Image *img, const char *path, int64_t max_pixels);
int image_load_mem(Image *img, const uint8_t *buf, size_t len, const char *name, int64_t max_pixels);
void image_free(Image *img);
void images_free(Image *frames, int n); // image_free of each, then free(frames)

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

// video frames from a directory: every image file (by extension, hidden files skipped) in strcmp order, one size
int video_load_dir(Image **frames, int *nframes, const char *dir, int64_t max_pixels);
// Glm4vVideoProcessor.sample_frames (Glm46VVideoProcessor's when pc->glm46v): sampled frame indices (malloc'd into
// *idx, even count); duration <= 0: unknown. Returns the count or -1
int video_sample_frames(int **idx, int total_frames, double video_fps, double duration, const ProcConfig *pc);
// decode a video file with the ffmpeg program: frames sampled as video_sample_frames, frame_times [nframes] =
// frame_index / fps in seconds (malloc'd)
int video_load_file(Image **frames, int *nframes, double **frame_times, const char *path, const ProcConfig *pc,
                    int64_t max_pixels);
// per temporal patch timestamp text (frame_times[::2], padded with the last): "0", "1", ... (int seconds);
// GLM-4.6V: "0.0 seconds", ... ; *texts malloc'd [n_patches]
int video_timestamps(char ***texts, int n_patches, const double *frame_times, int nframes, const ProcConfig *pc);
void video_timestamps_free(char **texts, int n);

#endif
