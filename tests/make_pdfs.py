#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# make_pdfs.py - writes the small PDF files of tests/cli_pdf.sh into tests/data/pdf/ (committed, so the tests need no
# Python): standard library only, every byte deterministic (no dates, no random seeds from the clock).
#   doc.pdf        4 pages: text (portrait), a bar chart (landscape), a scanned-style image page, a /Rotate 90 page
#   encrypted.pdf  one page, Standard security handler R2 (RC4 40-bit), user password "secret"
#   zero.pdf       a valid page tree with no pages
#   huge.pdf       one page of 14400 x 14400 pt with /UserUnit 75000 (a page 15 km wide)
#   tall.pdf       one page of 14400 x 36 pt (aspect 400:1, above the processor's 200:1)
#   cropbox.pdf    one page whose CropBox (what viewers show) lies inside its MediaBox (what pdftoppm draws), /Rotate 90
#   damaged.pdf    doc.pdf with its objects and cross-reference table overwritten by junk (header, trailer intact)
# Run: python3 tests/make_pdfs.py   (writes the files; git diff shows whether anything changed)
import hashlib
import os
import random
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "pdf")


def rc4(key, data):
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 255
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for b in data:
        i = (i + 1) & 255
        j = (j + s[i]) & 255
        s[i], s[j] = s[j], s[i]
        out.append(b ^ s[(s[i] + s[j]) & 255])
    return bytes(out)


PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


class Pdf:
    """objects numbered from 1; obj(i) = bytes of the dictionary / stream body"""

    def __init__(self):
        self.objs = {}
        self.crypt = None  # (key, file_id) when encrypted

    def add(self, body, n=None):
        n = n or len(self.objs) + 1
        self.objs[n] = body
        return n

    def stream(self, data, extra=b"", compress=True, n=None):
        if compress:
            data = zlib.compress(data, 9)
            extra += b" /Filter /FlateDecode"
        return self.add(((b"<< /Length %d" % len(data)) + extra + b" >>\nstream\n", data), n)

    def write(self, path, root, info=None, encrypt=None, file_id=b"\x00" * 16):
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = {}
        for n in sorted(self.objs):
            body = self.objs[n]
            offsets[n] = len(out)
            out += b"%d 0 obj\n" % n
            if isinstance(body, tuple):  # (dict + "stream\n", data)
                head, data = body
                if self.crypt and n != encrypt:
                    data = rc4(self.objkey(n), data)
                out += head + data + b"\nendstream"
            else:
                out += body
            out += b"\nendobj\n"
        xref = len(out)
        size = max(self.objs) + 1
        out += b"xref\n0 %d\n0000000000 65535 f \n" % size
        for n in range(1, size):
            out += b"%010d 00000 n \n" % offsets[n] if n in offsets else b"0000000000 65535 f \n"
        out += b"trailer\n<< /Size %d /Root %d 0 R" % (size, root)
        if encrypt:
            out += b" /Encrypt %d 0 R" % encrypt
        out += b" /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n" % (file_id.hex().encode(), file_id.hex().encode(), xref)
        with open(path, "wb") as f:
            f.write(out)
        return bytes(out)

    def objkey(self, n):
        key = self.crypt[0] + struct.pack("<I", n)[:3] + b"\x00\x00"
        return hashlib.md5(key).digest()[: min(len(self.crypt[0]) + 5, 16)]


def pages_tree(pdf, page_dicts, pages_n):
    kids = []
    for d in page_dicts:
        kids.append(pdf.add(b"<< /Type /Page /Parent %d 0 R " % pages_n + d + b" >>"))
    pdf.add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids)), pages_n)
    return kids


def text_ops(lines, x, y, size, lead):
    ops = b"BT /F1 %d Tf %d TL %d %d Td\n" % (size, lead, x, y)
    for ln in lines:
        ops += b"(" + ln.replace(b"(", b"\\(").replace(b")", b"\\)") + b") Tj T*\n"
    return ops + b"ET\n"


