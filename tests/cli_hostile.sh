#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_hostile.sh - hostile inputs, round two (issue 20), run through the real binary, each case bounded by `timeout`:
#   1. pipes, FIFOs and devices: inside a model / frame folder refused at once (never a blocking open); named on the
#      command line (-f, -i) read to the end; --video of a pipe refused (ffprobe and ffmpeg both read the file)
#   2. output paths (--dump, --draw-boxes): a device / FIFO / our stdout written in place and left as it is, a symlink
#      to a file replaces the file (the link stays), a folder / block device / socket / dangling link refused
#   3. checkpoints whose tensor data is not aligned (header lengths +1..+7, shards, f32 tensors): the same dump bytes
#      as the aligned checkpoint (under `make test-asan` UBSan checks every load)
#   4. NUL bytes in prompts (-f file, stdin, pipe, --chat line) are tokenized, not cut
#   5. malformed safetensors (trailing bytes after the header JSON, data not covered) refused naming the culprit
#   6. a single-valued option given twice: exit 2 naming it
#   7. the newer input surfaces, a few malformed inputs each: --messages JSON (cut, 100000 deep, invalid UTF-8, 5000
#      images), --chat-template files (syntax, raise_exception, recursion, huge range / string / loops), score case
#      lines, GGUF headers (counts and lengths near 2^64, unknown version and value type) and quantised checkpoints
#      (tensor dtypes, missing weight_shape / scales / zero points); the server's are in tests/server_check.py
# Everything is made in a temporary folder with shell tools (mkfifo, mknod, ln -s, head/tail/od); device nodes are
# created there (mknod c 1 3 = a null device), and /dev/null itself is only written after the copy stayed a device.
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
TO=${GLM4V_TEST_TIMEOUT:-120} # seconds for a case that runs the model (sanitizer builds are slower)
QT=20                          # seconds for a case that must be refused before any work
T=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
M=weights/tiny-glm4v-moe
IMG=tests/data/images/synth_97x61.png
pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; }
R=("$GLM4V" -q -n 2)

# expect CODE PATTERN NAME CMD...: CMD exits CODE within $QT s with a last stderr line "glm4v: error: ...PATTERN..."
expect() {
    local want=$1 pat=$2 name=$3 rc last
    shift 3
    timeout "$QT" "$@" >"$T/stdout" 2>"$T/stderr" </dev/null
    rc=$?
    last=$(tail -n 1 "$T/stderr")
    local pre="glm4v: error: " # (glm4v-compare names itself)
    [ "$(basename -- "$1")" = glm4v-compare ] && pre="glm4v-compare: error: "
    if [ "$rc" -eq 124 ]; then fail "$name: no exit after ${QT}s (hang)"
    elif [ "$rc" -ge 128 ]; then fail "$name: killed by signal $((rc - 128)): $(grep -m1 -E 'ERROR|runtime error' "$T/stderr")"
    elif [ "$rc" -ne "$want" ]; then fail "$name: exit $rc, expected $want: $last"
    elif [[ "$last" != "$pre"* ]]; then fail "$name: last stderr line is not '$pre...': $last"
    elif [[ "$last" != *"$pat"* ]]; then fail "$name: the message does not name '$pat': $last"
    else pass "$name (exit $rc): ${last#"$pre"}"
    fi
}

# expect_ok NAME CMD...: CMD succeeds within $TO s (stdin from $T/stdin when it exists, else /dev/null)
expect_ok() {
    local name=$1 rc in=/dev/null
    shift
    [ -e "$T/stdin" ] && in=$T/stdin
    timeout "$TO" "$@" >"$T/stdout" 2>"$T/stderr" <"$in"
    rc=$?
    if [ "$rc" -eq 0 ]; then pass "$name (exit 0)"; else fail "$name: exit $rc: $(tail -n 1 "$T/stderr")"; fi
}

# writer FILE FIFO: feed FILE into FIFO in the background (gone with the test)
writer() {
    (exec timeout "$TO" cp "$1" "$2") &
    pids+=($!)
}

