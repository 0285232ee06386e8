// SPDX-License-Identifier: MIT
// preprocess.c - vision input: image decoding, smart_resize, bicubic resize, rescale/normalize and patchify as HF
// transformers 5.x Glm4vImageProcessor / Glm4vVideoProcessor (Glm46V* for GLM-4.6V), plus video frame input.
//
// Accepted image formats (the format is recognised by its magic bytes, TGA, which has none, by the extension .tga):
//   JPEG decoded by libjpeg-turbo (Debian's libjpeg62-turbo), the library PIL decodes JPEG with, set up as Pillow's
//        JpegDecode.c sets it up (islow IDCT, fancy upsampling, libjpeg's colour conversion): baseline, progressive,
//        arithmetic-coded; 8-bit gray, YCbCr, RGB, CMYK / YCCK (Adobe-inverted, as PIL reads them); any sampling;
//        EXIF orientation applied. Pixels are identical to PIL's (tests/test_preprocess.c). Not accepted: 12-bit
//        (PIL refuses them too), lossless (SOF3: PIL's bundled libjpeg-turbo 3.x reads them, Debian 12's 2.1.5 does
//        not), more than JPEG_MAX_SCANS scans (a progressive-JPEG denial of service that PIL does not guard against)
//   by stb_image from Debian's libstb-dev (only these decoders compiled in):
//   PNG  1/2/4/8/16-bit gray, gray+alpha, palette (+tRNS), RGB, RGBA; interlaced
//   BMP, GIF (first frame), TGA, PSD (composited image), HDR (Radiance .hdr)
//   and here: PNM, binary P5 .pgm / P6 .ppm, any maxval (decoded the way PIL's PpmImagePlugin does)
// Conversion to RGB follows transformers' load_image (PIL.ImageOps.exif_transpose, then Image.convert("RGB")):
//   gray is replicated, alpha is dropped (not blended), palettes are looked up, 16-bit samples keep their high byte,
//   except 16-bit single-channel images (PIL mode I;16), whose values PIL clamps to 255 (min(v, 255)); CMYK goes
//   through PIL's cmyk2rgb. A JPEG that ends before its last scanline is refused, as PIL does ("image file is
//   truncated"); libjpeg's warnings about corrupt data are ignored, as PIL ignores them.
// Known differences from PIL: transparent GIF pixels decode as black instead of their palette colour; HDR (which PIL
//   cannot read) is tone-mapped as stb_image does (gamma 1/2.2, clamped to [0, 1], x255 rounded).
// Note: transformers >= 5.24 composites alpha onto white in convert_to_rgb when it is handed an RGBA PIL image
//   directly; load_image (paths / URLs, what chat templates use) converts to RGB first and drops alpha, as here.
//
// The default resize reproduces torchvision's antialiased bicubic resize of uint8 images as PyTorch runs it on x86 CPUs
// with AVX2 (aten/src/ATen/native/cpu/UpSampleKernelAVXAntialias.h, weights from UpSampleKernel.cpp
// _compute_index_ranges_int16_weights); the references in tests/ were made on such a CPU. RESIZE_PIL reproduces
// Pillow's Image.resize(BICUBIC) (libImaging/Resample.c) up to Pillow 12 (horizontal pass first; the hf-golden
// fixtures were made with it), RESIZE_PIL13 Pillow >= 13, which runs the vertical pass first when the height shrinks
// by more than twice as many pixels as the width.
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#define STBI_ONLY_PSD
#define STBI_ONLY_HDR
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "preprocess.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jpeglib.h> // after <stdio.h> (preprocess.h)
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_IMAGE_FILE_BYTES ((size_t)1 << 30) // stb_image takes an int length
#define MAX_VIDEO_BYTES ((uint64_t)16 << 30)   // decoded RGB frames kept in memory

// ----------------------------------------------------------------------------
// image decoding

typedef enum { FMT_UNKNOWN, FMT_PNG, FMT_JPEG, FMT_BMP, FMT_GIF, FMT_TGA, FMT_PSD, FMT_HDR, FMT_PNM } ImgFormat;

static int has_suffix_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

// recognise the container by its magic bytes (TGA has none: by extension); the only formats handed to stb_image
static ImgFormat sniff_format(const uint8_t *b, size_t n, const char *name) {
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return FMT_PNG;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FMT_JPEG;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return FMT_BMP;
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) return FMT_GIF;
    if (n >= 4 && memcmp(b, "8BPS", 4) == 0) return FMT_PSD;
    if ((n >= 10 && memcmp(b, "#?RADIANCE", 10) == 0) || (n >= 6 && memcmp(b, "#?RGBE", 6) == 0)) return FMT_HDR;
    if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return FMT_PNM;
    if (name && has_suffix_ci(name, ".tga")) return FMT_TGA;
    return FMT_UNKNOWN;
}

