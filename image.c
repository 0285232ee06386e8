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
//   BMP (not RLE: refused; palettes and 16-bit values read as PIL reads them: bmp_prepare), GIF (first frame), TGA,
//   PSD (composited image), HDR (Radiance .hdr)
//   and here: PNM, binary P5 .pgm / P6 .ppm, any maxval (decoded the way PIL's PpmImagePlugin does)
// Conversion to RGB follows transformers' load_image (PIL.ImageOps.exif_transpose, then Image.convert("RGB")):
//   gray is replicated, alpha is dropped (not blended), palettes are looked up (an index past the palette is black),
//   16-bit samples keep their high byte, except 16-bit single-channel images (PIL mode I;16), whose values PIL clamps
//   to 255 (min(v, 255)); CMYK goes through PIL's cmyk2rgb. A JPEG that ends before its last scanline is refused, as
//   PIL does ("image file is truncated"), and so is a GIF whose first frame's data is cut short; libjpeg's warnings
//   about corrupt data are ignored, as PIL ignores them. A GIF's first frame is composed as PIL composes it (pixels
//   outside the frame take the canvas index: the transparent one, else 0).
// Then what transformers' processor (>= 5.24) does before resizing: its convert_to_rgb composites onto white whatever
//   PIL still calls transparent after load_image's convert("RGB"): not alpha channels (dropped by convert("RGB")), but
//   colour keys (a PNG tRNS colour, a palette PNG's one transparent index, a GIF's transparent index), whose colour
//   becomes white wherever it occurs (png_white_key, gif_prepare). Not for video frames (image_load_file):
//   Glm4vVideoProcessor converts them as arrays, with no PIL transparency left to composite.
// Known difference from PIL: HDR (which PIL cannot read) is tone-mapped as stb_image does (gamma 1/2.2, clamped to
//   [0, 1], x255 rounded).
// Note: transformers >= 5.24 also composites alpha onto white in convert_to_rgb when it is handed an RGBA PIL image
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
#include <math.h>
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

// Orientation (0x0112) in IFD0 of a TIFF-structured EXIF block, as PIL's Exif reads it and exif_transpose looks it up:
// ImageFileDirectory_v2 unpacks the tag by its own type (SHORT, LONG, IFD, SSHORT, SLONG, SBYTE: integers; RATIONAL,
// SRATIONAL: IFDRational, equal to an int when exact; FLOAT, DOUBLE: floats; BYTE, UNDEFINED: bytes; ASCII: a str),
// keeps the first of several values (Orientation has length 1), and {2: FLIP_LEFT_RIGHT, ...}.get(value) transposes
// for a value equal to 2..8 (6.0 and 6/1 included). Returns 1..8, 0 when the tag is absent (or has no value), -1 when
// it is present with any other value (PIL then neither transposes nor reads the XMP packet).
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
        if (rd16(t + e, be) != 0x0112) continue;
        // TiffTags type sizes: 1 BYTE, 2 ASCII, 3 SHORT, 4 LONG, 5 RATIONAL, 6 SBYTE, 7 UNDEFINED, 8 SSHORT, 9 SLONG,
        // 10 SRATIONAL, 11 FLOAT, 12 DOUBLE, 13 IFD (read as LONG)
        static const uint8_t size[14] = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4};
        uint32_t type = rd16(t + e + 2, be), cnt = rd32(t + e + 4, be);
        if (type == 0 || type > 13) return 0; // an unknown type: PIL skips the tag
        if (cnt == 0) return 0;
        uint64_t bytes = (uint64_t)cnt * size[type];
        size_t at = e + 8; // the value, in the entry when it fits in 4 bytes, else at an offset from the TIFF header
        if (bytes > 4) {
            uint32_t off = rd32(t + e + 8, be);
            if (off > n || n - off < bytes) return 0; // "Possibly corrupt EXIF data": PIL skips the tag
            at = off;
        }
        const uint8_t *v = t + at;
        long long iv;
        double dv;
        switch (type) {
        case 3: iv = rd16(v, be); break;
        case 8: iv = (int16_t)rd16(v, be); break;
        case 4: case 13: iv = rd32(v, be); break;
        case 9: iv = (int32_t)rd32(v, be); break;
        case 6: iv = (int8_t)v[0]; break;
        case 5: case 10: { // IFDRational(num, den) == k when the fraction is exactly k
            long long num = type == 5 ? (long long)rd32(v, be) : (long long)(int32_t)rd32(v, be);
            long long den = type == 5 ? (long long)rd32(v + 4, be) : (long long)(int32_t)rd32(v + 4, be);
            if (den == 0 || num % den) return -1;
            iv = num / den;
            break;
        }
        case 11: case 12: { // a float equal to an integer
            if (type == 11) {
                uint32_t u = rd32(v, be);
                float f;
                memcpy(&f, &u, 4);
                dv = f;
            } else {
                uint64_t u = (uint64_t)rd32(v + (be ? 0 : 4), be) << 32 | rd32(v + (be ? 4 : 0), be);
                memcpy(&dv, &u, 8);
            }
            if (!(dv >= 1 && dv <= 8) || dv != floor(dv)) return -1;
            iv = (long long)dv;
            break;
        }
        default: return -1; // BYTE / UNDEFINED (bytes), ASCII (str): never equal to 2..8
        }
        return iv >= 1 && iv <= 8 ? (int)iv : -1;
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

