// SPDX-License-Identifier: MIT
// image.h - image decoding (image.c): a file or its bytes to RGB, as transformers' load_image and PIL do it; and
// the one PNG encoder (pictures the program writes).
#ifndef GLM4V_IMAGE_H
#define GLM4V_IMAGE_H

#include "base.h"

typedef struct {
    int w, h;           // pixels
    uint8_t *rgb;       // [h, w, 3]
} Image;

// decode a file into RGB (transformers load_image: EXIF orientation, then PIL convert("RGB"): alpha dropped, gray
// replicated); PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PNM; refuses > max_pixels (0: no limit) from the header
int image_load(Image *img, const char *path, int64_t max_pixels);
int image_load_mem(Image *img, const uint8_t *buf, size_t len, const char *name, int64_t max_pixels);
// decode a video frame found inside a frame folder (a regular file only, never a blocking open: fileio.h read_file):
// as load_image decodes it, but a colour-key transparency stays its colour (Glm4vVideoProcessor converts frames as
// arrays: its convert_to_rgb has no PIL transparency left to composite onto white, as the image processor's has)
int image_load_file(Image *img, const char *path, int64_t max_pixels);
// encode RGB pixels as a PNG file (8-bit RGB, zlib-deflated; decodes to exactly img's pixels): malloc'd bytes in
// *out, or -1 + glm_errmsg (the --draw-boxes pictures, the server's /v1/pages)
int image_encode_png(const Image *img, uint8_t **out, size_t *len);
void image_free(Image *img);
void images_free(Image *frames, int n); // image_free of each, then free(frames)

#endif