static uint32_t rd16(const uint8_t *p, int be) { return be ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0]; }
static uint32_t rd32(const uint8_t *p, int be) {
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

// PIL PpmImageFile._read_token: skip whitespace and '#' comments (to CR / LF), read up to 10 non-space bytes, eat the
// whitespace byte that ends the token. Returns the token's value (digits only) or -1
static int64_t pnm_token(const uint8_t *b, size_t n, size_t *p) {
    char tok[16];
    int len = 0;
    while (*p < n && len <= 10) {
        uint8_t c = b[(*p)++];
        if (c == ' ' || (c >= '\t' && c <= '\r')) {
            if (!len) continue;
            break;
        }
        if (c == '#') {
            while (*p < n && b[*p] != '\r' && b[*p] != '\n') (*p)++;
            if (*p < n) (*p)++;
            continue;
        }
        tok[len++] = (char)c;
    }
    if (len == 0 || len > 10) return -1;
    int64_t v = 0;
    for (int i = 0; i < len; i++) {
        if (tok[i] < '0' || tok[i] > '9') return -1;
        v = v * 10 + (tok[i] - '0');
    }
    return v;
}

// binary PGM / PPM header ("P5" / "P6", width, height, maxval); off = first sample. 1 when well-formed and complete
static int pnm_header(const uint8_t *b, size_t n, int64_t *w, int64_t *h, int64_t *maxv, size_t *off) {
    size_t p = 2;
    *w = pnm_token(b, n, &p);
    *h = pnm_token(b, n, &p);
    *maxv = pnm_token(b, n, &p);
    *off = p;
    // if not 0 < maxval < 65536: raise ValueError
    if (*w <= 0 || *h <= 0 || *maxv <= 0 || *maxv >= 65536 || *w > INT_MAX || *h > INT_MAX) return 0;
    uint64_t need = (uint64_t)*w * (uint64_t)*h * (b[1] == '6' ? 3 : 1) * (*maxv > 255 ? 2 : 1);
    return n - p >= need; // PIL reads a short file as far as it goes; refused here
}

// PIL PpmImagePlugin + convert("RGB"): raw samples when maxval is 255 (P5: and 65535, mode I;16B), else PpmDecoder
// value = min(out_max, round(value / maxval * out_max)) with out_max 65535 for 16-bit gray (mode I), 255 otherwise;
// mode I -> RGB clamps to 255. Decoded here rather than by stb_image 2.27, which reads 16-bit samples byte-swapped
static int pnm_decode(Image *img, const uint8_t *b, size_t n, const char *name, int64_t max_pixels) {
    int64_t w, h, maxv;
    size_t off;
    if (!pnm_header(b, n, &w, &h, &maxv, &off))
        return glm_err("%s: not a decodable image (PNM: bad header or truncated)", name);
    if (max_pixels > 0 && w * h > max_pixels)
        return glm_err("%s: image is %lld x %lld = %lld pixels, above the limit of %lld (--max-image-pixels)", name,
                       (long long)w, (long long)h, (long long)(w * h), (long long)max_pixels);
    if ((uint64_t)w * h > SIZE_MAX / 3)
        return glm_err("%s: image too large (%lld x %lld)", name, (long long)w, (long long)h);
    int bands = b[1] == '6' ? 3 : 1, two = maxv > 255;
    int gray_i = bands == 1 && two;                // PIL mode "I"
    int64_t out_max = gray_i ? 65535 : 255;
    int raw = maxv == 255 || (gray_i && maxv == 65535);
    size_t npix = (size_t)w * h;
    uint8_t *rgb = malloc(npix * 3); // [h, w, 3]
    if (!rgb) return glm_err("%s: out of memory for a %lld x %lld image", name, (long long)w, (long long)h);
    const uint8_t *s = b + off;
    for (size_t i = 0; i < npix; i++)
        for (int c = 0; c < bands; c++) {
            int64_t v = two ? (int64_t)s[0] << 8 | s[1] : s[0];
            s += two ? 2 : 1;
            if (!raw) {
                double r = nearbyint((double)v / (double)maxv * (double)out_max);
                v = r > (double)out_max ? out_max : (int64_t)r;
            }
            uint8_t u = v > 255 ? 255 : (uint8_t)v; // mode I -> RGB: clip
            if (bands == 1) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = u;
            else rgb[3 * i + c] = u;
        }
    img->w = (int)w;
    img->h = (int)h;
    img->rgb = rgb;
    return 0;
}

// width and height from the header of the formats whose header is simple to read (HDR: stbi_info only): 1 when
// found, 0 when not. Lets an oversized image be reported as such even where the decoder (stb_image, libjpeg) would
// refuse it for its own reasons (e.g. a JPEG with no scan)
static int header_dims(const uint8_t *b, size_t n, ImgFormat fmt, int64_t *w, int64_t *h) {
    switch (fmt) {
    case FMT_PNG:
        if (n < 24 || memcmp(b + 12, "IHDR", 4)) return 0;
        *w = rd32(b + 16, 1);
        *h = rd32(b + 20, 1);
        return 1;
    case FMT_GIF:
        if (n < 10) return 0;
        *w = rd16(b + 6, 0);
        *h = rd16(b + 8, 0);
        return 1;
    case FMT_BMP: {
        if (n < 26) return 0;
        uint32_t hsz = rd32(b + 14, 0);
        if (hsz == 12) {
            *w = rd16(b + 18, 0);
            *h = rd16(b + 20, 0);
        } else {
            *w = (int32_t)rd32(b + 18, 0);
            *h = (int32_t)rd32(b + 22, 0);
            if (*h < 0) *h = -*h; // top-down
        }
        return 1;
    }
    case FMT_PSD:
        if (n < 22) return 0;
        *h = rd32(b + 14, 1);
        *w = rd32(b + 18, 1);
        return 1;
    case FMT_TGA:
        if (n < 16) return 0;
        *w = rd16(b + 12, 0);
        *h = rd16(b + 14, 0);
        return 1;
    case FMT_JPEG: {
        size_t p = 2;
        while (p + 4 <= n) {
            if (b[p] != 0xFF) return 0;
            uint8_t m = b[p + 1];
            if (m == 0xFF) { p++; continue; }
            if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { p += 2; continue; }
            if (m == 0xDA || m == 0xD9) return 0;
            size_t len = rd16(b + p + 2, 1);
            if (len < 2 || p + 2 + len > n) return 0;
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) { // SOFn
                if (len < 7) return 0;
                *h = rd16(b + p + 5, 1);
                *w = rd16(b + p + 7, 1);
                return 1;
            }
            p += 2 + len;
        }
        return 0;
    }
    default:
        return 0;
    }
}

// Orientation (0x0112) in IFD0 of a TIFF-structured EXIF block, as PIL's Exif reads it: the value of a one-element
// SHORT / LONG tag; 0 when the tag is absent, -1 when present in another form (PIL then does not transpose)
static int exif_orientation_tiff(const uint8_t *t, size_t n) {
    if (n < 8) return 0;
    int be;
    if (t[0] == 'I' && t[1] == 'I') be = 0;
    else if (t[0] == 'M' && t[1] == 'M') be = 1;
    else return 0;
    if (rd16(t + 2, be) != 42) return 0;
    uint32_t ifd = rd32(t + 4, be);
    if (ifd > n || n - ifd < 2) return 0;
    uint32_t count = rd16(t + ifd, be);
    for (uint32_t i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) return 0;
        if (rd16(t + e, be) == 0x0112) {
            uint32_t type = rd16(t + e + 2, be), cnt = rd32(t + e + 4, be);
            if (cnt != 1 || (type != 3 && type != 4)) return -1;
            uint32_t v = type == 3 ? rd16(t + e + 8, be) : rd32(t + e + 8, be);
            return v <= 8 ? (int)v : -1;
        }
    }
    return 0;
}

// re.search(r'tiff:Orientation(="|>)([0-9])', xmp): the digit, or 0
static int xmp_orientation(const uint8_t *x, size_t n) {
    static const char key[] = "tiff:Orientation";
    size_t k = sizeof key - 1;
    for (size_t i = 0; i + k + 2 < n; i++) {
        if (memcmp(x + i, key, k)) continue;
        size_t p = i + k;
        if (x[p] == '=' && x[p + 1] == '"') p += 2;
        else if (x[p] == '>') p += 1;
        else continue;
        if (p < n && x[p] >= '0' && x[p] <= '9') return x[p] - '0';
    }
    return 0;
}

