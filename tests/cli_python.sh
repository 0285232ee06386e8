#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_python.sh - libglm4v and its Python binding (python/glm4v.py): forward() gives the CLI's --dump logits and
# hidden states bit for bit (an image prompt and a video prompt), generate() the dump's generated ids and logits,
# score() a case as `glm4v score` does, errors raise glm4v.Error with the engine's message; `make install PREFIX=`
# installs the binary, library, header, pkg-config file and the Python package, and a C program builds against them.
# Skips (with a "# skip" line) without numpy or without build/libglm4v.so (make lib).
cd "$(dirname "$0")/.." || exit 2
GLM4V=${GLM4V:-./glm4v}
LIB=${GLM4V_LIB:-build/libglm4v.so}
if ! python3 -c "import numpy" 2>/dev/null; then echo "# skip - numpy is not installed"; exit 0; fi
if [ ! -f "$LIB" ]; then echo "# skip - $LIB is not built (make lib)"; exit 0; fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ok() { echo "ok - $*"; }
no() { echo "not ok - $*"; }
M=weights/tiny-glm4v-moe
PROMPT=$'[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>What is here?<|assistant|>\n'
"$GLM4V" -m $M --raw -p "$PROMPT" -i tests/data/images/synth_97x61.png -n 6 -q --temp 0 --dump "$T/img.st" >/dev/null 2>&1 ||
    no "CLI image run failed"
VPROMPT=$'[gMASK]<sop><|user|>\n<|begin_of_video|><|video|><|end_of_video|>What happens?<|assistant|>\n'
"$GLM4V" -m weights/tiny-glm4v-dense --raw -p "$VPROMPT" --video tests/data/video_frames -n 4 -q --temp 0 \
    --dump "$T/vid.st" >/dev/null 2>&1 || no "CLI video run failed"