# mkmodel NAME [SRC]: $T/NAME = a copy of the checkpoint folder SRC (configs copied, big files linked)
mkmodel() {
    local dst=$T/$1 src=${2:-$M}
    rm -rf "$dst" && mkdir -p "$dst"
    cp "$src"/*.json "$dst"/
    for f in "$src"/*.safetensors; do ln -s "$PWD/$f" "$dst/$(basename "$f")"; done
    echo "$dst"
}

# le64 N: N as 8 little-endian bytes
le64() {
    local n=$1 i s=""
    for i in 0 1 2 3 4 5 6 7; do s+=$(printf '\\%03o' $(((n >> (8 * i)) & 255))); done
    printf "$s"
}

# misalign SRC DST PAD: DST = SRC with PAD more spaces after the header JSON (the header length grows by PAD, so
# the tensor data moves PAD bytes: an odd PAD puts every tensor at an odd address)
misalign() {
    local src=$1 dst=$2 pad=$3 n
    n=$(od -An -t u8 -N 8 "$src" | tr -d ' ')
    { le64 $((n + pad)); head -c $((8 + n)) "$src" | tail -c "$n"; printf "%${pad}s" ""; tail -c +$((9 + n)) "$src"; } >"$dst"
}

# ---------------------------------------------------------------------------- 1. pipes, FIFOs, devices

# files found inside a model folder: a FIFO (no writer: a blocking open would hang), a device, a folder
for f in config.json tokenizer.json generation_config.json processor_config.json tokenizer_config.json model.safetensors; do
    d=$(mkmodel "fifo_${f%%.*}")
    rm -f "$d/$f" && mkfifo "$d/$f"
    expect 1 "$f" "model folder: $f is a FIFO" "${R[@]}" -m "$d" -p hi
    rm -f "$d/$f" && ln -s /dev/zero "$d/$f"
    expect 1 "$f" "model folder: $f is a link to /dev/zero" "${R[@]}" -m "$d" -p hi
    rm -f "$d/$f" && mkdir "$d/$f"
    expect 1 "$f" "model folder: $f is a folder" "${R[@]}" -m "$d" -p hi
    rm -rf "$d/$f" && ln -s "$T/nothing_here" "$d/$f"
    expect 1 "$f" "model folder: $f is a dangling link" "${R[@]}" -m "$d" -p hi
done
d=$(mkmodel fifo_template)
mkfifo "$d/chat_template.jinja"
expect 1 "chat_template.jinja" "model folder: chat_template.jinja is a FIFO" "${R[@]}" -m "$d" -p hi
# a shard named by model.safetensors.index.json, and the index itself
d=$(mkmodel fifo_shard tests/golden/ckpt/moe-released)
rm -f "$d/model-00002-of-00002.safetensors" && mkfifo "$d/model-00002-of-00002.safetensors"
expect 1 "model-00002-of-00002.safetensors" "sharded folder: a shard is a FIFO" "${R[@]}" -m "$d" -p hi
d=$(mkmodel fifo_index tests/golden/ckpt/moe-released)
rm -f "$d/model.safetensors.index.json" && mkfifo "$d/model.safetensors.index.json"
expect 1 "model.safetensors.index.json" "sharded folder: the index is a FIFO" "${R[@]}" -m "$d" -p hi
# a frame in a video folder
mkdir -p "$T/frames" && cp tests/data/video_frames/* "$T/frames/"
rm -f "$T/frames/frame_03.png" && mkfifo "$T/frames/frame_03.png"
expect 1 "frame_03.png" "video folder: a frame is a FIFO" "${R[@]}" -m $M -p hi --video "$T/frames"
rm -f "$T/frames/frame_03.png" && ln -s /dev/zero "$T/frames/frame_03.png"
expect 1 "frame_03.png" "video folder: a frame is a link to /dev/zero" "${R[@]}" -m $M -p hi --video "$T/frames"

# named on the command line: pipes and FIFOs are read to their end
expect_ok "-f <(printf ...) (a pipe)" "${R[@]}" -m $M -f <(printf 'Describe the weather.')
mkfifo "$T/prompt.fifo"
writer <(printf 'Describe the weather.') "$T/prompt.fifo"
expect_ok "-f FIFO with a writer" "${R[@]}" -m $M -f "$T/prompt.fifo"
expect_ok "-i <(cat image) (a pipe)" "${R[@]}" -m $M -p hi -i <(cat $IMG)
mkfifo "$T/img.fifo"
writer $IMG "$T/img.fifo"
expect_ok "-i FIFO with a writer" "${R[@]}" -m $M -p hi -i "$T/img.fifo"
"${R[@]}" -m $M -p hi -i $IMG --dump "$T/file.st" >/dev/null 2>&1
"${R[@]}" -m $M -p hi -i <(cat $IMG) --dump "$T/pipe.st" >/dev/null 2>&1
cmp -s "$T/file.st" "$T/pipe.st" && pass "-i pipe: the same dump as the file" || fail "-i pipe: the dump differs from the file's"
expect 1 "limit" "-f /dev/zero (endless): refused at the size limit" "${R[@]}" -m $M -f /dev/zero
expect 1 "folder" "-f a folder" "${R[@]}" -m $M -f "$T"
expect 1 "folder" "-i a folder" "${R[@]}" -m $M -p hi -i "$T"
expect 1 "dangling" "-i a dangling link" "${R[@]}" -m $M -p hi -i "$T/fifo_config/config.json"
expect 2 "--draw-boxes" "--draw-boxes with a piped first image (read twice)" "${R[@]}" -m $M -p hi \
    -i <(cat $IMG) --draw-boxes "$T/boxes.png"
mkfifo "$T/video.fifo"
expect 1 "video.fifo" "--video FIFO: refused (ffprobe and ffmpeg both read it)" "${R[@]}" -m $M -p hi --video "$T/video.fifo"

# --messages, --tools, --chat-template FILE (named on the command line): pipes read to their end
MSG='[{"role":"user","content":"Describe the weather."}]'
expect_ok "--messages <(printf ...) (a pipe)" "${R[@]}" -m $M --messages <(printf '%s' "$MSG")
expect_ok "--tools <(printf ...) (a pipe)" "${R[@]}" -m $M -p hi --tools <(printf '[]')
expect_ok "--chat-template <(cat template) (a pipe)" "${R[@]}" -m $M -p hi --chat-template <(cat templates/glm45v.jinja)
mkfifo "$T/msg.fifo"
writer <(printf '%s' "$MSG") "$T/msg.fifo"
expect_ok "--messages FIFO with a writer" "${R[@]}" -m $M --messages "$T/msg.fifo"
expect 1 "u0000" "--messages with \\u0000 in a string: refused, not cut" "${R[@]}" -m $M \
    --messages <(printf '[{"role":"user","content":"a\\u0000b"}]')
expect 1 "folder" "--messages a folder" "${R[@]}" -m $M --messages "$T"

# glm4v-compare's inputs (named on its command line): a pipe or '-' is read to its end, a folder refused
COMPARE=${GLM4V_COMPARE:-./glm4v-compare}
expect_ok "compare: a dump through a pipe" "$COMPARE" <(cat "$T/file.st") "$T/file.st"
cp "$T/file.st" "$T/stdin"
expect_ok "compare: a dump on stdin ('-')" "$COMPARE" - "$T/file.st"
rm -f "$T/stdin"
expect 1 "not a regular file or a pipe" "compare: a folder" "$COMPARE" "$T" "$T/file.st"

# ---------------------------------------------------------------------------- 2. output paths

# isdev PATH: a character device still
isdev() { [ -c "$1" ] && [ ! -L "$1" ]; }
out_cases() { # FLAG EXTRA...: the same matrix for --dump and --draw-boxes
    local flag=$1 o=$T/o_${1#--}
    shift
    rm -rf "$o" && mkdir -p "$o"
    if mknod "$o/null" c 1 3 2>/dev/null; then
        expect_ok "$flag onto a null device (mknod c 1 3)" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/null"
        isdev "$o/null" && pass "$flag: the null device is still a character device" || fail "$flag replaced a device node"
        ln -s "$o/null" "$o/lnull"
        expect_ok "$flag onto a link to a null device" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/lnull"
        [ -L "$o/lnull" ] && isdev "$o/null" && pass "$flag: link and device kept" || fail "$flag: link or device replaced"
        mknod "$o/full" c 1 7
        expect 1 "No space" "$flag onto a full device (mknod c 1 7)" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/full"
        isdev "$o/full" && pass "$flag: the full device is still a character device" || fail "$flag replaced /dev/full's copy"
        if isdev "$o/null" && [ -z "$(ls -A "$o" | grep '\.tmp\.')" ]; then # the fixed binary: now the real one
            expect_ok "$flag /dev/null" "${R[@]}" -m $M -p hi "$@" "$flag" /dev/null
            isdev /dev/null && pass "$flag: /dev/null is still a character device" || fail "$flag REPLACED /dev/null"
        fi
    else
        echo "# $flag: mknod not permitted (not root): device-node cases skipped"
    fi
    mkfifo "$o/fifo"
    (exec timeout "$TO" cat "$o/fifo" >"$o/fifo.out") &
    pids+=($!)
    expect_ok "$flag onto a FIFO with a reader" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/fifo"
    wait "${pids[-1]}" 2>/dev/null
    [ -p "$o/fifo" ] && [ -s "$o/fifo.out" ] && pass "$flag: FIFO kept, its reader got $(wc -c <"$o/fifo.out") bytes" ||
        fail "$flag: FIFO replaced or nothing read"
    echo old >"$o/target" && chmod 640 "$o/target"
    ln -s "$o/target" "$o/link"
    expect_ok "$flag onto a link to a file" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/link"
    [ -L "$o/link" ] && [ -f "$o/target" ] && ! grep -qx old "$o/target" &&
        pass "$flag: the link's target was replaced, the link kept" || fail "$flag: the link itself was replaced"
    [ "$(stat -c %a "$o/target")" = 640 ] && pass "$flag: the replaced file kept its permissions (640)" ||
        fail "$flag: the replaced file's permissions changed to $(stat -c %a "$o/target")"
    # a read-only file is refused with one line, before the run, and left as it was (the rename would not need its
    # permission); run as a user who may not write it: nobody when root (setpriv), else the user itself
    local ro as=()
    ro=$(mktemp -d) && chmod 755 "$ro" && echo keep >"$ro/ro.out" && chmod 444 "$ro/ro.out"
    [ "$(id -u)" = 0 ] && chown -R 65534:65534 "$ro" && as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    if [ "$(id -u)" != 0 ] || command -v setpriv >/dev/null; then
        expect 1 "not writable" "$flag onto a read-only file" "${as[@]}" "${R[@]}" -m $M -p hi "$@" "$flag" "$ro/ro.out"
        [ "$(cat "$ro/ro.out")" = keep ] && [ -z "$(ls -A "$ro" | grep '\.tmp\.')" ] &&
            pass "$flag: the read-only file is unchanged" || fail "$flag replaced a read-only file"
    fi
    rm -rf "$ro"
    # a file that is our stdout under its own name (not /dev/stdout): replaced as any file, a valid dump
    timeout "$TO" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/same" >"$o/same" 2>"$T/stderr" </dev/null
    local rc=$? sig
    if [ "$flag" = --dump ]; then sig=$(tail -c +9 "$o/same" | head -c 1); else sig=$(head -c 4 "$o/same" | tail -c 3); fi
    [ $rc -eq 0 ] && { [ "$sig" = "{" ] || [ "$sig" = PNG ]; } &&
        pass "$flag FILE > FILE: the file holds the output alone" || fail "$flag FILE > FILE: $(tail -n 1 "$T/stderr")"
    timeout "$TO" "${R[@]}" -m $M -p hi "$@" "$flag" /dev/stdout >"$o/stdout" 2>"$T/stderr" </dev/null
    [ $? -eq 0 ] && [ -f "$o/stdout" ] && [ "$(wc -c <"$o/stdout")" -gt 100 ] &&
        pass "$flag /dev/stdout into a file: written there ($(wc -c <"$o/stdout") bytes)" ||
        fail "$flag /dev/stdout: $(tail -n 1 "$T/stderr")"
    ln -s "$o/nothing" "$o/dangling"
    expect 1 "dangling" "$flag onto a dangling link" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/dangling"
    [ ! -e "$o/nothing" ] && pass "$flag: the dangling link's target was not created" || fail "$flag created $o/nothing"
    mkdir "$o/dir"
    expect 1 "folder" "$flag onto a folder" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/dir"
    ln -s "$o/dir" "$o/ldir"
    expect 1 "folder" "$flag onto a link to a folder" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/ldir"
    if mknod "$o/blk" b 7 200 2>/dev/null; then
        expect 1 "block device" "$flag onto a block device" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/blk"
        [ -b "$o/blk" ] && pass "$flag: the block device is kept" || fail "$flag replaced a block device"
    fi
    if command -v python3 >/dev/null; then
        python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$o/sock" 2>/dev/null &&
            expect 1 "socket" "$flag onto a socket" "${R[@]}" -m $M -p hi "$@" "$flag" "$o/sock"
    fi
    [ -z "$(ls -A "$o" | grep '\.tmp\.')" ] && pass "$flag: no temporary file left" || fail "$flag left temporary files"
}
out_cases --dump
out_cases --draw-boxes -i $IMG

# ---------------------------------------------------------------------------- 3. unaligned tensor data

# the aligned run, then every misalignment of the header length: byte-identical dumps
args=(-p "Describe this picture." -i $IMG -n 3 -t 2)
for src in moe moe-released dense; do
    ref=$T/ref_$src.st
    "$GLM4V" -q -m tests/golden/ckpt/$src "${args[@]}" --dump "$ref" >/dev/null 2>"$T/stderr" ||
        { fail "$src: aligned run failed: $(tail -n 1 "$T/stderr")"; continue; }
    pads="1 2 3 4 5 6 7"
    [ $src = dense ] && pads="1 4"
    for pad in $pads; do
        d=$T/mis_${src}_$pad
        rm -rf "$d" && mkdir -p "$d" && cp tests/golden/ckpt/$src/*.json "$d"/
        for f in tests/golden/ckpt/$src/*.safetensors; do misalign "$f" "$d/$(basename "$f")" "$pad"; done
        timeout "$TO" "$GLM4V" -q -m "$d" "${args[@]}" --dump "$d.st" >/dev/null 2>"$T/stderr"
        rc=$?
        if [ $rc -ne 0 ]; then fail "$src, tensor data moved by $pad byte(s): exit $rc: $(grep -m1 -E 'runtime error|ERROR' "$T/stderr" || tail -n 1 "$T/stderr")"
        elif cmp -s "$d.st" "$ref"; then pass "$src, tensor data moved by $pad byte(s): dump byte-identical to the aligned one"
        else fail "$src, tensor data moved by $pad byte(s): the dump differs"
        fi
    done
done

# quantised checkpoints (compressed-tensors: packed weights, scale and zero-point tables) moved by 1 and 2 bytes
qargs=(-p "Describe this picture." -i $IMG -n 2 -t 2)
for src in moe-w4a16-g32 dense-w4a16-g128-asym moe-fp8-block moe-w8a8; do
    q=tests/golden/quant/ckpt/$src
    [ -d "$q" ] || continue
    "$GLM4V" -q -m $q "${qargs[@]}" --dump "$T/qref.st" >/dev/null 2>"$T/stderr" ||
        { fail "$src: aligned run failed: $(tail -n 1 "$T/stderr")"; continue; }
    for pad in 1 2; do
        d=$T/qmis_${src}_$pad
        rm -rf "$d" && mkdir -p "$d" && cp $q/*.json "$d"/
        for f in $q/*.safetensors; do misalign "$f" "$d/$(basename "$f")" "$pad"; done
        timeout "$TO" "$GLM4V" -q -m "$d" "${qargs[@]}" --dump "$d.st" >/dev/null 2>"$T/stderr"
        rc=$?
        if [ $rc -ne 0 ]; then fail "$src moved by $pad byte(s): exit $rc: $(grep -m1 -E 'runtime error|ERROR' "$T/stderr" || tail -n 1 "$T/stderr")"
        elif cmp -s "$d.st" "$T/qref.st"; then pass "$src moved by $pad byte(s): dump byte-identical to the aligned one"
        else fail "$src moved by $pad byte(s): the dump differs"
        fi
    done
done

# every instruction set (AVX-512, AVX2, portable C) on odd-aligned data, with a photo big enough for the packed GEMM
# (vision: 704 patches) next to the decode kernels: the same bits as the aligned default run
args=(-p "Describe this picture." -i tests/data/images/photo_450x300.png -n 3 -t 2)
d=$T/mis_moe-released_1
for v in "GLM4V_ISA=default" "GLM4V_ISA=avx2" "GLM4V_PORTABLE=1"; do # (the dump names the ISA: one reference each)
    if ! timeout "$TO" env $v "$GLM4V" -q -m tests/golden/ckpt/moe-released "${args[@]}" --dump "$T/ref_photo.st" \
        >/dev/null 2>"$T/stderr"; then
        fail "$v, photo: aligned run failed: $(tail -n 1 "$T/stderr")"
        continue
    fi
    timeout "$TO" env $v "$GLM4V" -q -m "$d" "${args[@]}" --dump "$T/mis_photo.st" >/dev/null 2>"$T/stderr"
    rc=$?
    if [ $rc -ne 0 ]; then fail "$v, odd-aligned data, photo: exit $rc: $(grep -m1 -E 'runtime error|ERROR' "$T/stderr" || tail -n 1 "$T/stderr")"
    elif cmp -s "$T/mis_photo.st" "$T/ref_photo.st"; then pass "$v, odd-aligned data, photo: dump byte-identical to the aligned one"
    else fail "$v, odd-aligned data, photo: the dump differs"
    fi
done

# ---------------------------------------------------------------------------- 4. NUL bytes in prompts

# the --raw prompt "a<NUL>b": its ids must hold the NUL's byte token between the a and b ones (not stop at a)
ids() { # print input_ids of a dump (a tiny reader: od over the data of the I64 tensor named input_ids)
    local f=$1 n hdr b e
    n=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
    hdr=$(head -c $((8 + n)) "$f" | tail -c "$n")
    b=$(sed -n 's/.*"input_ids":{[^}]*"data_offsets":\[\([0-9]*\),\([0-9]*\)\].*/\1/p' <<<"$hdr")
    e=$(sed -n 's/.*"input_ids":{[^}]*"data_offsets":\[\([0-9]*\),\([0-9]*\)\].*/\2/p' <<<"$hdr")
    tail -c +$((9 + n + b)) "$f" | head -c $((e - b)) | od -An -t d8 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'
}
printf 'a\0b' >"$T/nul.txt"
"${R[@]}" -m $M --raw -f "$T/nul.txt" --dump "$T/nul_file.st" >/dev/null 2>"$T/stderr"
"${R[@]}" -m $M --raw -f - --dump "$T/nul_stdin.st" <"$T/nul.txt" >/dev/null 2>>"$T/stderr"
"${R[@]}" -m $M --raw -f <(cat "$T/nul.txt") --dump "$T/nul_pipe.st" >/dev/null 2>>"$T/stderr"
"${R[@]}" -m $M --raw -p ab --dump "$T/ab.st" >/dev/null 2>>"$T/stderr"
want=$(head -n 1 tests/data/nul_prompt_ids.txt 2>/dev/null)
for k in file stdin pipe; do
    got=$(ids "$T/nul_$k.st" 2>/dev/null)
    [ -n "$want" ] && [ "$got" = "$want" ] && pass "NUL in a --raw prompt ($k): ids [$got] = HF's" ||
        fail "NUL in a --raw prompt ($k): ids [$got], HF [$want]: $(tail -n 1 "$T/stderr")"