// PngImagePlugin._safe_zlib_decompress: a zlib stream of at most MAX_TEXT_CHUNK (1 MiB) bytes, malloc'd; NULL when
// it is not one, or is longer (PIL raises then; the text is not read here)
static uint8_t *png_inflate(const uint8_t *z, size_t n, size_t *outn) {
    const size_t cap = (size_t)1 << 20;
    uint8_t *out = malloc(cap + 1);
    if (!out) return NULL;
    z_stream st;
    memset(&st, 0, sizeof st);
    if (inflateInit(&st) != Z_OK) return free(out), NULL;
    st.next_in = (Bytef *)z, st.avail_in = n > UINT_MAX ? UINT_MAX : (uInt)n;
    st.next_out = out, st.avail_out = (uInt)cap + 1;
    int rc = inflate(&st, Z_FINISH);
    size_t got = cap + 1 - st.avail_out;
    inflateEnd(&st);
    if ((rc != Z_STREAM_END && rc != Z_BUF_ERROR) || got > cap) return free(out), NULL;
    *outn = got;
    return out;
}

// the text of "Raw profile type exif" (ImageMagick's PNG EXIF) as Image.getexif reads it:
// bytes.fromhex("".join(text.split("\n")[3:])): hex pairs, ASCII whitespace between them; NULL when not that
static uint8_t *raw_profile_bytes(const uint8_t *t, size_t n, size_t *outn) {
    size_t p = 0;
    for (int line = 0; line < 3; line++) { // the first three lines ("", "exif", the length) are skipped
        while (p < n && t[p] != '\n') p++;
        if (p == n) return NULL; // fewer lines: "".join([]) = "", no EXIF
        p++;
    }
    uint8_t *out = malloc((n - p) / 2 + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (;;) {
        // fromhex() skips ASCII whitespace between pairs; the "\n" separators are gone with the join
        while (p < n && (t[p] == ' ' || (t[p] >= '\t' && t[p] <= '\r'))) p++;
        if (p == n) break;
        int hi = t[p] >= '0' && t[p] <= '9' ? t[p] - '0' : (t[p] | 32) >= 'a' && (t[p] | 32) <= 'f' ? (t[p] | 32) - 'a' + 10 : -1;
        size_t q = p + 1;
        while (q < n && t[q] == '\n') q++; // a line break inside a pair is joined away
        int lo = q < n ? (t[q] >= '0' && t[q] <= '9' ? t[q] - '0'
                          : (t[q] | 32) >= 'a' && (t[q] | 32) <= 'f' ? (t[q] | 32) - 'a' + 10 : -1) : -1;
        if (hi < 0 || lo < 0) return free(out), NULL; // PIL raises ValueError: not read here
        out[k++] = (uint8_t)(hi << 4 | lo);
        p = q + 1;
    }
    *outn = k;
    return out;
}

// Exif.load: any number of leading b"Exif\x00\x00" stripped, then the TIFF structure
static int exif_block_orientation(const uint8_t *d, size_t n) {
    while (n >= 6 && memcmp(d, "Exif\0\0", 6) == 0) d += 6, n -= 6;
    return exif_orientation_tiff(d, n);
}

// PIL Image.getexif()[Orientation] for a JPEG (first APP1 "Exif\0\0") or PNG, falling back to the XMP packet (JPEG
// APP1 "http://ns.adobe.com/xap/1.0/": the last one) when EXIF has none. A PNG's EXIF is info["exif"] (the last eXIf
// chunk or tEXt chunk keyed "exif"), else info["Raw profile type exif"] (tEXt / zTXt / iTXt text in hex, as ImageMagick
// writes it); its XMP is info["XML:com.adobe.xmp"] (a tEXt / zTXt / iTXt text), else info["xmp"] (the last iTXt of
// that key, also when its text is not UTF-8). Every chunk counts, before and after the image data (exif_transpose
// loads the image, which reads the chunks after IDAT), the last of a key winning as in PIL's info dict.
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
                exif = exif_block_orientation(seg, slen);
                have_exif = 1;
            } else if (marker == 0xE1 && slen >= sizeof xmp_id && memcmp(seg, xmp_id, sizeof xmp_id) == 0) {
                xmp = xmp_orientation(seg + sizeof xmp_id, slen - sizeof xmp_id); // the last XMP packet counts
            }
            p += 2 + len;
        }
        return exif != 0 ? exif : xmp;
    }
    if (fmt != FMT_PNG) return 0;
    static const char k_xmp[] = "XML:com.adobe.xmp", k_raw[] = "Raw profile type exif";
    // the values PIL's info would hold: [0] "exif", [1] "Raw profile type exif", [2] "XML:com.adobe.xmp", [3] "xmp";
    // a decompressed value is owned by its slot (owned[k], freed when the key is set again)
    const uint8_t *val[4] = {0};
    size_t vlen[4] = {0};
    uint8_t *owned[4] = {0};
    size_t text_bytes = 0; // decompressed so far: PIL's MAX_TEXT_MEMORY (64 MiB) bounds it ("Too much memory used")
    for (size_t p = 8; p + 12 <= n;) {
        size_t len = rd32(b + p, 1);
        if (len > n - p - 12) break;
        const uint8_t *d = b + p + 8, *type = b + p + 4;
        const uint8_t *nul = memchr(d, 0, len);
        size_t klen = nul ? (size_t)(nul - d) : len;
        int isxmp = klen == sizeof k_xmp - 1 && !memcmp(d, k_xmp, klen);
        int israw = klen == sizeof k_raw - 1 && !memcmp(d, k_raw, klen);
        int key = -1, z = 0; // the slot this chunk sets; z: its text is a zlib stream
        const uint8_t *v = NULL;
        size_t vn = 0;
        if (!memcmp(type, "eXIf", 4)) {
            key = 0, v = d, vn = len;
        } else if (!memcmp(type, "tEXt", 4) || !memcmp(type, "zTXt", 4)) {
            z = type[0] == 'z';
            v = nul ? nul + 1 : d + len, vn = nul ? len - klen - 1 : 0;
            key = israw ? 1 : isxmp ? 2 : !z && klen == 4 && !memcmp(d, "exif", 4) ? 0 : -1; // tEXt "exif": bytes
            if (key >= 0 && z) { // method byte 0, then the stream (PIL raises SyntaxError for another method)
                if (vn == 0 || v[0] != 0) key = -1;
                else v++, vn--;
            }
        } else if (!memcmp(type, "iTXt", 4) && nul && len - klen - 1 >= 2 && (isxmp || israw)) {
            // keyword \0 flag method lang \0 tkey \0 text (flag 1 + method 0: a zlib stream; another method: skipped)
            const uint8_t *r = nul + 1, *end = d + len;
            const uint8_t *lang = r + 2, *l0 = memchr(lang, 0, (size_t)(end - lang));
            const uint8_t *tk = l0 ? l0 + 1 : NULL, *t0 = tk ? memchr(tk, 0, (size_t)(end - tk)) : NULL;
            if (t0 && (r[0] == 0 || r[1] == 0)) {
                z = r[0] != 0, v = t0 + 1, vn = (size_t)(end - v);
                // info["xmp"] = v before the text is decoded; info[key] only when lang, tkey and text are UTF-8
                key = utf8_valid(lang, (size_t)(l0 - lang)) && utf8_valid(tk, (size_t)(t0 - tk)) ? (isxmp ? 2 : 1) : -1;
                if (isxmp && key < 0) key = 3;
            }
        }
        uint8_t *dec = NULL;
        if (key >= 0 && z) {
            size_t dn = 0;
            dec = text_bytes < ((size_t)64 << 20) ? png_inflate(v, vn, &dn) : NULL;
            if (dec) text_bytes += dn;
            // zTXt: a broken stream reads as b""; iTXt: nothing is set
            if (!dec && type[0] == 'i') key = -1;
            v = dec ? dec : (const uint8_t *)"", vn = dec ? dn : 0;
        }
        if (key >= 0 && type[0] == 'i' && key != 3 && !utf8_valid(v, vn)) key = isxmp ? 3 : -1;
        if (key >= 0) {
            // an iTXt XMP text sets info["xmp"] too (its own copy when decompressed)
            if (type[0] == 'i' && isxmp && key == 2) {
                free(owned[3]), owned[3] = NULL;
                val[3] = v, vlen[3] = vn;
                if (dec && (owned[3] = malloc(vn ? vn : 1))) memcpy(owned[3], dec, vn), val[3] = owned[3];
                else if (dec) val[3] = NULL;
            }
            free(owned[key]);
            owned[key] = dec, dec = NULL;
            val[key] = v, vlen[key] = vn;
        }
        free(dec);
        if (!memcmp(type, "IEND", 4)) break;
        p += 12 + len;
    }
    if (val[0]) {
        exif = exif_block_orientation(val[0], vlen[0]);
    } else if (val[1]) {
        size_t rn;
        uint8_t *raw = raw_profile_bytes(val[1], vlen[1], &rn);
        if (raw) exif = exif_block_orientation(raw, rn);
        free(raw);
    }
    if (exif == 0) {
        if (val[2]) xmp = xmp_orientation(val[2], vlen[2]);
        else if (val[3]) xmp = xmp_orientation(val[3], vlen[3]);
    }
    for (int i = 0; i < 4; i++) free(owned[i]);
    return exif != 0 ? exif : xmp;
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

