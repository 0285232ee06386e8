#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_pdf.sh - PDF documents through the CLI (pdf.c, poppler-utils' pdfinfo / pdftoppm run as programs):
#   - each page given as -i file.pdf --pages K gives a --dump whose tensors are byte-identical to those of the PNG
#     `pdftoppm -png -r DPI -f K -l K -singlefile` writes (DPI from the dump's metadata, which names the renderer);
#   - the visual-token line, the automatic DPI (A4 at 150 dpi), --dpi, --pages, --max-pages, thousands of pages,
#     a document that does not fit the context (refused, naming --pages), --pdf, chat's /image, --draw-boxes;
#   - bad documents (encrypted, damaged, truncated, zero pages, absurd page size and shape, not a PDF with a .pdf
#     name) and bad renderers (one that hangs, one that crashes, one that writes garbage, none installed): exit 1
#     with one "glm4v: error:" line within seconds, no temporary file left in $TMPDIR, no renderer left running;
#   - when transformers (+ torchvision or Pillow) is importable: the page PNG's processed pixels equal transformers'
#     image processor on it (tests/pdf_hf_check.py), else skipped with a message.
# The PDFs are tests/data/pdf/*.pdf (written by tests/make_pdfs.py, committed) and two made here with bash alone.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
TO=${GLM4V_TEST_TIMEOUT:-120}
ok() { echo "ok - $*"; }
no() { echo "not ok - $*"; }
if ! command -v pdftoppm >/dev/null || ! command -v pdfinfo >/dev/null; then
    echo "# skipped: pdftoppm / pdfinfo not installed (Debian package poppler-utils; make deps installs it)"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/tmp" "$T/fake" "$T/empty"
export TMPDIR="$T/tmp" # every run below must leave it empty
M=weights/tiny-glm4v-moe
D=tests/data/pdf
DOC=$D/doc.pdf
IMG=tests/data/images/synth_97x61.png

# meta FILE KEY: a metadata value of a --dump (the safetensors header is JSON at the start of the file)
meta() { head -c 65536 "$1" | tr -d '\000' | grep -ao "\"$2\":\"[^\"]*\"" | head -n1 | sed 's/.*":"//; s/"$//'; }