done
[ "$(ids "$T/ab.st")" != "$want" ] && pass "NUL in a prompt: not the ids of the prompt without it" ||
    fail "NUL in a prompt: the same ids as without it (cut or dropped)"
# --show-prompt writes the NUL as the byte it is (as apply_chat_template(..., tokenize=False))
"${R[@]}" -m $M -f "$T/nul.txt" --show-prompt >"$T/shown" 2>"$T/stderr"
od -An -c "$T/shown" | tr -d ' \n' | grep -q 'a\\0b<' &&
    pass "--show-prompt: the NUL is written as a byte between a and b" || fail "--show-prompt: $(od -c "$T/shown" | head -3)"
# chat: a line with a NUL is one message (the answer comes; the NUL does not end the line)
printf 'a\0b\n/quit\n' >"$T/stdin"
expect_ok "--chat: a line with a NUL byte" "${R[@]}" -m $M --chat
rm -f "$T/stdin"

# ---------------------------------------------------------------------------- 5. malformed safetensors via the CLI

d=$(mkmodel trailing)
rm "$d/model.safetensors" && cp $M/model.safetensors "$d/"
n=$(od -An -t u8 -N 8 "$d/model.safetensors" | tr -d ' ')
printf 'x' | dd of="$d/model.safetensors" bs=1 seek=$((8 + n - 1)) conv=notrunc status=none
expect 1 "after its JSON object" "checkpoint: a byte after the header JSON" "${R[@]}" -m "$d" -p hi
d=$(mkmodel uncovered)
rm "$d/model.safetensors" && { cat $M/model.safetensors; printf '12345678'; } >"$d/model.safetensors"
expect 1 "data block holds" "checkpoint: 8 bytes after the last tensor" "${R[@]}" -m "$d" -p hi

