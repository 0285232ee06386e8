// SPDX-License-Identifier: MIT
// image.c - image decoding: files and bytes to RGB, as transformers' load_image + PIL do it (EXIF orientation,
// convert("RGB")).
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

// PNG encoding (image_encode_png): stb_image_write's PNG writer, its deflate replaced by zlib's (faster, smaller)
#include <zlib.h>
static unsigned char *png_deflate(unsigned char *data, int data_len, int *out_len, int quality);
#define STBIW_ZLIB_COMPRESS png_deflate
#define STB_IMAGE_WRITE_STATIC // private copy
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "image.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jpeglib.h> // after <stdio.h> (preprocess.h)
#include <limits.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>


#define MAX_IMAGE_FILE_BYTES ((size_t)1 << 30) // stb_image takes an int length

// ----------------------------------------------------------------------------

// image decoding

typedef enum { FMT_UNKNOWN, FMT_PNG, FMT_JPEG, FMT_BMP, FMT_GIF, FMT_TGA, FMT_PSD, FMT_HDR, FMT_PNM } ImgFormat;

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

int image_load_file(Image *img, const char *path, int64_t max_pixels) {
    memset(img, 0, sizeof *img);
    size_t len;
    char *buf = read_file(path, &len, MAX_IMAGE_FILE_BYTES);
    if (!buf) return -1;
    int rc = image_load_mem(img, (const uint8_t *)buf, len, path, max_pixels);
    free(buf);
    return rc;
}

// ---------------------------------------------------------------------------- PNG encoding

// stb_image_write's compressor hook: a zlib stream (level 6) of data, malloc'd (stb frees it with STBIW_FREE = free)
static unsigned char *png_deflate(unsigned char *data, int data_len, int *out_len, int quality) {
    (void)quality;
    uLongf n = compressBound((uLong)data_len);
    unsigned char *out = malloc(n);
    if (!out || compress2(out, &n, data, (uLong)data_len, 6) != Z_OK || n > INT_MAX) {
        free(out);
        return NULL;
    }
    *out_len = (int)n;
    return out;
}

// stbi_write_func: append to a growing buffer (ctx = PngBuf), remember failures
typedef struct {
    uint8_t *p;        // bytes written so far
    size_t n, cap;     // used / allocated
    int failed;        // 1: out of memory
} PngBuf;

static void png_buf_write(void *ctx, void *data, int size) {
    PngBuf *b = ctx;
    if (b->failed || size <= 0) return;
    if (b->n + (size_t)size > b->cap) {
        size_t c = b->cap ? b->cap : 65536;
        while (c < b->n + (size_t)size) c *= 2;
        uint8_t *np = realloc(b->p, c);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np, b->cap = c;
    }
    memcpy(b->p + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

int image_encode_png(const Image *img, uint8_t **out, size_t *len) {
    *out = NULL, *len = 0;
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return glm_err("no image to encode");
    if (img->w > INT_MAX / 3 || (int64_t)img->w * 3 * img->h > INT_MAX)
        return glm_err("image of %d x %d pixels too large for PNG encoding", img->w, img->h);
    PngBuf b = {0};
    int ok = stbi_write_png_to_func(png_buf_write, &b, img->w, img->h, 3, img->rgb, img->w * 3);
    if (!ok || b.failed) {
        free(b.p);
        return glm_err(b.failed ? "out of memory (PNG)" : "PNG encoding failed");
    }
    *out = b.p, *len = b.n;
    return 0;
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