// what transformers' processor makes of a decoded image beyond PIL's pixels (see png_white_key, gif_prepare)
typedef struct {
    int white;         // 1: every pixel of colour `key` becomes (255, 255, 255)
    uint8_t key[3];    // the colour PIL's "transparency" entry names after load_image's convert("RGB")
    int fill;          // GIF: 1: pixels the first frame does not draw (stb's alpha 0) take colour `canvas`
    uint8_t canvas[3]; // PIL's colour for them (the canvas index: the transparent one, else 0)
    uint8_t bits16[3]; // 16-bit BMP: bits of R, G, B (5 5 5 or 5 6 5), else 0: values scaled as PIL scales them
    int flip_h;        // TGA: 1: the rows run right to left (PIL flips them; stb_image does not)
    int orientation;   // EXIF orientation, read from the file as given (a rewritten copy may lack those chunks)
} PilExtra;

static uint8_t *png_prepare(const uint8_t *buf, size_t *len);
static void png_white_key(const uint8_t *b, size_t n, PilExtra *x);
static uint8_t *gif_prepare(const uint8_t *b, size_t *len, PilExtra *x, const char *name, int *failed);
static uint8_t *bmp_prepare(const uint8_t *b, size_t *len, PilExtra *x, const char *name, int *failed);
static uint8_t *tga_prepare(const uint8_t *b, size_t *len, PilExtra *x);
static int stb_decode(Image *img, const uint8_t *buf, size_t len, const char *name, ImgFormat fmt, int64_t max_pixels,
                      const PilExtra *x);