# ---------------------------------------------------------------------------- 6. repeated single-valued options

rep() { expect 2 "$1" "repeated: ${*:2}" "$GLM4V" -q "${@:2}"; }
rep "-p" -m $M -p x -p y
rep "-f" -m $M -p x -f "$T/nul.txt"
rep "-p" -m $M -f "$T/nul.txt" -p x
rep "--prompt" -m $M -p x --prompt y
rep "-m" -m $M -m $M -p x
rep "--model" -m $M --model $M -p x
rep "-n" -m $M -p x -n 1 -n 2
rep "--dump" -m $M -p x --dump "$T/a.st" --dump "$T/b.st"
rep "--draw-boxes" -m $M -p x -i $IMG --draw-boxes "$T/a.png" --draw-boxes "$T/b.png"
rep "--system" -m $M -p x --system a --system b
rep "--dpi" -m $M -p x --dpi 72 --dpi 100
rep "--pages" -m $M -p x --pages 1 --pages 2
rep "--max-pages" -m $M -p x --max-pages 1 --max-pages 2
rep "--pdf-timeout" -m $M -p x --pdf-timeout 1 --pdf-timeout 2
rep "--video" -m $M -p x --video "$T/frames" --video "$T/frames"
rep "--temp" -m $M -p x --temp 0 --temp 1
rep "--top-k" -m $M -p x --top-k 1 --top-k 2
rep "--top-p" -m $M -p x --top-p 0.5 --top-p 0.6
rep "--seed" -m $M -p x --seed 1 --seed 2
rep "-t" -m $M -p x -t 1 --threads 2
rep "--fps" -m $M -p x --fps 1 --fps 2
rep "--resize" -m $M -p x --resize pil --resize torch
rep "--chunk" -m $M -p x --chunk 8 --chunk 9
rep "--compute" -m $M -p x --compute bf16 --compute f32
rep "--ctx" -m $M --chat -c 64 --ctx 128
rep "--max-image-pixels" -m $M -p x --max-image-pixels 10 --max-image-pixels 20
rep "--repeat-penalty" -m $M -p x --repeat-penalty 1 --repeat-penalty 2
rep "--no-think" -m $M -p x --think --no-think
rep "--messages" -m $M --messages "$T/a.json" --messages "$T/b.json"
rep "--tools" -m $M -p x --tools "$T/a.json" --tools "$T/b.json"
rep "--chat-template" -m $M -p x --chat-template "$T/a.jinja" --chat-template "$T/b.jinja"
rep "--chat-template-kwargs" -m $M -p x --chat-template-kwargs '{}' --chat-template-kwargs '{}'
expect_ok "-i repeated (repeatable)" "${R[@]}" -m $M -p hi -i $IMG -i $IMG

