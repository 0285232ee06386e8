// SPDX-License-Identifier: MIT
// fuzz_image.c - libFuzzer target: image decoding (format sniffing, header size checks, EXIF orientation, JPEG by
// libjpeg-turbo, PNG/BMP/GIF/TGA/PSD/HDR by stb_image, PNM) then Glm4vImageProcessor preprocessing (smart_resize,
// bicubic resize, normalize, patchify) with a small pixel limit. The first byte picks the file name (TGA is told by
// its .tga extension), the resize mode and whether the image is used as video frames; the rest is the file.
#include "../preprocess.h"

#include <stdlib.h>
#include <string.h>

#define FZ_MAX_PIXELS (1 << 20) // decode at most 1 Mpixel (--max-image-pixels)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t sel = data[0];
    data++, size--;
    uint8_t *buf = malloc(size ? size : 1); // exact-size copy: reads past the end are caught
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    Image img;
    if (image_load_mem(&img, buf, size, (sel & 1) ? "fuzz.tga" : "fuzz.img", FZ_MAX_PIXELS) == 0) {
        if (img.w <= 0 || img.h <= 0 || (int64_t)img.w * img.h > FZ_MAX_PIXELS || !img.rgb) abort();
        ProcConfig pc;
        proc_config_defaults(&pc);
        pc.max_pixels = pc.vmax_pixels = 28 * 28 * 64; // small budget: at most 256 patches per frame
        ResizeMode mode = (ResizeMode)((sel >> 1) % 3);
        PixelBatch pb;
        memset(&pb, 0, sizeof pb);
        int video = (sel >> 3) & 1;
        Image frames[3] = {img, img, img};
        if (preprocess_frames(&pb, frames, video ? 3 : 1, &pc, mode, video) == 0) {
            int64_t rows = (int64_t)pb.grid[0][0] * pb.grid[0][1] * pb.grid[0][2];
            if (pb.nitems != 1 || rows != pb.npatches || pb.ncols != 3 * 2 * 14 * 14) abort();
            float s = 0;
            for (int64_t i = 0; i < pb.npatches * pb.ncols; i++) s += pb.pixel_values[i]; // all rows written
            (void)s;
        }
        pixel_batch_free(&pb);
        image_free(&img);
    }
    free(buf);
    return 0;
}