// decode an image held in memory into RGB (transformers load_image semantics, see the top of this file); frame: a video
// frame, which Glm4vVideoProcessor converts as an array (no PIL transparency left for its convert_to_rgb to whiten)
static int decode_mem(Image *img, const uint8_t *buf, size_t len, const char *name, int64_t max_pixels, int frame) {
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
    PilExtra x = {0};
    x.orientation = exif_orientation(buf, len, fmt);
    uint8_t *fixed = NULL; // a rewritten copy for stb_image (png_prepare, gif_prepare, bmp_prepare, tga_prepare)
    if (fmt == FMT_PNG) {
        png_white_key(buf, len, &x);
        if ((fixed = png_prepare(buf, &len))) buf = fixed;
    } else if (fmt == FMT_GIF || fmt == FMT_BMP) {
        int failed = 0;
        fixed = fmt == FMT_GIF ? gif_prepare(buf, &len, &x, name, &failed) : bmp_prepare(buf, &len, &x, name, &failed);
        if (fixed) buf = fixed;
        else if (failed) return -1;
    } else if (fmt == FMT_TGA && (fixed = tga_prepare(buf, &len, &x))) {
        buf = fixed;
    }
    if (frame) x.white = 0;
    int rc = stb_decode(img, buf, len, name, fmt, max_pixels, &x);
    free(fixed);
    return rc;
}

int image_load_mem(Image *img, const uint8_t *buf, size_t len, const char *name, int64_t max_pixels) {
    return decode_mem(img, buf, len, name, max_pixels, 0);
}

// the bytes of a PNG chunk's length / a big-endian 32-bit value
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

// A copy of a PNG for stb_image 2.27 holding what PIL decodes, NULL when the file itself is that already:
// IHDR, the last PLTE and tRNS before the image data, the first run of IDAT chunks (PngImageFile.load_read stops at the
// first other chunk) and IEND. PIL skips every other chunk, unknown critical ones included, and what follows the IDAT
// run is read only for its text (a missing or cut IEND, junk after the data: the image decodes); stb would refuse those
// ("unknown PNG chunk type"). Also:
// - zero-length IDAT chunks dropped: stbi__parse_png_file copies one that comes first through a NULL buffer
//   (memcpy(NULL, p, 0): undefined behaviour, contained here rather than patched); they carry no data.
// - a palette image's PLTE of fewer than 256 entries padded with black: stb keeps the palette in an uninitialised
//   stack array, so an index past the PLTE read whatever was there; PIL gives such pixels (0, 0, 0).
// A file whose chunks cannot be followed up to its image data is left to stb to judge (NULL).
static uint8_t *png_prepare(const uint8_t *buf, size_t *len) {
    size_t n = *len;
    if (n < 8 + 25 || be32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4)) return NULL;
    const int palette = buf[25] == 3;
    size_t plte = 0, trns = 0, idat0 = 0, idat1 = 0; // chunk offsets (0: none); [idat0, idat1): the IDAT run
    size_t nidat = 0, off = 8 + 25;
    int needs = 0, in_run = 0, clean_end = 0;
    while (off + 8 <= n) {
        uint32_t clen = be32(buf + off);
        const uint8_t *type = buf + off + 4;
        if (off + 12 > n || clen > n - off - 12) { // cut short: what came before is all there is
            // (an empty IDAT cut in its CRC would still reach stb's NULL copy: it is dropped as any empty one)
            if (clen == 0 && !memcmp(type, "IDAT", 4) && (!idat1 || in_run)) idat0 = idat0 ? idat0 : off, idat1 = off, needs = 1;
            break;
        }
        size_t next = off + 12 + (size_t)clen;
        if (!memcmp(type, "IDAT", 4)) {
            if (idat1 && !in_run) { needs = 1; break; } // a second run: PIL never reads it
            if (!in_run) idat0 = off, in_run = 1;
            idat1 = next;
            if (clen) nidat += 12 + clen;
            else needs = 1;
        } else {
            if (in_run) in_run = 0;
            if (!memcmp(type, "IEND", 4)) {
                clean_end = idat1 != 0;
                break;
            }
            if (!idat1 && !memcmp(type, "PLTE", 4)) plte = off;
            else if (!idat1 && !memcmp(type, "tRNS", 4)) trns = off;
            else if (!(type[0] & 0x20)) needs = 1; // another critical chunk (or PLTE / tRNS after the data): stb stops
        }
        off = next;
    }
    if (!idat1) return NULL; // no image data found: stb judges the file
    if (!clean_end) needs = 1;
    uint32_t pl = plte ? be32(buf + plte) : 0;
    int pad = palette && plte && pl % 3 == 0 && pl < 768;
    if (!needs && !pad) return NULL;
    size_t outn = 8 + 25 + (plte ? 12 + (pad ? 768 : pl) : 0) + (trns ? 12 + (size_t)be32(buf + trns) : 0) + nidat + 12;
    uint8_t *out = malloc(outn);
    if (!out) return NULL;
    size_t o = 8 + 25;
    memcpy(out, buf, o); // signature, IHDR
    if (plte && pad) { // the same chunk with 256 entries (the CRC is recomputed, though stb does not check it)
        out[o] = 0, out[o + 1] = 0, out[o + 2] = 768 >> 8, out[o + 3] = 768 & 255;
        memcpy(out + o + 4, buf + plte + 4, 4 + (size_t)pl);
        memset(out + o + 8 + pl, 0, 768 - pl);
        uint32_t c = (uint32_t)crc32(0L, out + o + 4, 4 + 768);
        out[o + 772] = (uint8_t)(c >> 24), out[o + 773] = (uint8_t)(c >> 16), out[o + 774] = (uint8_t)(c >> 8);
        out[o + 775] = (uint8_t)c;
        o += 12 + 768;
    } else if (plte) {
        memcpy(out + o, buf + plte, 12 + (size_t)pl), o += 12 + pl;
    }
    if (trns) memcpy(out + o, buf + trns, 12 + (size_t)be32(buf + trns)), o += 12 + be32(buf + trns);
    for (size_t c = idat0; c < idat1;) { // the run's non-empty IDAT chunks
        uint32_t clen = be32(buf + c);
        if (clen) memcpy(out + o, buf + c, 12 + (size_t)clen), o += 12 + clen;
        c += 12 + (size_t)clen;
    }
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    memcpy(out + o, iend, 12), o += 12;
    *len = o;
    return out;
}