# ---------------------------------------------------------------------------- 7. the newer input surfaces

# --messages JSON
printf '[{"role":"user","content":"hel' >"$T/m_cut.json"
expect 1 "unterminated string" "--messages: JSON cut inside a string" "${R[@]}" -m $M --messages "$T/m_cut.json"
{ head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; } >"$T/m_deep.json"
expect 1 "nested too deeply" "--messages: arrays nested 100000 deep" "${R[@]}" -m $M --messages "$T/m_deep.json"
printf '[{"role":"user","content":"a\xff\xfeb"}]' >"$T/m_utf8.json"
expect 1 "invalid UTF-8" "--messages: invalid UTF-8 in a string" "${R[@]}" -m $M --messages "$T/m_utf8.json"
{
    printf '[{"role":"user","content":['
    for i in $(seq 4999); do printf '{"type":"image_url","image_url":{"url":"%s"}},' "$IMG"; done
    printf '{"type":"text","text":"x"}]}]'
} >"$T/m_many.json"
expect 1 "content[64]" "--messages: 4999 images in one message" "${R[@]}" -m $M --messages "$T/m_many.json"

# --chat-template files: each fails with one line naming the file, quickly (the sandbox's limits)
tpl() { # tpl NAME PATTERN TEXT: the template TEXT is refused naming PATTERN
    printf '%s' "$3" >"$T/$1.jinja"
    expect 1 "$2" "--chat-template: $1" "${R[@]}" -m $M -p hi --chat-template "$T/$1.jinja"
}
tpl unclosed_if "end of template" '{% if messages %}x'
tpl raise_exception "TemplateError: no" '{{ raise_exception("no") }}'
tpl recursion "nested too deeply" '{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}'
tpl huge_range "Range too big" '{% for i in range(1000000000) %}{{ i }}{% endfor %}'
tpl unknown_filter "bogus_filter" '{{ messages | bogus_filter }}'
tpl huge_string "too large" '{% set x = "a" * 1000000000 %}{{ x }}'
tpl nested_loops "step limit" '{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}'