# mkpdf OUT N W H: an N-page PDF of W x H pt pages (a few filled rectangles each), written with bash alone
mkpdf() {
    local out=$1 n=$2 w=$3 h=$4 body off i kids="" xref
    local stream="0.2 0.4 0.8 rg 10 10 40 20 re f 0.9 0.1 0.1 rg 30 40 20 20 re f 0 0 0 RG 1 w 5 5 m 90 70 l S"
    body=$'%PDF-1.4\n'
    local -a offs
    offs[1]=${#body}; body+=$'1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n'
    for ((i = 0; i < n; i++)); do kids+="$((i + 4)) 0 R "; done
    offs[2]=${#body}; body+=$'2 0 obj\n'"<< /Type /Pages /Kids [ $kids] /Count $n >>"$'\nendobj\n'
    offs[3]=${#body}; body+=$'3 0 obj\n'"<< /Length ${#stream} >>"$'\nstream\n'"$stream"$'\nendstream\nendobj\n'
    for ((i = 0; i < n; i++)); do
        offs[$((i + 4))]=${#body}
        body+="$((i + 4)) 0 obj"$'\n'"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 $w $h] /Contents 3 0 R >>"$'\nendobj\n'
    done
    xref=${#body}
    body+="xref"$'\n'"0 $((n + 4))"$'\n'"0000000000 65535 f "$'\n'
    for ((i = 1; i < n + 4; i++)); do body+=$(printf '%010d 00000 n ' "${offs[$i]}")$'\n'; done
    body+="trailer"$'\n'"<< /Size $((n + 4)) /Root 1 0 R >>"$'\n'"startxref"$'\n'"$xref"$'\n%%EOF\n'
    printf '%s' "$body" >"$out"
}

# ---------------------------------------------------------------------------- the visual-token line

"$GLM4V" -m $M -p "Summarise." -i $DOC -n 0 -q >"$T/out" 2>"$T/err"; rc=$?
# 150 dpi: 600x750, 750x450, 450x584, 600x450 (page 4 is /Rotate 90) px -> smart_resize to multiples of 28:
# 588x756 (21*27 = 567 tokens), 756x448 (27*16 = 432), 448x588 (16*21 = 336), 588x448 (21*16 = 336)
want="$DOC: 4 pages, 1 x 567 + 1 x 432 + 2 x 336 = 1671 visual tokens"
[ $rc -eq 0 ] && grep -qxF "$want" "$T/err" && ok "the visual-token line: $want" ||
    no "token line (exit $rc): $(cat "$T/err")"

# ---------------------------------------------------------------------------- each page = the PNG pdftoppm writes

# same_dump NAME A B: every tensor of two dumps byte-identical (CRC-32s in the metadata, and glm4v-compare exact)
same_dump() {
    local same=1 names="" n a b
    for n in pixel_values image_grid_thw input_ids position_ids image_embeds generated_logits; do
        a=$(meta "$2" "crc32.$n") b=$(meta "$3" "crc32.$n")
        [ -n "$a" ] && [ "$a" = "$b" ] || same=0
        names+="$n=$a "
    done
    [ $same -eq 1 ] && "$COMPARE" "$2" "$3" --rtol 0 --atol 0 >/dev/null && ok "$1: --dump byte-identical ($names)" ||
        no "$1: the dumps differ: $names vs $(meta "$3" crc32.pixel_values)"
}
ver=$(pdftoppm -v 2>&1 | sed -n 's/^pdftoppm version \([^ ]*\).*/\1/p' | head -n1)
# one page (3: the scanned-style image page): -i doc.pdf --pages 3 = -i the PNG pdftoppm writes at the recorded DPI
"$GLM4V" -m $M -p "Read the page." -i $DOC --pages 3 -n 0 -q --dump "$T/pdf3.st" >/dev/null 2>"$T/err"
dpi=$(meta "$T/pdf3.st" pdf.dpi)
pdftoppm -png -r "$dpi" -f 3 -l 3 -singlefile $DOC "$T/page3"
"$GLM4V" -m $M -p "Read the page." -i "$T/page3.png" -n 0 -q --dump "$T/png3.st" >/dev/null 2>&1
same_dump "-i doc.pdf --pages 3 vs pdftoppm -png -r $dpi -f 3 -l 3" "$T/pdf3.st" "$T/png3.st"
r=$(meta "$T/pdf3.st" pdf.renderer) p=$(meta "$T/pdf3.st" pdf.pages)
[ "$r" = "pdftoppm $ver" ] && [ "$p" = 3 ] && [ "$dpi" = 150 ] &&
    ok "metadata: renderer '$r', page $p, $dpi dpi" || no "metadata: '$r' '$p' '$dpi'"
# every page (text, chart, landscape, scan, /Rotate 90) = the four PNGs given in page order
"$GLM4V" -m $M -p "Read the pages." -i $DOC -n 0 -q --dump "$T/pdfall.st" >/dev/null 2>"$T/err"
pngs=()
for K in 1 2 3 4; do
    pdftoppm -png -r 150 -f $K -l $K -singlefile $DOC "$T/page$K"
    pngs+=(-i "$T/page$K.png")
done
"$GLM4V" -m $M -p "Read the pages." "${pngs[@]}" -n 0 -q --dump "$T/pngall.st" >/dev/null 2>&1
same_dump "-i doc.pdf (4 pages) vs its 4 PNGs" "$T/pdfall.st" "$T/pngall.st"
[ "$(meta "$T/pdfall.st" pdf.pages)" = "1,2,3,4" ] && [ "$(meta "$T/pdfall.st" pdf.dpi)" = "150,150,150,150" ] &&
    [ "$(meta "$T/pdfall.st" pdf.page_size_pt)" = "288x360,360x216,216x280,288x216" ] &&
    [ "$(meta "$T/pdfall.st" pdf.page_size_px)" = "600x750,750x450,450x584,600x450" ] &&
    ok "metadata: pages 1,2,3,4 at 150 dpi, sizes in points and pixels" || no "metadata: $(meta "$T/pdfall.st" pdf.pages)"

# a CropBox inside the MediaBox: the MediaBox is drawn (pdftoppm's and pdf2image's default), /Rotate 90 applied
"$GLM4V" -m $M -p "x" -i $D/cropbox.pdf -n 0 -q --dump "$T/crop.st" >/dev/null 2>"$T/err"
pdftoppm -png -r 150 -f 1 -l 1 -singlefile $D/cropbox.pdf "$T/crop"
"$GLM4V" -m $M -p "x" -i "$T/crop.png" -n 0 -q --dump "$T/cropp.st" >/dev/null 2>&1
[ "$(meta "$T/crop.st" pdf.page_size_pt)" = "200x300" ] && [ "$(meta "$T/crop.st" pdf.page_size_px)" = "417x625" ] &&
    [ "$(meta "$T/crop.st" crc32.pixel_values)" = "$(meta "$T/cropp.st" crc32.pixel_values)" ] &&
    ok "CropBox inside MediaBox, /Rotate 90: 200 x 300 pt, 417 x 625 px, = its PNG" ||
    no "cropbox: $(meta "$T/crop.st" pdf.page_size_pt) $(meta "$T/crop.st" pdf.page_size_px) $(cat "$T/err")"

# --dpi overrides; --pdf; several pages in page order equal the PNGs given in that order
"$GLM4V" -m $M -p "x" --pdf $DOC --pages 3,1 --dpi 100 -n 0 -q --dump "$T/d100.st" >/dev/null 2>"$T/err"
pdftoppm -png -r 100 -f 1 -l 1 -singlefile $DOC "$T/r1"
pdftoppm -png -r 100 -f 3 -l 3 -singlefile $DOC "$T/r3"
"$GLM4V" -m $M -p "x" -i "$T/r1.png" -i "$T/r3.png" -n 0 -q --dump "$T/p100.st" >/dev/null 2>&1
[ "$(meta "$T/d100.st" pdf.dpi)" = "100,100" ] && [ "$(meta "$T/d100.st" pdf.pages)" = "1,3" ] &&
    [ "$(meta "$T/d100.st" crc32.pixel_values)" = "$(meta "$T/p100.st" crc32.pixel_values)" ] &&
    [ "$(meta "$T/d100.st" crc32.input_ids)" = "$(meta "$T/p100.st" crc32.input_ids)" ] &&
    ok "--pdf --pages 3,1 --dpi 100: pages 1, 3 in page order at 100 dpi = their PNGs" ||
    no "--dpi 100: $(meta "$T/d100.st" pdf.dpi) $(meta "$T/d100.st" pdf.pages) $(cat "$T/err")"

# --messages takes the server's parts (messages.c, one reader): a file part (pages 3,1 at 100 dpi, its own fields) and
# a PDF as an image_url path give the dumps of -i with --pages / --dpi, and the same cost line
b64=$(base64 -w0 $DOC)
printf '[{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:application/pdf;base64,%s", "filename": "doc.pdf", "pages": "3,1", "dpi": 100}}, {"type": "text", "text": "x"}]}]' \
    "$b64" >"$T/file.json"
"$GLM4V" -m $M --messages "$T/file.json" -n 0 -q --dump "$T/mfile.st" >/dev/null 2>"$T/err"
[ "$(meta "$T/mfile.st" crc32.pixel_values)" = "$(meta "$T/d100.st" crc32.pixel_values)" ] &&
    [ "$(meta "$T/mfile.st" crc32.input_ids)" = "$(meta "$T/d100.st" crc32.input_ids)" ] &&
    grep -q "^messages\[0\].content\[0\].file (doc.pdf): 2 pages, " "$T/err" &&
    ok "--messages file part, pages 3,1 at 100 dpi == -i --pages 3,1 --dpi 100: $(cat "$T/err")" ||
    no "--messages file part: $(meta "$T/mfile.st" crc32.pixel_values) $(cat "$T/err")"
printf '[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "%s"}}, {"type": "text", "text": "Read the pages."}]}]' \
    "$DOC" >"$T/path.json"
"$GLM4V" -m $M --messages "$T/path.json" -n 0 -q --dump "$T/mpath.st" >/dev/null 2>"$T/err"
[ "$(meta "$T/mpath.st" crc32.pixel_values)" = "$(meta "$T/pdfall.st" crc32.pixel_values)" ] &&
    [ "$(meta "$T/mpath.st" crc32.input_ids)" = "$(meta "$T/pdfall.st" crc32.input_ids)" ] &&
    grep -qxF "$DOC: 4 pages, 1 x 567 + 1 x 432 + 2 x 336 = 1671 visual tokens" "$T/err" &&
    ok "--messages with a PDF as an image_url path == -i doc.pdf" || no "--messages PDF path: $(cat "$T/err")"

# an A4 page gets 150 dpi (1241 x 1754 px, 2772 tokens) and equals its PNG; a document of thousands of pages is
# refused unless --pages picks some
mkpdf "$T/a4.pdf" 2500 595.276 841.89
"$GLM4V" -m $M -p "x" -i "$T/a4.pdf" -n 0 -q >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && tail -n1 "$T/err" | grep -q "2500 pages, more than --max-pages 16.*--pages" &&
    ok "2500 pages: refused, naming --pages: $(tail -n1 "$T/err")" || no "2500 pages: exit $rc $(tail -n1 "$T/err")"
# (1241 x 1754 px -> smart_resize 1232 x 1764 = 44 x 63 = 2772 tokens; -n 4000 is refused after the line, before
# the vision tower runs)
"$GLM4V" -m $M -p "x" -i "$T/a4.pdf" --pages 2499 -n 4000 -q >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -qxF "$T/a4.pdf: 1 page, 1 x 2772 = 2772 visual tokens" "$T/err" &&
    ok "A4 page 2499 of 2500: 150 dpi, 2772 tokens" || no "A4 page: exit $rc $(cat "$T/err")"

# a document that does not fit the context (the tiny checkpoint has 4096 positions) is refused, naming --pages
"$GLM4V" -m $M -p "x" -i $DOC --dpi 300 -n 16 -q >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && tail -n1 "$T/err" | grep -q "exceeds the model context of 4096 tokens: choose fewer pages with --pages" &&
    ok "too long for the context: $(tail -n1 "$T/err")" || no "context: exit $rc $(tail -n1 "$T/err")"

# pages count against the 64-image limit of one prompt
mkpdf "$T/small.pdf" 64 100 80
args=()
for i in 1 2 3 4 5 6 7 8; do args+=(-i $IMG); done
"$GLM4V" -m $M -p "x" "${args[@]}" -i "$T/small.pdf" --max-pages 64 -n 0 -q >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && tail -n1 "$T/err" | grep -q "64 pages do not fit.*--pages" && ok "8 images + 64 pages: refused: $(tail -n1 "$T/err")" ||
    no "image limit: exit $rc $(tail -n1 "$T/err")"

# chat: /image on a PDF attaches its pages
printf '/image %s\nWhat does it say?\n/quit\n' "$DOC" | "$GLM4V" -m $M --chat --pages 2 -n 3 >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && grep -qF "$DOC: 1 page, 1 x 432 = 432 visual tokens" "$T/err" && grep -q "tok/s" "$T/err" &&
    ok "chat: /image doc.pdf --pages 2 attaches page 2" || no "chat: exit $rc $(cat "$T/err")"

# --draw-boxes on a PDF: OUT-pN.png for the pages that have boxes (a random tiny model rarely writes any), nothing else
mkdir -p "$T/boxes"
"$GLM4V" -m $M -p "Where is the chart?" -i $DOC --pages 2 -n 8 -q --draw-boxes "$T/boxes/b.png" >/dev/null 2>"$T/err"; rc=$?
left=$(ls "$T/boxes" | grep -v '^b-p2\.png$')
[ $rc -eq 0 ] && [ -z "$left" ] && ok "--draw-boxes on a PDF page: exit 0, only b-p2.png if anything ($(ls "$T/boxes" | tr '\n' ' '))" ||
    no "--draw-boxes: exit $rc, files: $(ls "$T/boxes") $(tail -n1 "$T/err")"

# ---------------------------------------------------------------------------- bad documents and renderers

# bad NAME PATTERN ARGS...: exit 1 within 15 s, last stderr line "glm4v: error: ...PATTERN...", nothing in $TMPDIR,
# no renderer left running
bad() {
    local name=$1 pat=$2 rc s e last
    shift 2
    s=$(date +%s%N)
    timeout "$TO" "$@" >/dev/null 2>"$T/err" </dev/null
    rc=$?
    e=$((($(date +%s%N) - s) / 1000000))
    last=$(tail -n1 "$T/err")
    if [ $rc -ne 1 ]; then no "$name: exit $rc: $last"
    elif [[ "$last" != "glm4v: error: "*"$pat"* ]]; then no "$name: last line does not name '$pat': $last"
    elif [ "$(grep -c . "$T/err")" -ne 1 ]; then no "$name: more than one line on stderr: $(cat "$T/err")"
    elif [ $e -gt 15000 ]; then no "$name: took $e ms"
    elif [ -n "$(ls -A "$T/tmp")" ]; then no "$name: left files in TMPDIR: $(ls -A "$T/tmp")"
    elif pgrep -f "sleep 1001" >/dev/null; then no "$name: the renderer is still running"
    else ok "$name ($e ms): ${last#glm4v: error: }"
    fi
}
R=("$GLM4V" -m $M -p "x" -n 2 -q)
head -c 15000 $DOC >"$T/truncated.pdf"
printf 'this is a text file\n' >"$T/notes.pdf"
cp $IMG "$T/picture.pdf"
bad "encrypted" "encrypted and needs a password" "${R[@]}" -i $D/encrypted.pdf
bad "damaged" "damaged or not a PDF" "${R[@]}" -i $D/damaged.pdf
bad "truncated" "truncated or damaged" "${R[@]}" -i "$T/truncated.pdf"
head -c 31400 $DOC >"$T/truncated2.pdf"
bad "truncated in its trailer" "truncated or damaged" "${R[@]}" -i "$T/truncated2.pdf"
bad "zero pages" "has no pages" "${R[@]}" -i $D/zero.pdf
bad "a 200-inch page (14400 pt, /UserUnit 75000)" "--max-image-pixels" "${R[@]}" -i $D/huge.pdf
bad "a 200 in x 0.5 in page" "aspect ratio of 400:1" "${R[@]}" -i $D/tall.pdf
bad "a text file named .pdf" "not a PDF" "${R[@]}" -i "$T/notes.pdf"
bad "--pdf on a PNG" "not a PDF" "${R[@]}" --pdf $IMG
bad "--pages past the end" "page 9 is past the end" "${R[@]}" -i $DOC --pages 9
bad "--pages syntax" "not a list of pages" "${R[@]}" -i $DOC --pages 1-2-3
bad "a missing PDF" "No such file" "${R[@]}" --pdf "$T/nothing.pdf"
timeout "$TO" "${R[@]}" -i "$T/picture.pdf" >/dev/null 2>&1 && ok "a PNG named .pdf is read as the image it is" ||
    no "a PNG named .pdf was refused"

# renderers that misbehave (a fake pdftoppm first on $PATH; the real pdfinfo counts the pages)
printf '#!/bin/sh\nsleep 1001\n' >"$T/fake/pdftoppm"
chmod +x "$T/fake/pdftoppm"
bad "a renderer that hangs (--pdf-timeout 2)" "did not finish on page 1 within the time limit of 2 s" \
    env PATH="$T/fake:$PATH" "${R[@]}" -i $DOC --pages 1 --pdf-timeout 2
printf '#!/bin/sh\n[ "$1" = -v ] && exit 0\nkill -SEGV $$\n' >"$T/fake/pdftoppm"
bad "a renderer that crashes" "pdftoppm crashed on page 1 (signal 11" env PATH="$T/fake:$PATH" "${R[@]}" -i $DOC --pages 1
printf '#!/bin/sh\n[ "$1" = -v ] && exit 0\nprintf "P6\\n100 100\\n255\\nshort"\n' >"$T/fake/pdftoppm"
bad "a renderer that writes a short image" "gave no complete image for page 1" env PATH="$T/fake:$PATH" "${R[@]}" -i $DOC --pages 1
printf '#!/bin/sh\n[ "$1" = -v ] && exit 0\nwhile :; do printf "P6\\n10 10\\n255\\n"; done\n' >"$T/fake/pdftoppm"
bad "a renderer that writes without end" "wrote more than the page's pixels" env PATH="$T/fake:$PATH" "${R[@]}" -i $DOC \
    --pages 1 --dpi 10 --max-image-pixels 10000
bad "no poppler-utils" "install poppler-utils" env PATH="$T/empty" "${R[@]}" -i $DOC

# ---------------------------------------------------------------------------- transformers on the page PNG

mkdir -p "$T/py" # torch writes its caches into TMPDIR: not the one checked
if TMPDIR="$T/py" python3 -c 'import transformers, numpy' 2>/dev/null; then
    if TMPDIR="$T/py" python3 -c 'import torchvision' 2>/dev/null; then mode=torch flag=torch
    elif python3 -c 'import PIL' 2>/dev/null; then
        mode=pil flag=$(python3 -c 'import PIL; print("pil13" if int(PIL.__version__.split(".")[0]) >= 13 else "pil")')
    else mode=""
    fi
    if [ -n "$mode" ]; then
        dump="$T/pdfall.st"
        if [ $flag != torch ]; then
            dump="$T/hf.st"
            "$GLM4V" -m $M -p "x" -i $DOC --resize $flag -n 0 -q --dump "$dump" >/dev/null 2>&1
        fi
        TMPDIR="$T/py" timeout 600 python3 tests/pdf_hf_check.py $M "$dump" $mode "$T"/page[1-4].png
        [ $? -eq 77 ] && echo "# skipped: transformers' image processor check"
    else echo "# skipped: transformers' image processor check (neither torchvision nor Pillow importable)"
    fi
else
    echo "# skipped: transformers' image processor check (transformers / numpy not importable in python3)"
fi
[ -z "$(ls -A "$T/tmp")" ] && ok "nothing left in TMPDIR after every run" || no "TMPDIR holds: $(ls -A "$T/tmp")"