def make_doc():
    pdf = Pdf()
    # 1 catalog, 2 pages, 3 font; then content streams and pages
    pdf.add(b"<< /Type /Catalog /Pages 2 0 R >>", 1)
    pdf.add(b"", 2)
    pdf.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>", 3)
    res = b"/Resources << /Font << /F1 3 0 R >> >>"
    # page 1: text, portrait 288 x 360 pt
    body = [b"Quarterly report", b"", b"Revenue rose 12% to 4.2 million.", b"Costs fell 3% (energy, freight).",
            b"Small print: figures are unaudited;", b"see note 7 for the definitions."]
    c1 = text_ops(body[:1], 24, 320, 16, 20) + text_ops(body[2:4], 24, 280, 10, 14) + \
        text_ops(body[4:], 24, 60, 6, 8) + b"0.2 0.3 0.8 RG 1 w 24 300 m 264 300 l S\n"
    s1 = pdf.stream(c1)
    # page 2: landscape 360 x 216 pt bar chart with axes and labels
    c2 = b"0 0 0 RG 1 w 40 30 m 40 190 l S 40 30 m 340 30 l S\n"
    vals = [60, 110, 85, 150, 40]
    cols = [(0.9, 0.2, 0.2), (0.2, 0.6, 0.2), (0.2, 0.3, 0.9), (0.9, 0.6, 0.1), (0.5, 0.2, 0.7)]
    for i, (v, c) in enumerate(zip(vals, cols)):
        c2 += b"%.2f %.2f %.2f rg %d 30 40 %d re f\n" % (c + (55 + 55 * i, v))
        c2 += b"0 0 0 rg " + text_ops([b"Q%d" % (i + 1)], 67 + 55 * i, 18, 8, 10)
    c2 += text_ops([b"Sales by quarter"], 130, 200, 10, 12)
    s2 = pdf.stream(c2)
    # page 3: a scanned-style page: a grayscale image with speckle noise and dark text-like strokes, 216 x 280 pt
    rnd = random.Random(7)
    w, h = 180, 234
    px = bytearray()
    for y in range(h):
        for x in range(w):
            v = 235 + rnd.randint(-12, 12)
            if 20 <= x < 160 and (y % 14) in (3, 4, 5, 6) and 20 <= y < 214 and rnd.random() < 0.7:
                v = 40 + rnd.randint(0, 40)
            px.append(max(0, min(255, v)))
    img_n = pdf.stream(bytes(px), b" /Type /XObject /Subtype /Image /Width %d /Height %d"
                          b" /ColorSpace /DeviceGray /BitsPerComponent 8" % (w, h))
    c3 = b"q 1 0 0.02 1 0 0 cm 200 0 0 262 8 9 cm /Im1 Do Q\n"  # slightly skewed, as a scan
    s3 = pdf.stream(c3)
    # page 4: text on a page rotated by 90 degrees (/Rotate 90: shown landscape)
    s4 = pdf.stream(text_ops([b"Appendix A", b"Rotated page, 90 degrees."], 20, 250, 12, 16) +
                    b"0.8 0.1 0.1 RG 2 w 20 20 100 60 re S\n")
    pages_tree(pdf, [
        b"/MediaBox [0 0 288 360] /Contents %d 0 R %s" % (s1, res),
        b"/MediaBox [0 0 360 216] /Contents %d 0 R %s" % (s2, res),
        b"/MediaBox [0 0 216 280] /Contents %d 0 R /Resources << /XObject << /Im1 %d 0 R >> >>" % (s3, img_n),
        b"/MediaBox [0 0 216 288] /Rotate 90 /Contents %d 0 R %s" % (s4, res),
    ], 2)
    return pdf.write(os.path.join(OUT, "doc.pdf"), 1)


def make_encrypted():
    pdf = Pdf()
    user, owner = b"secret", b"owner-secret"
    file_id = hashlib.md5(b"glm4v encrypted test").digest()
    P = -44  # print + copy forbidden bits as a typical R2 file
    # Algorithm 3: O = RC4(md5(owner padded)[:5], user padded)
    o_key = hashlib.md5((owner + PAD)[:32]).digest()[:5]
    O = rc4(o_key, (user + PAD)[:32])
    # Algorithm 2: key = md5(user padded + O + P + ID[0])[:5]
    key = hashlib.md5((user + PAD)[:32] + O + struct.pack("<i", P) + file_id).digest()[:5]
    U = rc4(key, PAD)  # Algorithm 4 (R2)
    pdf.crypt = (key, file_id)
    pdf.add(b"<< /Type /Catalog /Pages 2 0 R >>", 1)
    pdf.add(b"", 2)
    pdf.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", 3)
    s = pdf.stream(text_ops([b"Confidential"], 20, 100, 14, 16), compress=False)
    pages_tree(pdf, [b"/MediaBox [0 0 200 150] /Contents %d 0 R /Resources << /Font << /F1 3 0 R >> >>" % s], 2)
    enc = pdf.add(b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>" % (O.hex().encode(), U.hex().encode(), P))
    pdf.write(os.path.join(OUT, "encrypted.pdf"), 1, encrypt=enc, file_id=file_id)


def make_simple(name, page_dict, npages=1):
    pdf = Pdf()
    pdf.add(b"<< /Type /Catalog /Pages 2 0 R >>", 1)
    pdf.add(b"", 2)
    s = pdf.stream(b"0 0 1 rg 0 0 10 10 re f\n")
    pages_tree(pdf, [page_dict % s] * npages, 2)
    pdf.write(os.path.join(OUT, name), 1)


def make_zero():
    pdf = Pdf()
    pdf.add(b"<< /Type /Catalog /Pages 2 0 R >>", 1)
    pdf.add(b"<< /Type /Pages /Kids [] /Count 0 >>", 2)
    pdf.write(os.path.join(OUT, "zero.pdf"), 1)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    doc = make_doc()
    make_encrypted()
    make_zero()
    make_simple("huge.pdf", b"/MediaBox [0 0 14400 14400] /UserUnit 75000 /Contents %d 0 R")
    make_simple("tall.pdf", b"/MediaBox [0 0 14400 36] /Contents %d 0 R")
    make_simple("cropbox.pdf", b"/MediaBox [0 0 300 200] /CropBox [50 50 250 150] /Rotate 90 /Contents %d 0 R")
    junk = bytes((i * 131 + 17) & 255 for i in range(len(doc) - 300))
    with open(os.path.join(OUT, "damaged.pdf"), "wb") as f:
        f.write(doc[:200] + junk + doc[-100:])  # header and trailer intact, objects and xref overwritten