# score case lines: each malformed line is its case's error (named in the report and the table), exit 1
{
    printf '{"id":"utf8","prompt":"a\xff","completion":"b"}\n'
    printf '{"id":"deep","prompt":'; head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'
    printf '}\n\1\2\3 not json\n'
    printf '{"id":"long","input_ids":[1,2],"completion_ids":['; for i in $(seq 9999); do printf '5,'; done; printf '5]}\n'
} >"$T/cases.jsonl"
timeout "$TO" "$GLM4V" score -m $M "$T/cases.jsonl" -o "$T/score.json" >"$T/stdout" 2>"$T/stderr" </dev/null
rc=$?
errs=$(grep -o '"error": *"[^"]*"' "$T/score.json" 2>/dev/null | grep -c -e "invalid UTF-8" -e "nested too deeply" \
       -e "unexpected character" -e "exceeds the model context")
if [ $rc -eq 1 ] && [ "$errs" -eq 4 ] && grep -q "4 cases: 0 passed, 4 failed (4 errors)" "$T/stdout" "$T/stderr"; then
    pass "score: 4 malformed case lines (invalid UTF-8, 100000 deep, not JSON, 10000 tokens): 4 case errors, exit 1"
else
    fail "score: malformed case lines: exit $rc, $errs named errors: $(tail -n 1 "$T/stdout")"