// PIL Image.getexif()[Orientation] for a JPEG (first APP1 "Exif\0\0") or PNG (eXIf chunk), falling back to the XMP
// packet (JPEG APP1 "http://ns.adobe.com/xap/1.0/", PNG iTXt "XML:com.adobe.xmp", uncompressed) when EXIF has none
static int exif_orientation(const uint8_t *b, size_t n, ImgFormat fmt) {
    int exif = 0, xmp = 0, have_exif = 0;
    if (fmt == FMT_JPEG) {
        static const char xmp_id[] = "http://ns.adobe.com/xap/1.0/";
        size_t p = 2;
        while (p + 4 <= n) {
            if (b[p] != 0xFF) break;
            uint8_t marker = b[p + 1];
            if (marker == 0xFF) { p++; continue; }                       // fill byte
            if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { p += 2; continue; }
            if (marker == 0xDA || marker == 0xD9) break;                 // start of scan / end of image
            size_t len = rd16(b + p + 2, 1);
            if (len < 2 || p + 2 + len > n) break;
            const uint8_t *seg = b + p + 4;
            size_t slen = len - 2;
            if (marker == 0xE1 && !have_exif && slen >= 6 && memcmp(seg, "Exif\0\0", 6) == 0) {
                exif = exif_orientation_tiff(seg + 6, slen - 6);
                have_exif = 1;
            } else if (marker == 0xE1 && slen >= sizeof xmp_id && memcmp(seg, xmp_id, sizeof xmp_id) == 0) {
                xmp = xmp_orientation(seg + sizeof xmp_id, slen - sizeof xmp_id); // the last XMP packet counts
            }
            p += 2 + len;
        }
    } else if (fmt == FMT_PNG) {
        static const char xmp_key[] = "XML:com.adobe.xmp"; // iTXt: keyword \0 flag method lang \0 tkey \0 text
        size_t p = 8;
        while (p + 12 <= n) {
            size_t len = rd32(b + p, 1);
            if (len > n - p - 12) break;
            const uint8_t *d = b + p + 8;
            if (memcmp(b + p + 4, "eXIf", 4) == 0) {
                exif = exif_orientation_tiff(d, len);
                have_exif = 1;
            } else if (memcmp(b + p + 4, "iTXt", 4) == 0 && len > sizeof xmp_key + 2 &&
                       memcmp(d, xmp_key, sizeof xmp_key) == 0 && d[sizeof xmp_key] == 0) {
                size_t q = sizeof xmp_key + 2; // past the compression flag and method
                for (int z = 0; z < 2 && q < len; z++) // language tag, translated keyword
                    while (q < len && d[q++] != 0) {}
                xmp = xmp_orientation(d + q, len - q);
            }
            if (memcmp(b + p + 4, "IEND", 4) == 0) break;
            p += 12 + len;
        }
    }
    if (exif != 0) return exif;
    return xmp;
}

// PIL.ImageOps.exif_transpose: FLIP_LEFT_RIGHT (2), ROTATE_180 (3), FLIP_TOP_BOTTOM (4), TRANSPOSE (5),
// ROTATE_270 (6), TRANSVERSE (7), ROTATE_90 (8); replaces img->rgb
static void exif_transpose(Image *img, int orientation) {
    if (orientation < 2 || orientation > 8) return;
    int w = img->w, h = img->h;
    int swap = orientation >= 5;
    int ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *out = xmalloc((size_t)w * h * 3); // [oh, ow, 3]
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int sx, sy; // source pixel of output (x, y)
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;
            case 4: sx = x; sy = h - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = h - 1 - x; break;
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;
            default: sx = w - 1 - y; sy = x; break; // 8
            }
            memcpy(out + ((size_t)y * ow + x) * 3, img->rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    free(img->rgb);
    img->rgb = out;
    img->w = ow;
    img->h = oh;
}

static const char *format_name(ImgFormat f) {
    static const char *names[] = {"unknown", "PNG", "JPEG", "BMP", "GIF", "TGA", "PSD", "HDR", "PNM"};
    return names[f];
}

// ----------------------------------------------------------------------------
// JPEG: libjpeg-turbo driven as Pillow's JpegDecode.c drives it (PIL.JpegImagePlugin + ImagingJpegDecode)

#define JPEG_MAX_SCANS 1000 // more is refused (libjpeg-turbo's advice against progressive-JPEG denial of service)

// libjpeg error manager: fatal errors longjmp back to jpeg_decode (libjpeg's default error_exit calls exit())
typedef struct {
    struct jpeg_error_mgr pub;  // libjpeg's part (first member)
    jmp_buf jb;                 // setjmp point in jpeg_decode
    char msg[JMSG_LENGTH_MAX];  // why decoding stopped
} JpegErr;

// in-memory source with the suspension semantics of Pillow's source manager (fill_input_buffer returns FALSE):
// when libjpeg wants bytes past the end, PIL's ImageFile.load raises "image file is truncated", except in
// jpeg_finish_decompress once every scanline is out (JpegDecode.c state 4 then returns success)
typedef struct {
    struct jpeg_source_mgr pub; // libjpeg's part (first member)
    int finishing;              // 1 inside jpeg_finish_decompress
} JpegSrc;

// Pillow error(): longjmp instead of exit(); the message is kept for glm_err
static void jpeg_err_exit(j_common_ptr cinfo) {
    JpegErr *e = (JpegErr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jb, 1);
}

// Pillow output(): warnings (corrupt data that libjpeg repairs) and traces are counted by emit_message, never printed
static void jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

// progress monitor: refuse a file with more than JPEG_MAX_SCANS scans (each scan is a pass over the whole image)
static void jpeg_progress(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        JpegErr *e = (JpegErr *)cinfo->err;
        snprintf(e->msg, sizeof e->msg, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(e->jb, 1);
    }
}

static void jpeg_src_noop(j_decompress_ptr cinfo) { (void)cinfo; }

// the whole file is already in the buffer: a request for more is the end of the file (see JpegSrc)
static boolean jpeg_src_fill(j_decompress_ptr cinfo) {
    JpegErr *e = (JpegErr *)cinfo->err;
    if (((JpegSrc *)cinfo->src)->finishing) longjmp(e->jb, 2); // every scanline decoded: done
    snprintf(e->msg, sizeof e->msg, "file truncated: the data ends before the image does");
    longjmp(e->jb, 1);
}