// PIL keeps a colour-key transparency as its "transparency" entry (PngImagePlugin.chunk_tRNS), load_image's
// convert("RGB") keeps it as a colour, and transformers' processor (>= 5.24) turns every pixel of that colour white:
//   image_transforms.convert_to_rgb: has_alpha = "A" in image.getbands() or image.info.get("transparency") is not None
//       image = image.convert("RGBA"); alpha_composite(white, image).convert("RGB")
// so the colour is PIL's: Image.convert("RGB") makes it (t, t, t) from mode L (putpixel clips t to 255), keeps it a
// tuple from RGB (the tRNS's 16-bit values) and an int from modes 1 / I;16, and convert("RGBA")'s
// convert_transparent reads an int t as (t, 0, 0) and compares each value & 0xff (Convert.c rgbT2rgba). A palette
// image has one only when tRNS is one 0 among 255s (_simple_palette, b"^\xff*\x00\xff*$": `$` also matches before a
// final b"\n"): the colour of that index (an index past the PLTE is black); any other tRNS is dropped by
// convert("RGB") ("Palette images with Transparency expressed in bytes"). Alpha channels (LA, RGBA) are dropped by
// convert("RGB") and never whitened. Only chunks before the first IDAT count, the last tRNS winning.
static void png_white_key(const uint8_t *b, size_t n, PilExtra *x) {
    if (n < 33 || be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4)) return;
    int depth = b[24], ctype = b[25];
    const uint8_t *plte = NULL, *trns = NULL;
    size_t nplte = 0, ntrns = 0;
    for (size_t off = 8; off + 12 <= n;) {
        uint32_t clen = be32(b + off);
        if (clen > n - off - 12 || memcmp(b + off + 4, "IDAT", 4) == 0) break;
        if (memcmp(b + off + 4, "PLTE", 4) == 0) plte = b + off + 8, nplte = clen;
        if (memcmp(b + off + 4, "tRNS", 4) == 0) trns = b + off + 8, ntrns = clen;
        off += 12 + (size_t)clen;
    }
    if (!trns) return;
    unsigned t = ntrns >= 2 ? (unsigned)trns[0] << 8 | trns[1] : 0;
    if (ctype == 0 && ntrns >= 2) {
        x->white = 1;
        if (depth == 1) x->key[0] = t ? 255 : 0;           // mode "1": 255 if i16(s) else 0; read as (t, 0, 0)
        else if (depth == 16) x->key[0] = (uint8_t)t;       // mode "I;16": an int, (t & 0xff, 0, 0)
        else x->key[0] = x->key[1] = x->key[2] = t > 255 ? 255 : (uint8_t)t; // mode "L": (clip8(t),) * 3
    } else if (ctype == 2 && ntrns >= 6) {
        // (i16(s), i16(s, 2), i16(s, 4)), each compared & 0xff
        x->white = 1;
        for (int c = 0; c < 3; c++) x->key[c] = trns[2 * c + 1];
    } else if (ctype == 3) {
        size_t m = ntrns > 0 && trns[ntrns - 1] == '\n' ? ntrns - 1 : ntrns, k = 0, zero = m;
        while (k < m && trns[k] == 0xFF) k++;
        if (k < m && trns[k] == 0) zero = k++;
        while (k < m && trns[k] == 0xFF) k++;
        if (zero == m || k != m) return; // not one 0 among 255s: bytes, dropped by convert("RGB")
        x->white = 1;
        if (plte && zero < nplte / 3) memcpy(x->key, plte + 3 * zero, 3); // else black
    }
}