fi

# GGUF headers: magic, u32 version, u64 tensor count, u64 key-value count, then the first key (u64 length)
G=weights/gguf/tiny-glm4v-moe-q8_0.gguf
gguf_case() { # gguf_case NAME PATTERN OFFSET BYTES...: G with BYTES (printf escapes) written at OFFSET
    local name=$1 pat=$2 off=$3
    shift 3
    head -c 65536 $G >"$T/$name.gguf"
    printf "$*" | dd of="$T/$name.gguf" bs=1 seek="$off" conv=notrunc status=none
    expect 1 "$pat" "GGUF: $name" "${R[@]}" -m "$T/$name.gguf" -p hi
}
gguf_case version_9 "version" 4 '\011\0\0\0'
gguf_case tensors_2e62 "tensors_2e62.gguf" 8 '\0\0\0\0\0\0\0\100'
gguf_case kvs_2e62 "kvs_2e62.gguf" 16 '\0\0\0\0\0\0\0\100'
gguf_case key_len_2e63 "key_len_2e63.gguf" 24 '\0\0\0\0\0\0\0\200'
gguf_case value_type_99 "value_type_99.gguf" 52 '\143\0\0\0'

# quantised checkpoints (tests/golden/quant/ckpt/*): a tensor's dtype or name changed in the header
qedit() { # qedit NAME SRC PATTERN SEDEXPR: a copy of folder SRC whose safetensors header is edited by SEDEXPR
    local name=$1 src=tests/golden/quant/ckpt/$2 pat=$3 n d=$T/q_$1
    rm -rf "$d" && mkdir -p "$d" && cp "$src"/*.json "$d"/
    n=$(od -An -t u8 -N 8 "$src/model.safetensors" | tr -d ' ')
    head -c $((8 + n)) "$src/model.safetensors" | tail -c "$n" | sed "$4" >"$T/hdr"
    { le64 "$(wc -c <"$T/hdr")"; cat "$T/hdr"; tail -c +$((9 + n)) "$src/model.safetensors"; } >"$d/model.safetensors"
    expect 1 "$pat" "quantised checkpoint: $name" "${R[@]}" -m "$d" -p hi
}
Q=model.language_model.layers.0.self_attn.q_proj
qedit int8_weight_as_u8 moe-w8a8 "dtype U8" "s/\"$Q.weight\":{\"dtype\":\"I8\"/\"$Q.weight\":{\"dtype\":\"U8\"/"
qedit scale_as_i16 moe-w8a8 "BF16, F16 or F32 scales" \
    "s/\"$Q.weight_scale\":{\"dtype\":\"BF16\"/\"$Q.weight_scale\":{\"dtype\":\"I16\"/"
qedit no_weight_shape moe-w4a16-g32 "weight_shape" "s/\"$Q.weight_shape\"/\"$Q.weight_shapX\"/"
qedit no_scale_inv moe-fp8-block "weight_scale_inv" "s/\"$Q.weight_scale_inv\"/\"$Q.weight_scale_inX\"/"
qedit fp8_as_e5m2 moe-fp8-block "F8_E5M2" "s/\"$Q.weight\":{\"dtype\":\"F8_E4M3\"/\"$Q.weight\":{\"dtype\":\"F8_E5M2\"/"
qedit no_zero_point dense-w4a16-g128-asym "weight_zero_point" "s/self_attn.q_proj.weight_zero_point\"/self_attn.q_proj.weight_zero_poinX\"/"