// Pillow skip_input_data: skipping past the end waits for more data, i.e. is the end of the file
static void jpeg_src_skip(j_decompress_ptr cinfo, long num_bytes) {
    struct jpeg_source_mgr *s = cinfo->src;
    if (num_bytes <= 0) return;
    if ((unsigned long)num_bytes > s->bytes_in_buffer) jpeg_src_fill(cinfo);
    s->next_input_byte += num_bytes;
    s->bytes_in_buffer -= (size_t)num_bytes;
}

// PIL JpegImagePlugin (mode from the SOF's component count: 1 L, 3 RGB, 4 CMYK read as "CMYK;I") + ImagingJpegDecode
// (libjpeg-turbo, out_color_space from that raw mode), then Image.convert("RGB")
static int jpeg_decode(Image *img, const uint8_t *b, size_t n, const char *name, int64_t max_pixels) {
    struct jpeg_decompress_struct cinfo;
    JpegErr jerr;
    JpegSrc src;
    struct jpeg_progress_mgr progress;
    uint8_t *volatile rgb = NULL; // [h, w, 3]
    memset(&cinfo, 0, sizeof cinfo);
    memset(&src, 0, sizeof src);
    memset(&progress, 0, sizeof progress);
    // context->cinfo.err = jpeg_std_error(&context->error.pub); error_exit = error; output_message = output
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_err_exit;
    jerr.pub.output_message = jpeg_output_message;
    jerr.msg[0] = 0;
    switch (setjmp(jerr.jb)) {
    case 0:
        break;
    case 2: // end of data inside jpeg_finish_decompress: the image (already in img) is complete
        jpeg_destroy_decompress(&cinfo);
        return 0;
    default:
        jpeg_destroy_decompress(&cinfo); // frees every libjpeg allocation (row buffer included)
        free(rgb);
        memset(img, 0, sizeof *img);
        return glm_err("%s: not a decodable JPEG (libjpeg: %s)", name, jerr.msg);
    }
    jpeg_create_decompress(&cinfo);
    src.pub.init_source = src.pub.term_source = jpeg_src_noop;
    src.pub.fill_input_buffer = jpeg_src_fill;
    src.pub.skip_input_data = jpeg_src_skip;
    src.pub.resync_to_restart = jpeg_resync_to_restart;
    src.pub.next_input_byte = b;
    src.pub.bytes_in_buffer = n;
    cinfo.src = &src.pub;
    progress.progress_monitor = jpeg_progress;
    cinfo.progress = &progress;
    // ok = jpeg_read_header(&context->cinfo, FALSE) (repeated over tables-only streams; PIL needs an image anyway)
    jpeg_read_header(&cinfo, TRUE);
    int w = (int)cinfo.image_width, h = (int)cinfo.image_height, nc = cinfo.num_components;
    // SOF(): if self.bits != 8: "cannot handle {bits}-bit layers"; layers not 1, 3, 4: "cannot handle N-layer images"
    if (cinfo.data_precision != 8 || (nc != 1 && nc != 3 && nc != 4)) {
        snprintf(jerr.msg, sizeof jerr.msg, "%d-bit samples, %d components; PIL reads 8-bit with 1, 3 or 4",
                 cinfo.data_precision, nc);
        longjmp(jerr.jb, 1);
    }
    int64_t npix = (int64_t)w * h;
    if (max_pixels > 0 && npix > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        return glm_err("%s: image is %d x %d = %lld pixels, above the limit of %lld (--max-image-pixels)", name, w, h,
                       (long long)npix, (long long)max_pixels);
    }
    // rawmode L -> JCS_GRAYSCALE, RGB -> JCS_RGB, CMYK;I -> JCS_CMYK; jpeg_color_space as libjpeg guessed it from the
    // JFIF / Adobe markers and component ids (PIL's jpegmode is "": "we'll trust the decoder")
    cinfo.out_color_space = nc == 1 ? JCS_GRAYSCALE : nc == 3 ? JCS_RGB : JCS_CMYK;
    // libjpeg defaults, which PIL keeps unless draft() was called (transformers does not): accurate integer IDCT,
    // smooth (triangle-filter) chroma upsampling, full size
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = cinfo.scale_denom = 1;
    jpeg_start_decompress(&cinfo);
    if ((int)cinfo.output_width != w || (int)cinfo.output_height != h || cinfo.output_components != nc) {
        snprintf(jerr.msg, sizeof jerr.msg, "output %u x %u x %d differs from the header", cinfo.output_width,
                 cinfo.output_height, cinfo.output_components);
        longjmp(jerr.jb, 1);
    }
    rgb = malloc((size_t)npix * 3);
    if (!rgb) {
        snprintf(jerr.msg, sizeof jerr.msg, "out of memory for %d x %d pixels", w, h);
        longjmp(jerr.jb, 1);
    }
    JSAMPARRAY row = cinfo.mem->alloc_sarray((j_common_ptr)&cinfo, JPOOL_IMAGE, (JDIMENSION)w * nc, 1); // [1, w*nc]
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, row, 1);
        const JSAMPLE *s = row[0];
        uint8_t *d = rgb + y * w * 3;
        for (int x = 0; x < w; x++, d += 3, s += nc) {
            if (nc == 1) {
                d[0] = d[1] = d[2] = s[0]; // L -> RGB
            } else if (nc == 3) {
                memcpy(d, s, 3);
            } else {
                // Unpack.c unpackCMYKI: iv = ~MAKE_UINT32(c, m, y, k) (Adobe's inverted CMYK), then Convert.c
                // cmyk2rgb: nk = 255 - in[3]; out = CLIP8(nk - MULDIV255(in[c], nk, tmp))
                int nk = 255 - (255 - s[3]);
                for (int c = 0; c < 3; c++) {
                    int t = (255 - s[c]) * nk + 128;
                    int v = nk - (((t >> 8) + t) >> 8);
                    d[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        }
    }
    img->w = w;
    img->h = h;
    img->rgb = rgb;
    // jpeg_finish_decompress reads on to EOI: data that ends there leaves the image complete (PIL's state 4), a
    // fatal error there fails as in PIL
    src.finishing = 1;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

static uint8_t *png_drop_empty_idat(const uint8_t *buf, size_t *len);
static int stb_decode(Image *img, const uint8_t *buf, size_t len, const char *name, ImgFormat fmt, int64_t max_pixels);

// decode an image held in memory into RGB (transformers load_image semantics, see the top of this file)
int image_load_mem(Image *img, const uint8_t *buf, size_t len, const char *name, int64_t max_pixels) {
    memset(img, 0, sizeof *img);
    if (!name) name = "image";
    if (len == 0) return glm_err("%s: not a decodable image (empty file)", name);
    if (len > MAX_IMAGE_FILE_BYTES) return glm_err("%s: image file too large (%zu bytes)", name, len);
    ImgFormat fmt = sniff_format(buf, len, name);
    if (fmt == FMT_UNKNOWN)
        return glm_err("%s: not a decodable image (unknown format; accepted: PNG, JPEG, BMP, GIF, TGA, PSD, HDR, "
                       "PNM)", name);
    if (fmt == FMT_PNM) return pnm_decode(img, buf, len, name, max_pixels);
    // header first: refuse absurd sizes before a decoder allocates anything
    int64_t hw = 0, hh = 0;
    int have_dims = header_dims(buf, len, fmt, &hw, &hh);
    if (have_dims && (hw <= 0 || hh <= 0))
        return glm_err("%s: not a decodable image (%s header: size %lld x %lld)", name, format_name(fmt), (long long)hw,
                       (long long)hh);
    uint64_t hpix = (uint64_t)hw * (uint64_t)hh; // both sides < 2^32
    if (have_dims && max_pixels > 0 && hpix > (uint64_t)max_pixels)
        return glm_err("%s: image is %lld x %lld = %llu pixels, above the limit of %lld (--max-image-pixels)", name,
                       (long long)hw, (long long)hh, (unsigned long long)hpix, (long long)max_pixels);
    if (fmt == FMT_JPEG) {
        if (jpeg_decode(img, buf, len, name, max_pixels)) return -1;
        exif_transpose(img, exif_orientation(buf, len, fmt));
        return 0;
    }
    uint8_t *fixed = NULL; // a copy of a PNG without its empty IDAT chunks (see png_drop_empty_idat)
    if (fmt == FMT_PNG && (fixed = png_drop_empty_idat(buf, &len))) buf = fixed;
    int rc = stb_decode(img, buf, len, name, fmt, max_pixels);
    free(fixed);
    return rc;
}

// stb_image 2.27 stbi__parse_png_file copies a zero-length IDAT chunk that comes first through a NULL buffer
// (memcpy(NULL, p, 0): undefined behaviour, contained here rather than patched): such chunks carry no data, so a copy
// of the file without them decodes to the same image. NULL when the file has none; chunks from the first malformed one
// on are kept as they are (stb judges them).
static uint8_t *png_drop_empty_idat(const uint8_t *buf, size_t *len) {
    size_t off = 8, n = *len, empty = 0;
    while (off + 12 <= n) {
        uint32_t clen = (uint32_t)buf[off] << 24 | (uint32_t)buf[off + 1] << 16 | (uint32_t)buf[off + 2] << 8 | buf[off + 3];
        if (clen > n - off - 12) break; // malformed from here on: left as it is, for stb to judge
        if (clen == 0 && memcmp(buf + off + 4, "IDAT", 4) == 0) empty++;
        off += 12 + (size_t)clen;
    }
    if (!empty) return NULL;
    uint8_t *out = malloc(n);
    if (!out) return NULL;
    size_t o = 8;
    memcpy(out, buf, 8);
    for (off = 8; off + 12 <= n;) {
        uint32_t clen = (uint32_t)buf[off] << 24 | (uint32_t)buf[off + 1] << 16 | (uint32_t)buf[off + 2] << 8 | buf[off + 3];
        if (clen > n - off - 12) break;
        if (!(clen == 0 && memcmp(buf + off + 4, "IDAT", 4) == 0)) memcpy(out + o, buf + off, 12 + (size_t)clen), o += 12 + clen;
        off += 12 + (size_t)clen;
    }
    memcpy(out + o, buf + off, n - off); // trailing bytes, as they were
    *len = o + (n - off);
    return out;
}

// the stb_image formats (PNG, BMP, GIF, TGA, PSD, HDR) after the header checks of image_load_mem
static int stb_decode(Image *img, const uint8_t *buf, size_t len, const char *name, ImgFormat fmt, int64_t max_pixels) {
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(buf, (int)len, &w, &h, &comp))
        return glm_err("%s: not a decodable image (%s: %s)", name, format_name(fmt), stbi_failure_reason());
    if (w <= 0 || h <= 0) return glm_err("%s: not a decodable image (%s: size %d x %d)", name, format_name(fmt), w, h);
    int64_t npix = (int64_t)w * h;
    if (max_pixels > 0 && npix > max_pixels)
        return glm_err("%s: image is %d x %d = %lld pixels, above the limit of %lld (--max-image-pixels)", name, w, h,
                       (long long)npix, (long long)max_pixels);
    size_t nbytes;
    if (size_mul((size_t)npix, 3, &nbytes)) return glm_err("%s: image too large (%d x %d)", name, w, h);
    int orientation = exif_orientation(buf, len, fmt);

    int dw = 0, dh = 0, dc = 0;
    uint8_t *rgb = malloc(nbytes); // [h, w, 3]
    if (!rgb) return glm_err("%s: out of memory for a %d x %d image", name, w, h);
    if (stbi_is_16_bit_from_memory(buf, (int)len) && comp == 1) {
        // PIL mode I;16 -> convert("RGB") clamps each value to 255
        uint16_t *px = stbi_load_16_from_memory(buf, (int)len, &dw, &dh, &dc, 1);
        if (!px || dw != w || dh != h) {
            stbi_image_free(px);
            free(rgb);
            return glm_err("%s: not a decodable image (%s: %s)", name, format_name(fmt),
                           px ? "size changed while decoding" : stbi_failure_reason());
        }
        for (size_t i = 0; i < (size_t)npix; i++)
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = px[i] > 255 ? 255 : (uint8_t)px[i];
        stbi_image_free(px);
    } else {
        // 8 bits per channel in the file's own channel count (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; 16-bit: high byte)
        uint8_t *px = stbi_load_from_memory(buf, (int)len, &dw, &dh, &dc, 0);
        if (!px || dw != w || dh != h || dc < 1 || dc > 4) {
            stbi_image_free(px);
            free(rgb);
            return glm_err("%s: not a decodable image (%s: %s)", name, format_name(fmt),
                           px ? "inconsistent size while decoding" : stbi_failure_reason());
        }
        for (size_t i = 0; i < (size_t)npix; i++) {
            const uint8_t *s = px + i * dc;
            if (dc <= 2) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = s[0]; // L / LA: replicate, drop alpha
            else memcpy(rgb + 3 * i, s, 3);                                  // RGB / RGBA: drop alpha
        }
        stbi_image_free(px);
    }
    img->w = w;
    img->h = h;
    img->rgb = rgb;
    exif_transpose(img, orientation);
    return 0;
}

// read an image the user named (a file, or a pipe / FIFO read to its end: fileio.h read_input) and decode it
int image_load(Image *img, const char *path, int64_t max_pixels) {
    memset(img, 0, sizeof *img);
    size_t len;
    char *buf = read_input(path, &len, MAX_IMAGE_FILE_BYTES);
    if (!buf) return -1;
    int rc = image_load_mem(img, (const uint8_t *)buf, len, path, max_pixels);
    free(buf);
    return rc;
}

// read a frame found in a folder (a regular file only, never a blocking open: fileio.h read_file) and decode it
static int image_load_file(Image *img, const char *path, int64_t max_pixels) {
    memset(img, 0, sizeof *img);
    size_t len;
    char *buf = read_file(path, &len, MAX_IMAGE_FILE_BYTES);
    if (!buf) return -1;
    int rc = image_load_mem(img, (const uint8_t *)buf, len, path, max_pixels);
    free(buf);
    return rc;
}

void image_free(Image *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

// free frames[0..n) and the array
void images_free(Image *frames, int n) {
    if (!frames) return;
    for (int i = 0; i < n; i++) image_free(&frames[i]);
    free(frames);
}

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
static void patchify_frame(float *rows, const Image *fr, int tslot, const ProcConfig *pc, ResizeMode mode) {
    int ps = pc->patch_size, m = pc->merge_size, tp = pc->temporal_patch_size;
    int gh = fr->h / ps, gw = fr->w / ps, bh_n = gh / m, bw_n = gw / m;
    int ncols = 3 * tp * ps * ps;
    int t = tslot / tp, tt = tslot % tp;
    float sub[3], div[3];
    for (int c = 0; c < 3; c++) {
        if (mode != RESIZE_TORCH) {
            sub[c] = pc->image_mean[c];
            div[c] = pc->image_std[c];
        } else {
            // _fuse_mean_std_and_rescale_factor: torch.tensor(mean) * (1.0 / rescale_factor), fp32 tensor x scalar
            float s = (float)(1.0 / pc->rescale_factor);
            sub[c] = pc->image_mean[c] * s;
            div[c] = pc->image_std[c] * s;
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
                    float r8 = (float)((double)p[c] * pc->rescale_factor);
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
        patchify_frame(rows, &rs, (int)f, pc, mode);
        image_free(&rs);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// video: frame directories, frame sampling, ffmpeg decoding, timestamps

// a frame file name (by extension)
static int is_image_name(const char *n) {
    static const char *ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga",
                                ".psd", ".hdr", ".pnm", ".ppm", ".pgm"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (has_suffix_ci(n, ext[i])) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// every image file of dir in strcmp order (hidden files and other extensions skipped); all of one size
int video_load_dir(Image **frames, int *nframes, const char *dir, int64_t max_pixels) {
    *frames = NULL;
    *nframes = 0;
    DIR *d = opendir(dir);
    if (!d) return glm_err("%s: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !is_image_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, sizeof(char *) * cap);
            if (!names) glm_die(EXIT_INPUT, "out of memory");
        }
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    int rc = 0;
    Image *fr = NULL;
    if (n == 0) {
        rc = glm_err("%s: no image files (frames) in the directory", dir);
        goto done;
    }
    qsort(names, n, sizeof(char *), cmp_str);
    fr = xcalloc((size_t)n, sizeof(Image));
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = xmalloc(plen);
        snprintf(path, plen, "%s/%s", dir, names[i]);
        if (image_load_file(&fr[i], path, max_pixels)) {
            free(path);
            rc = -1;
            break;
        }
        if (i > 0 && (fr[i].w != fr[0].w || fr[i].h != fr[0].h)) {
            rc = glm_err("%s: frame is %d x %d but %s/%s is %d x %d (all frames must have one size)", path, fr[i].w,
                         fr[i].h, dir, names[0], fr[0].w, fr[0].h);
            free(path);
            break;
        }
        free(path);
        total += (uint64_t)fr[i].w * fr[i].h * 3;
        if (total > MAX_VIDEO_BYTES) {
            rc = glm_err("%s: the frames need more than %llu bytes of memory", dir,
                         (unsigned long long)MAX_VIDEO_BYTES);
            break;
        }
    }
    if (rc) {
        images_free(fr, n);
        fr = NULL;
    } else {
        *frames = fr;
        *nframes = n;
    }
done:
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

// numpy.linspace(start, stop, num, endpoint=True) then .astype(int) (or the float values when out_f)
static void np_linspace(double start, double stop, int num, int64_t *out_i, double *out_f) {
    int div = num - 1;
    double delta = stop - start;
    double step = div > 0 ? delta / div : 0.0;
    for (int i = 0; i < num; i++) {
        // y = arange(0, num) * step + start; y[-1] = stop
        double y = div > 0 ? (step == 0 ? (double)i / div * delta : i * step) + start : start;
        if (i == num - 1 && num > 1) y = stop;
        if (out_i) out_i[i] = (int64_t)y;
        if (out_f) out_f[i] = y;
    }
}

// sampled index list: drop repeats (keep order), duplicate the last one when the count is odd
static int dedupe_pad_even(int64_t *idx, int n) {
    int k = 0, sorted = 1;
    for (int i = 1; i < n && sorted; i++) sorted = idx[i - 1] <= idx[i];
    for (int i = 0; i < n; i++) {
        int seen = 0;
        if (sorted) seen = k > 0 && idx[k - 1] == idx[i]; // non-decreasing (every sampler): linear time
        else
            for (int j = 0; j < k && !seen; j++) seen = idx[j] == idx[i];
        if (!seen) idx[k++] = idx[i];
    }
    if (k & 1) {
        idx[k] = idx[k - 1];
        k++;
    }
    return k;
}

// Glm4vVideoProcessor.sample_frames(metadata, fps) / Glm46VVideoProcessor.sample_frames: frame indices to decode
int video_sample_frames(int **idx_out, int total_frames, double video_fps, double duration, const ProcConfig *pc) {
    *idx_out = NULL;
    if (total_frames <= 0) return glm_err("video has no frames");
    if (total_frames > (1 << 26)) return glm_err("video has too many frames (%d)", total_frames); // 26 days at 30 fps
    if (!(video_fps > 0) || !isfinite(video_fps)) return glm_err("video frame rate unknown (%g)", video_fps);
    int64_t max_frame_idx = total_frames - 1;
    // duration = metadata.duration or round(max_frame_idx / metadata.fps) + 1
    if (!(duration > 0) || !isfinite(duration)) duration = py_round(max_frame_idx / video_fps) + 1;
    int64_t *idx = NULL;
    int n = 0;
    if (!pc->glm46v) {
        // Glm4vVideoProcessor.sample_frames
        double requested_fps = pc->video_fps > 0 ? pc->video_fps : 2;
        double max_duration = pc->video_max_duration > 0 ? pc->video_max_duration : 300;
        if (duration <= max_duration) {
            // n = max(int(math.floor(duration * requested_fps)), 1)
            double nf = floor(duration * requested_fps);
            n = nf < 1 ? 1 : nf > 1e6 ? 1000000 : (int)nf;
            idx = xmalloc(sizeof(int64_t) * (n + 1));
            // frame_indices = [min(max_frame_idx, int(math.ceil(i * metadata.fps / requested_fps))) for i in range(n)]
            for (int i = 0; i < n; i++) {
                double v = ceil(i * video_fps / requested_fps);
                idx[i] = v > (double)max_frame_idx ? max_frame_idx : (int64_t)v;
            }
        } else {
            // num_samples = int(self.max_duration * requested_fps) (compared in double: it may not fit an int)
            double ns = floor(max_duration * requested_fps);
            int num_samples = ns >= total_frames ? total_frames : (int)ns;
            if (num_samples >= total_frames) {
                n = total_frames;
                idx = xmalloc(sizeof(int64_t) * (n + 1));
                for (int i = 0; i < n; i++) idx[i] = i;
            } else {
                // target_seconds = np.linspace(0, duration, num_samples, endpoint=True)
                n = num_samples < 0 ? 0 : num_samples;
                idx = xmalloc(sizeof(int64_t) * (n + 1));
                double *ts = xmalloc(sizeof(double) * (n + 1));
                np_linspace(0, duration, n, NULL, ts);
                // [min(max_frame_idx, int(math.ceil(t * metadata.fps))) for t in target_seconds]
                for (int i = 0; i < n; i++) {
                    double v = ceil(ts[i] * video_fps);
                    idx[i] = v > (double)max_frame_idx ? max_frame_idx : (int64_t)v;
                }
                free(ts);
            }
        }
    } else {
        // Glm46VVideoProcessor.sample_frames: dynamic fps
        double effective = duration < 2400 ? duration : 2400;
        double target_fps = effective <= 30 ? 3 : effective <= 300 ? 1 : 0.5;
        // extract_t = min(int(effective_duration * target_fps * self.temporal_patch_size), MAX_FRAME_COUNT_DYNAMIC)
        double et = effective * target_fps * pc->temporal_patch_size;
        int extract_t = et > 640 ? 640 : (int)et;
        double duration_per_frame = 1 / video_fps;
        int64_t max_second = (int64_t)duration;
        idx = xmalloc(sizeof(int64_t) * ((size_t)(extract_t > total_frames ? extract_t : total_frames) + 1));
        if (total_frames < extract_t) {
            np_linspace(0, total_frames - 1, extract_t, idx, NULL);
            n = extract_t;
        } else {
            double current_second = 0;
            double inv_fps = 1 / (pc->temporal_patch_size * target_fps);
            for (int64_t i = 0; i < total_frames; i++) {
                // timestamps[i] = i * duration_per_frame
                if (i * duration_per_frame >= current_second) {
                    current_second += inv_fps;
                    idx[n++] = i;
                    if (current_second >= max_second) break;
                }
            }
        }
        if (n < extract_t) {
            int64_t start = n ? idx[0] : 0, end = n ? idx[n - 1] : (total_frames - 1 > 0 ? total_frames - 1 : 0);
            np_linspace(start, end, extract_t, idx, NULL);
            n = extract_t;
        } else if (n > extract_t) {
            np_linspace(0, total_frames - 1, extract_t, idx, NULL);
            n = extract_t;
        }
    }
    n = dedupe_pad_even(idx, n);
    if (n == 0) {
        free(idx);
        return glm_err("video: no frames sampled (duration %g s)", duration);
    }
    int *out = xmalloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) out[i] = (int)idx[i];
    free(idx);
    *idx_out = out;
    return n;
}

// Glm4vProcessor.replace_video_token: timestamp text after each temporal patch (replace_frame_token_id)
int video_timestamps(char ***texts, int n_patches, const double *frame_times, int nframes, const ProcConfig *pc) {
    *texts = NULL;
    if (n_patches < 0) return glm_err("video_timestamps: bad patch count %d", n_patches);
    char **out = xcalloc((size_t)n_patches + 1, sizeof(char *));
    double last = 0;
    int have = 0;
    for (int f = 0; f < n_patches; f++) {
        // timestamps = metadata.timestamps[::2]; selected = timestamps[:num_frames]; pad by repeating the last (or 0)
        int64_t k = (int64_t)f * 2;
        double t;
        if (k < nframes) {
            t = frame_times[k];
            last = t;
            have = 1;
        } else {
            t = have ? last : 0;
        }
        char buf[64];
        if (pc->glm46v) snprintf(buf, sizeof buf, "%.1f seconds", t); // f"{timestamp_sec:.1f} seconds"
        else snprintf(buf, sizeof buf, "%lld", (long long)t);          // f"{int(timestamp_sec)}"
        out[f] = xstrdup(buf);
    }
    *texts = out;
    return 0;
}

// free video_timestamps' strings
void video_timestamps_free(char **texts, int n) {
    if (!texts) return;
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
}

// path of an executable found on $PATH (malloc'd) or NULL
static char *find_program(const char *prog) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t plen = len + strlen(prog) + 2;
        char *cand = xmalloc(plen);
        snprintf(cand, plen, "%.*s/%s", (int)len, len ? p : ".", prog);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) return cand;
        free(cand);
        p = e ? e + 1 : p + len;
    }
    return NULL;
}

// start argv[0] with stdout on a pipe (stdin and stderr on /dev/null); returns the read end or -1
static int spawn_reader(char *const argv[], pid_t *pid) {
    int fds[2];
    if (pipe(fds) != 0) return glm_err("pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    int rc = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return glm_err("cannot run %s: %s", argv[0], strerror(rc));
    }
    return fds[0];
}

// read exactly n bytes (fewer only at end of stream); returns bytes read or -1
static ssize_t read_full(int fd, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

// exit status of a child (128 + signal when killed)
static int wait_child(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

// "num/den" or a plain number
static double parse_rate(const char *s) {
    char *end;
    double a = strtod(s, &end);
    if (*end == '/') {
        double b = strtod(end + 1, NULL);
        return b != 0 ? a / b : 0;
    }
    return a;
}

// read_video_torchcodec + sample_frames with the ffmpeg / ffprobe programs (frames in presentation order, rgb24;
// rotation metadata is not applied)
int video_load_file(Image **frames, int *nframes, double **frame_times, const char *path, const ProcConfig *pc,
                    int64_t max_pixels) {
    *frames = NULL;
    *nframes = 0;
    *frame_times = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return glm_err("%s: %s", path, strerror(errno));
    // ffprobe reads the file, then ffmpeg reads it again: a pipe gives its bytes once, so it is refused (save it first)
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))
        return glm_err("%s: a pipe or device: a video file is read twice (ffprobe, then ffmpeg); save it to a file or "
                       "pass a folder of frames", path);
    if (!S_ISREG(st.st_mode)) return glm_err("%s: not a regular file", path);
    char *ffmpeg = find_program("ffmpeg"), *ffprobe = find_program("ffprobe");
    if (!ffmpeg || !ffprobe) {
        free(ffmpeg);
        free(ffprobe);
        return glm_err("ffmpeg not found: install ffmpeg to read video files, or pass a directory of frames");
    }
    int rc = -1;
    Image *fr = NULL;
    int *idx = NULL;
    int nidx = 0;
    uint8_t *buf = NULL;
    // metadata (torchcodec VideoDecoder(seek_mode="exact"): num_frames from a scan, average_fps = frames / duration)
    char *probe_argv[] = {ffprobe, "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                          "stream=width,height,avg_frame_rate,duration,nb_read_packets:format=duration", "-of",
                          "default=noprint_wrappers=1", (char *)path, NULL};
    pid_t pid;
    int fd = spawn_reader(probe_argv, &pid);
    if (fd < 0) goto done;
    char text[4096];
    ssize_t tn = read_full(fd, (uint8_t *)text, sizeof text - 1);
    close(fd);
    int status = wait_child(pid);
    if (tn < 0 || status != 0) {
        glm_err("%s: ffprobe cannot read the video (exit status %d)", path, status);
        goto done;
    }
    text[tn] = 0;
    int w = 0, h = 0;
    long long total = 0;
    double avg_fps = 0, sdur = 0, fdur = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        const char *v = eq + 1;
        if (!strcmp(line, "width")) w = atoi(v);
        else if (!strcmp(line, "height")) h = atoi(v);
        else if (!strcmp(line, "avg_frame_rate")) avg_fps = parse_rate(v);
        else if (!strcmp(line, "nb_read_packets")) total = atoll(v);
        else if (!strcmp(line, "duration") && strcmp(v, "N/A")) {
            if (sdur == 0) sdur = atof(v); // stream entry comes first, then format
            else fdur = atof(v);
        }
    }
    double duration = sdur > 0 ? sdur : fdur;
    if (w <= 0 || h <= 0 || total <= 0) {
        glm_err("%s: no decodable video stream (%d x %d, %lld frames)", path, w, h, total);
        goto done;
    }
    if (total > INT_MAX / 2) {
        glm_err("%s: too many frames (%lld)", path, total);
        goto done;
    }
    if (max_pixels > 0 && (int64_t)w * h > max_pixels) {
        glm_err("%s: video frames are %d x %d = %lld pixels, above the limit of %lld (--max-image-pixels)", path, w, h,
                (long long)w * h, (long long)max_pixels);
        goto done;
    }
    double fps = duration > 0 ? (double)total / duration : avg_fps;
    nidx = video_sample_frames(&idx, (int)total, fps, duration, pc);
    if (nidx < 0) goto done;
    size_t frame_bytes = (size_t)w * h * 3; // w, h < 2^31
    if (frame_bytes > MAX_VIDEO_BYTES / (uint64_t)nidx) {
        glm_err("%s: %d sampled frames of %d x %d need too much memory", path, nidx, w, h);
        goto done;
    }
    // decode every frame in presentation order as raw RGB, keep the sampled ones
    char *dec_argv[] = {ffmpeg, "-nostdin", "-v", "error", "-noautorotate", "-i", (char *)path, "-map", "0:v:0",
                        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-", NULL};
    fd = spawn_reader(dec_argv, &pid);
    if (fd < 0) goto done;
    fr = xcalloc((size_t)nidx, sizeof(Image));
    buf = xmalloc(frame_bytes);
    int next = 0;      // next sampled slot to fill
    int decoded = 0;   // frames read so far
    int have_last = 0; // buf holds the last decoded frame
    while (next < nidx) {
        ssize_t r = read_full(fd, buf, frame_bytes);
        if (r != (ssize_t)frame_bytes) break;
        have_last = 1;
        while (next < nidx && idx[next] == decoded) {
            fr[next].w = w;
            fr[next].h = h;
            fr[next].rgb = xmalloc(frame_bytes);
            memcpy(fr[next].rgb, buf, frame_bytes);
            next++;
        }
        decoded++;
    }
    close(fd); // ffmpeg gets SIGPIPE if it still writes
    status = wait_child(pid);
    if (next < nidx) {
        // fewer frames than counted: the remaining indices take the last decoded frame
        if (!have_last || status != 0) {
            glm_err("%s: ffmpeg could not decode the video (exit status %d, %d frames)", path, status, decoded);
            goto done;
        }
        for (; next < nidx; next++) {
            fr[next].w = w;
            fr[next].h = h;
            fr[next].rgb = xmalloc(frame_bytes);
            memcpy(fr[next].rgb, buf, frame_bytes);
        }
    }
    // metadata.timestamps = [frame_idx / fps for frame_idx in frames_indices]
    double *times = xmalloc(sizeof(double) * nidx);
    for (int i = 0; i < nidx; i++) times[i] = idx[i] / fps;
    *frames = fr;
    *nframes = nidx;
    *frame_times = times;
    fr = NULL;
    rc = 0;
done:
    if (fr) images_free(fr, nidx);
    free(buf);
    free(idx);
    free(ffmpeg);
    free(ffprobe);
    return rc;
}