// GIF: PIL's GifImagePlugin, first frame (mode P with the frame's palette, or L when that palette is the identity
// grey ramp or absent: _is_palette_needed), handed to stb_image as a copy that stb decodes to PIL's pixels:
// - the graphic control extensions' transparency flags cleared (stb leaves transparent pixels undrawn; PIL keeps their
//   index, whose colour then goes white through the processor: see png_white_key),
// - the background index set to 0 (stb paints undrawn pixels with it; PIL's canvas is the transparent index when
//   there is one, else index 0: x->canvas, painted by stb_decode),
// - the colour tables padded to 256 entries (black, or the grey ramp in mode L: PIL reads an index past the table
//   as black, in mode L as its own value; stb's entries past a table would be undrawn).
// NULL (and *failed = 0) when the file is not laid out as this expects (stb judges it); NULL and *failed = 1 (with
// glm_err) when the first frame's data is cut inside a sub-block, which PIL refuses ("image file is truncated").
static uint8_t *gif_prepare(const uint8_t *b, size_t *len, PilExtra *x, const char *name, int *failed) {
    size_t n = *len;
    *failed = 0;
    if (n < 13) return NULL;
    int gflags = b[10];
    size_t p = 13, ngct = gflags & 0x80 ? (size_t)2 << (gflags & 7) : 0;
    const uint8_t *gct = b + 13;
    if (p + 3 * ngct > n) return NULL;
    p += 3 * ngct;
    const size_t ext_start = p;
    int trans = -1; // frame_transparency: the last graphic control extension with its flag set
    while (p < n && b[p] == 0x21) {
        if (p + 2 > n) return NULL;
        size_t q = p + 2;
        // if s[0] == 249 and block is not None: flags = block[0]; if flags & 1: frame_transparency = block[3]
        if (b[p + 1] == 0xF9 && q < n && b[q] > 0 && q + 1 < n && (b[q + 1] & 1)) {
            if (b[q] < 4 || q + 4 >= n) return NULL; // PIL fails (IndexError); stb skips it
            trans = b[q + 4];
        }
        while (q < n && b[q]) q += 1 + (size_t)b[q];
        if (q >= n) return NULL;
        p = q + 1;
    }
    if (p + 10 > n || b[p] != 0x2C) return NULL; // no image descriptor where stb expects one: stb judges
    const size_t desc = p;
    int lflags = b[desc + 9];
    size_t nlct = lflags & 0x80 ? (size_t)2 << (lflags & 7) : 0;
    const uint8_t *lct = b + desc + 10;
    if (desc + 10 + 3 * nlct + 1 > n) goto truncated;
    // the frame's LZW data: sub-blocks up to an empty one. One cut short is refused (ImageFile.load: "image file is
    // truncated"); a chain that ends with the file, no empty block after it, is read as it is (PIL decodes it when
    // its end-of-information code came before the end)
    size_t q = desc + 10 + 3 * nlct + 1;
    while (q < n && b[q]) q += 1 + (size_t)b[q];
    if (q > n) goto truncated;
    // the frame's palette and PIL's mode: palette = LCT if present else GCT; mode L when it is the identity or absent
    const uint8_t *fpal = nlct ? lct : ngct ? gct : NULL;
    size_t nf = nlct ? nlct : ngct;
    int gray = 1; // _is_palette_needed() is False
    for (size_t i = 0; i < nf && gray; i++) gray = fpal[3 * i] == i && fpal[3 * i + 1] == i && fpal[3 * i + 2] == i;
    uint8_t table[256][3]; // the frame's palette as PIL reads an index
    for (size_t i = 0; i < 256; i++) {
        if (gray) table[i][0] = table[i][1] = table[i][2] = (uint8_t)i;
        else if (i < nf) memcpy(table[i], fpal + 3 * i, 3);
        else memset(table[i], 0, 3);
    }
    // the copy: header with a 256-entry GCT (the padded GCT; or the ramp when the frame has no table at all), the
    // extensions with the transparency flags cleared, the descriptor with a 256-entry LCT when it has one, the rest
    int new_gct = ngct || !nlct;
    size_t outn = 13 + (new_gct ? 768 : 0) + (desc - ext_start) + 10 + (nlct ? 768 : 0) + (n - (desc + 10 + 3 * nlct));
    uint8_t *out = malloc(outn);
    if (!out) return NULL;
    size_t o = 0;
    memcpy(out, b, 13);
    out[11] = 0; // background index
    o = 13;
    if (new_gct) {
        out[10] = (uint8_t)(gflags | 0x87);
        if (!nlct) memcpy(out + 13, table, 768); // the frame's palette
        else { // not the frame's palette (the LCT is): kept, padded, never read
            memcpy(out + 13, gct, 3 * ngct);
            memset(out + 13 + 3 * ngct, 0, 768 - 3 * ngct);
        }
        o += 768;
    }
    memcpy(out + o, b + ext_start, desc - ext_start);
    for (size_t e = o; e < o + (desc - ext_start);) { // clear each graphic control extension's transparency flag
        size_t r = e + 2;
        if (out[e + 1] == 0xF9 && out[r] > 0) out[r + 1] &= (uint8_t)~1;
        while (out[r]) r += 1 + (size_t)out[r];
        e = r + 1;
    }
    o += desc - ext_start;
    memcpy(out + o, b + desc, 10);
    if (nlct) {
        out[o + 9] = (uint8_t)(lflags | 0x07);
        memcpy(out + o + 10, table, 768);
    }
    o += 10 + (nlct ? 768 : 0);
    memcpy(out + o, b + desc + 10 + 3 * nlct, n - (desc + 10 + 3 * nlct));
    // load_prepare: frame 0 starts as Image.core.fill(mode, size, frame_transparency), else a new image (index 0)
    x->fill = 1;
    memcpy(x->canvas, table[trans >= 0 ? trans : 0], 3);
    if (trans >= 0) {
        x->white = 1;
        memcpy(x->key, table[trans], 3); // P: the palette's colour (black past it); L: (t, t, t)
    }
    *len = outn;
    return out;
truncated:
    *failed = 1;
    glm_err("%s: not a decodable image (GIF: truncated: the first frame's data ends inside a block)", name);
    return NULL;
}