GLM4V_LIB="$LIB" PYTHONPATH=python python3 - "$T" "$PROMPT" "$VPROMPT" <<'PY'
import json, struct, sys
import numpy as np
import glm4v
T, prompt, vprompt = sys.argv[1:4]
def check(cond, msg): print(("ok - " if cond else "not ok - ") + msg)
def read(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, m in h.items():
        if k == "__metadata__": continue
        s, e = m["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype={"F32": np.float32, "I64": np.int64}[m["dtype"]]).reshape(m["shape"])
    return out
for model, p, media, dump in (("weights/tiny-glm4v-moe", prompt, {"images": ["tests/data/images/synth_97x61.png"]}, "img"),
                              ("weights/tiny-glm4v-dense", vprompt, {"video": "tests/data/video_frames"}, "vid")):
    d = read(f"{T}/{dump}.st")
    with glm4v.Model(model) as m:
        o = m.forward(prompt=p, **media)
        check(np.array_equal(o.ids, d["input_ids"]), f"{dump}: forward's expanded ids = the dump's input_ids ({len(o.ids)})")
        check(o.logits.dtype == np.float32 and o.logits.tobytes() == d["logits"].tobytes(),
              f"{dump}: forward's logits {o.logits.shape} = the CLI's --dump logits, bit for bit")
        same = all(o.hidden_states[i].tobytes() == d[f"hidden_states.{i}"].tobytes() for i in range(m.num_layers + 1))
        check(o.hidden_states.shape == (m.num_layers + 1, len(o.ids), m.hidden_size) and same,
              f"{dump}: hidden_states [layers + 1, n, hidden] = the dump's hidden_states.i, bit for bit")
        if dump == "img":  # HF's processor output (each image's tokens expanded); videos take the placeholder form
            o2 = m.forward(input_ids=d["input_ids"], hidden_states=False, **media)
            check(o2.logits.tobytes() == o.logits.tobytes() and o2.hidden_states is None,
                  f"{dump}: HF-style expanded input_ids give the same logits")
        ids, lg = m.generate(prompt=p, max_new_tokens=len(d["generated_ids"]), return_logits=True, **media)
        check(ids == d["generated_ids"].tolist() and lg.tobytes() == d["generated_logits"].tobytes(),
              f"{dump}: generate = the CLI's greedy ids and generated_logits, bit for bit")
        if dump == "img":
            r = m.score(dict(prompt=p, completion_ids=ids, **media), top_k=5)
            check(r["agree"] == len(ids) and r["first_divergence"] is None and r["pass"], "score(): our own output agrees")
            rep = m.score([dict(id="a", prompt=p, completion_ids=ids, **media), {"id": "b"}])
            check(rep["summary"]["cases"] == 2 and rep["cases"][1]["error"], "score() of a list: the whole report, errors per case")
            try:
                m.forward(input_ids=[1, 2, 99999]); check(False, "an id outside the vocabulary raises")
            except glm4v.Error as e:
                check("99999" in str(e) and "vocabulary" in str(e), f"an id outside the vocabulary raises glm4v.Error: {e}")
            try:
                m.forward(prompt=p, images=["/nonexistent.png"]); check(False, "a missing image raises")
            except glm4v.Error as e:
                check("nonexistent" in str(e), f"a missing image raises glm4v.Error: {e}")
            check(m.detokenize(m.tokenize("hello world")) == "hello world", "tokenize / detokenize round trip")
            text = m.chat_prompt([{"role": "user", "content": "Hi"}], enable_thinking=False)
            check(text.startswith("[gMASK]<sop>") and "<|assistant|>" in text, "chat_prompt renders the checkpoint's template")
try:
    glm4v.Model("/nonexistent-model"); check(False, "a missing model raises")
except glm4v.Error as e:
    check("nonexistent-model" in str(e), f"a missing model raises glm4v.Error: {e}")
PY

# ---- misuse from Python: wrong dtypes / shapes / ranges, closed models, threads; HF's own logits (golden dump)
GLM4V_LIB="$LIB" PYTHONPATH=python timeout 300 python3 - <<'PY'
import threading
import numpy as np
import glm4v
def check(cond, msg): print(("ok - " if cond else "not ok - ") + msg)
def raises(f, want, msg):
    try:
        f(); check(False, msg + ": no error")
    except glm4v.Error as e:
        check(want in str(e), f"{msg}: glm4v.Error '{e}'")
    except Exception as e:
        check(False, f"{msg}: {type(e).__name__} {e}, not glm4v.Error")
m = glm4v.Model("weights/tiny-glm4v-moe")
ids = m.tokenize("[gMASK]<sop><|user|>\nHello there, how are you?<|assistant|>\n")
base = m.forward(input_ids=ids, hidden_states=False).logits
a = np.array(ids, dtype=np.int64)
check(np.array_equal(m.forward(input_ids=np.repeat(a, 2)[::2], hidden_states=False).logits, base) and
      np.array_equal(m.forward(input_ids=a[None, :].astype(np.uint16), hidden_states=False).logits, base),
      "non-contiguous int64, [1, n] uint16 ids: the list's logits")
raises(lambda: m.forward(input_ids=[2**32 + i for i in ids]), "outside the model vocabulary", "ids beyond int32 (once wrapped silently)")
raises(lambda: m.forward(input_ids=a.astype(np.float64) + 0.5), "not integer token ids", "float64 ids (once truncated)")
raises(lambda: m.forward(input_ids=np.stack([a, a])), "not one sequence", "a batch of two sequences (once flattened)")
raises(lambda: m.detokenize([5, 2**31 - 1]), "ids[1]", "detokenize of an id outside the vocabulary (once silently dropped)")
raises(lambda: m.generate(input_ids=ids, max_new_tokens=-1), "max_new_tokens", "max_new_tokens -1")
raises(lambda: m.tokenize(None), "not str or bytes", "tokenize(None)")
raises(lambda: m.forward(prompt="<|begin_of_image|><|image|><|end_of_image|>x", images="/nonexistent.png"), "/nonexistent.png",
       "images as one path string (not its letters)")
# threads: calls on one model, and on two models at once, give the numbers of a lone call (the kernels' scratch
# buffers are process-wide: unserialised calls once mixed them)
m2 = glm4v.Model("weights/tiny-glm4v-moe")
bad = []
def work(model):
    for _ in range(2):
        bad.extend([1] if not np.array_equal(model.forward(input_ids=ids, hidden_states=False).logits, base) else [])
th = [threading.Thread(target=work, args=(x,)) for x in (m, m2, m, m2)]
[t.start() for t in th]; [t.join() for t in th]
check(not bad, f"4 threads over 2 models: every forward = the lone call's logits ({len(bad)} differ)")
m.close(); m.close()
raises(lambda: m.forward(input_ids=ids), "closed", "forward after close (close twice is harmless)")
raises(lambda: m.score({"input_ids": ids, "completion_ids": [5]}), "closed", "score after close")
m2.close()
# a thread count set once (Model(threads=1)) holds for calls from any thread: omp_set_num_threads is per calling
# thread, so a call from another thread once ran on every core (the OpenMP workers its call starts: none with 1)
import os
m1 = glm4v.Model("weights/tiny-glm4v-moe", threads=1)
seen = []
def one():
    before = len(os.listdir("/proc/self/task"))
    m1.forward(input_ids=ids, hidden_states=False)
    seen.append(len(os.listdir("/proc/self/task")) - before)
th = threading.Thread(target=one); th.start(); th.join()
check(seen == [0], f"threads=1, a call from another thread starts no OpenMP worker ({seen})")
m1.close()
# HF's own logits (tests/golden/cases, transformers fp32) from forward() on HF's processor ids
import json, struct
b = open("tests/golden/cases/moe.text.safetensors", "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
def t(k):
    s, e = h[k]["data_offsets"]
    return np.frombuffer(b[8 + n + s:8 + n + e], dtype={"F32": np.float32, "I64": np.int64}[h[k]["dtype"]]).reshape(h[k]["shape"])
with glm4v.Model("tests/golden/ckpt/moe") as g:
    o = g.forward(input_ids=t("input_ids"), hidden_states=False)
    ref = t("logits"); d = float(np.abs(o.logits - ref).max())
    check(o.logits.shape == ref.shape and d <= 1e-4 * float(np.abs(ref).max()), f"forward() = HF's logits of moe.text (max |d| {d:.2g})")
PY

# ---- make install PREFIX=...: binary, library, header, pkg-config file, Python package (of the default build: not
# when another build, e.g. make test-asan's, is under test)
P="$T/prefix"
if [ "$GLM4V" != ./glm4v ] || [ ! -x ./glm4v ]; then
    echo "# skip - make install: $GLM4V is not the default build"
elif env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory install PREFIX="$P" >"$T/install.log" 2>&1; then
    ok "make install PREFIX=..."
    for f in bin/glm4v lib/libglm4v.so include/glm4v_api.h lib/pkgconfig/glm4v.pc; do
        [ -e "$P/$f" ] && ok "installed $f" || no "make install did not install $f"
    done
    cat >"$T/use.c" <<'EOF'
#include <glm4v_api.h>
#include <stdio.h>
int main(int argc, char **argv) {
    glm4v_model *m;
    if (glm4v_open("/nonexistent-model", &m) == 0) return 1;
    if (!glm4v_last_error()[0]) return 2;
    if (glm4v_open(argv[1], &m)) return 3;
    int v, h, l, p;
    glm4v_info(m, &v, &h, &l, &p);
    int32_t ids[4] = {1, 2, 3, 4}, out[2];
    int n = glm4v_generate(m, ids, 4, NULL, 2, NULL, out, NULL);
    glm4v_close(m);
    printf("%d %d %d\n", v, l, n);
    return n == 2 ? 0 : 4;
}
EOF
    if PKG_CONFIG_PATH="$P/lib/pkgconfig" cc -o "$T/use" "$T/use.c" $(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs glm4v 2>/dev/null || echo "-I$P/include -L$P/lib -lglm4v") 2>"$T/cc.err" &&
        out=$(LD_LIBRARY_PATH="$P/lib" "$T/use" $M) && [ "$out" = "1088 3 2" ]; then
        ok "a C program builds with pkg-config glm4v and runs (open error message, info, generate)"
    else no "C program against the installed library: $(head -n2 "$T/cc.err") $out"; fi
    R=$PWD
    site=$(ls -d "$P"/lib/python3*/site-packages 2>/dev/null | head -n1)
    if [ -n "$site" ] && [ -f "$site/glm4v.py" ] &&
        (cd "$T" && env -u GLM4V_LIB PYTHONPATH="$site" python3 -c "import glm4v; m = glm4v.Model('$R/$M'); print(m.vocab_size)") | grep -q 1088; then
        ok "the installed Python package finds the installed library"
    else no "installed Python package ($site)"; fi
else
    no "make install failed: $(tail -n3 "$T/install.log")"
fi
# pip install ./python (into a target folder, no network: no dependencies fetched)
if python3 -m pip install --quiet --no-deps --no-build-isolation --target "$T/pip" ./python >"$T/pip.log" 2>&1 &&
    GLM4V_LIB="$PWD/$LIB" PYTHONPATH="$T/pip" python3 -c "import glm4v, os; assert glm4v.__file__.startswith('$T/pip'); print(glm4v.Model('$M').num_layers)" | grep -q 3; then
    ok "pip install ./python works"
else no "pip install ./python: $(tail -n2 "$T/pip.log")"; fi