// BMP: PIL's BmpImagePlugin where stb_image 2.27 reads it otherwise, NULL (and *failed = 0) when stb's reading is
// already PIL's (or the file is not laid out as this expects: stb judges it):
// - a palette (1, 4, 8 bits) is the `colors` entries right after the header (biClrUsed, else 2^bits), an index past
//   them black (PIL's palette; in mode L, PIL's grey-ramp palette, the index itself): the copy handed to stb has the
//   256 entries of that palette, so stb's own palette array (uninitialised past the file's entries, read for such
//   indices) is never read beyond what is written; the pixels are taken from PIL's offset (bfOffBits, or past the
//   palette when bfOffBits points right after the header);
// - 16-bit pixels (BGR;15, BGR;16) are scaled v * 255 / 31 (63 for the 6 green bits of 5-6-5), rounded down, where
//   stb replicates the high bits: x->bits16 tells stb_decode to rescale;
// - RLE compression, which stb does not decode, is refused with a message saying so (*failed = 1).
static uint8_t *bmp_prepare(const uint8_t *b, size_t *len, PilExtra *x, const char *name, int *failed) {
    size_t n = *len;
    *failed = 0;
    if (n < 26) return NULL;
    uint32_t off = rd32(b + 10, 0), hsz = rd32(b + 14, 0);
    if (hsz != 12 && hsz != 40 && hsz != 52 && hsz != 56 && hsz != 64 && hsz != 108 && hsz != 124) return NULL;
    if (n < 14 + (size_t)hsz) return NULL;
    int bits = hsz == 12 ? (int)rd16(b + 24, 0) : (int)rd16(b + 28, 0);
    uint32_t comp = hsz == 12 ? 0 : rd32(b + 30, 0), colors = hsz == 12 ? 0 : rd32(b + 46, 0);
    if (comp == 1 || comp == 2) {
        *failed = 1;
        glm_err("%s: not a decodable image (BMP: RLE%d compression is not supported)", name, comp == 1 ? 8 : 4);
        return NULL;
    }
    // the raw decoder's rows (stride ((width * bits + 31) >> 3) & ~3) must all be there: PIL refuses a short file
    // ("image file is truncated"), where stb fills the missing rows with zeros
    if ((comp == 0 || comp == 3) && (bits == 1 || bits == 4 || bits == 8 || bits == 16 || bits == 24 || bits == 32)) {
        int64_t w = hsz == 12 ? (int64_t)rd16(b + 18, 0) : (int64_t)(int32_t)rd32(b + 18, 0);
        int64_t h = hsz == 12 ? (int64_t)rd16(b + 20, 0) : (int64_t)(int32_t)rd32(b + 22, 0);
        uint64_t data_off = off;
        if (bits <= 8 && off == 14 + hsz) data_off += (uint64_t)(hsz == 12 ? 3 : 4) * (colors ? colors : 1u << bits);
        if (h < 0) h = -h;
        if (w > 0 && w < (1 << 30) && h > 0 && h < (1 << 30)) {
            uint64_t stride = (((uint64_t)w * (uint64_t)bits + 31) >> 3) & ~(uint64_t)3;
            if (data_off > n || stride * (uint64_t)h > n - data_off) {
                *failed = 1;
                glm_err("%s: not a decodable image (BMP: truncated: the pixel data ends before the last row)", name);
                return NULL;
            }
        }
    }
    if (bits == 16) {
        // BI_RGB: BGR;15; BITFIELDS: the masks after a 40-byte header, in it for the longer ones
        uint32_t m[3] = {0x7C00, 0x3E0, 0x1F};
        if (comp == 3) {
            // right after a 40-byte header, at the same place (header offset 40) inside a longer one
            if (54 + 12 > n) return NULL;
            for (int c = 0; c < 3; c++) m[c] = rd32(b + 54 + 4 * c, 0);
        }
        if (m[0] == 0x7C00 && m[1] == 0x3E0 && m[2] == 0x1F) x->bits16[0] = x->bits16[1] = x->bits16[2] = 5;
        else if (m[0] == 0xF800 && m[1] == 0x7E0 && m[2] == 0x1F) x->bits16[0] = 5, x->bits16[1] = 6, x->bits16[2] = 5;
        return NULL; // the file itself (any other layout: stb's reading; PIL refuses those)
    }
    if (bits != 1 && bits != 4 && bits != 8) return NULL;
    if (colors == 0) colors = 1u << bits;
    if (colors > 65536) return NULL; // PIL: "Unsupported BMP Palette size"
    size_t pad = hsz == 12 ? 3 : 4, pal_at = 14 + (size_t)hsz;
    if ((uint64_t)pal_at + (uint64_t)pad * colors > n) return NULL;
    if (off == 14 + hsz) off += (uint32_t)(pad * colors); // if offset == 14 + header_size: past the palette
    if (off > n) return NULL;
    // PIL's grey check: the palette is (i, i, i) for every index (0 and 255 for two colours): mode 1 / L
    int gray = 1;
    for (uint32_t i = 0; i < colors && gray; i++) {
        unsigned want = colors == 2 ? (i ? 255 : 0) : i;
        const uint8_t *e = b + pal_at + pad * i;
        gray = e[0] == want && e[1] == want && e[2] == want;
    }
    size_t outn = pal_at + pad * 256 + (n - off);
    uint8_t *out = malloc(outn);
    if (!out) return NULL;
    memcpy(out, b, pal_at);
    for (uint32_t i = 0; i < 256; i++) {
        uint8_t *e = out + pal_at + pad * i;
        if (i < colors) memcpy(e, b + pal_at + pad * i, pad);
        else if (gray && colors <= 2) memset(e, i == 1 ? 255 : 0, 3); // mode 1 (one black entry): bit 1 is white
        else if (gray) memset(e, (int)i, 3); // mode L: the index is the grey
        else memset(e, 0, 3);
        if (pad == 4) e[3] = 0;
    }
    memcpy(out + pal_at + pad * 256, b + off, n - off);
    uint32_t noff = (uint32_t)(pal_at + pad * 256);
    out[10] = (uint8_t)noff, out[11] = (uint8_t)(noff >> 8), out[12] = (uint8_t)(noff >> 16), out[13] = (uint8_t)(noff >> 24);
    if (hsz != 12) out[46] = 0, out[47] = 1, out[48] = 0, out[49] = 0; // biClrUsed 256
    *len = outn;
    return out;
}

// TGA: PIL's TgaImagePlugin where stb_image reads it otherwise: a right-to-left image (descriptor bit 4) is flipped
// (x->flip_h), and a colour-mapped image's map is PIL's palette, bytes(start entries) + the map (an index past it
// black), handed to stb as a copy with a 256-entry map from index 0 (stb skips `start` bytes, not entries, and reads
// an index past its map as entry 0). NULL when the file needs no copy.
static uint8_t *tga_prepare(const uint8_t *b, size_t *len, PilExtra *x) {
    size_t n = *len;
    if (n < 18) return NULL;
    x->flip_h = (b[17] & 0x10) != 0;
    int cmap_type = b[1], itype = b[2], mdepth = b[7], depth = b[16];
    unsigned start = rd16(b + 3, 0), count = rd16(b + 5, 0);
    if (cmap_type != 1 || (itype != 1 && itype != 9) || depth != 8) return NULL;
    if (mdepth != 16 && mdepth != 24 && mdepth != 32) return NULL; // PIL: "unknown TGA map depth"; stb judges
    size_t es = (size_t)mdepth / 8, map_at = 18 + (size_t)b[0], map_n = (size_t)count * es;
    if (map_at + map_n > n) return NULL;
    size_t outn = map_at + 256 * es + (n - map_at - map_n);
    uint8_t *out = malloc(outn);
    if (!out) return NULL;
    memcpy(out, b, map_at);
    out[3] = out[4] = 0;    // map origin 0
    out[5] = 0, out[6] = 1; // 256 entries
    memset(out + map_at, 0, 256 * es);
    if (start < 256) memcpy(out + map_at + start * es, b + map_at, (count < 256 - start ? count : 256 - start) * es);
    memcpy(out + map_at + 256 * es, b + map_at + map_n, n - map_at - map_n);
    *len = outn;
    return out;
}

// the stb_image formats (PNG, BMP, GIF, TGA, PSD, HDR) after the header checks of image_load_mem; x: what the
// processor does beyond PIL's pixels (PilExtra: the GIF canvas, the colour that becomes white)
static int stb_decode(Image *img, const uint8_t *buf, size_t len, const char *name, ImgFormat fmt, int64_t max_pixels,
                      const PilExtra *x) {
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(buf, (int)len, &w, &h, &comp))
        return glm_err("%s: not a decodable image (%s: %s)", name, format_name(fmt), stbi_failure_reason());
    if (fmt == FMT_BMP && h < 0 && h != INT_MIN) h = -h; // a top-down BMP: stbi_info gives the header's negative height
    if (w <= 0 || h <= 0) return glm_err("%s: not a decodable image (%s: size %d x %d)", name, format_name(fmt), w, h);
    int64_t npix = (int64_t)w * h;
    if (max_pixels > 0 && npix > max_pixels)
        return glm_err("%s: image is %d x %d = %lld pixels, above the limit of %lld (--max-image-pixels)", name, w, h,
                       (long long)npix, (long long)max_pixels);
    size_t nbytes;
    if (size_mul((size_t)npix, 3, &nbytes)) return glm_err("%s: image too large (%d x %d)", name, w, h);
    const int orientation = x->orientation;

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
            if (x->fill && dc == 4 && s[3] == 0) memcpy(rgb + 3 * i, x->canvas, 3); // GIF: not drawn by the frame
            else if (dc <= 2) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = s[0]; // L / LA: replicate, drop alpha
            else memcpy(rgb + 3 * i, s, 3);                                       // RGB / RGBA: drop alpha
        }
        stbi_image_free(px);
    }
    if (x->flip_h) // TGA right-to-left rows (PIL: _flip_horizontally)
        for (int y = 0; y < h; y++)
            for (int l = 0, r = w - 1; l < r; l++, r--) {
                uint8_t t[3], *pl = rgb + ((size_t)y * w + l) * 3, *pr = rgb + ((size_t)y * w + r) * 3;
                memcpy(t, pl, 3), memcpy(pl, pr, 3), memcpy(pr, t, 3);
            }
    // PIL's 16-bit BMP values: the stb value's high bits are the sample (stb replicates them into the low bits)
    if (x->bits16[0])
        for (size_t i = 0; i < (size_t)npix; i++)
            for (int c = 0; c < 3; c++) {
                int nb = x->bits16[c], v = rgb[3 * i + c] >> (8 - nb);
                rgb[3 * i + c] = (uint8_t)(v * 255 / ((1 << nb) - 1));
            }
    // transformers' convert_to_rgb: the pixels of PIL's transparency colour composited onto white (png_white_key)
    if (x->white)
        for (size_t i = 0; i < (size_t)npix; i++)
            if (!memcmp(rgb + 3 * i, x->key, 3)) memset(rgb + 3 * i, 255, 3);
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
    int rc = decode_mem(img, (const uint8_t *)buf, len, path, max_pixels, 1);
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

