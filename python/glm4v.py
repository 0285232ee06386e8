# SPDX-License-Identifier: MIT
"""glm4v - Python binding of libglm4v (glm4v_api.h; ctypes + numpy only).

    import glm4v
    m = glm4v.Model("weights/tiny-glm4v-moe")
    out = m.forward(input_ids=m.tokenize("[gMASK]<sop><|user|>\\nHi<|assistant|>\\n"), hidden_states=True)
    out.logits          # numpy float32 [n_tokens, vocab]: every position's logits (the CLI's --dump "logits")
    out.hidden_states   # numpy float32 [layers + 1, n_tokens, hidden] (HF's output_hidden_states order)
    ids = m.generate(input_ids=..., images=["cat.png"], max_new_tokens=32)      # greedy by default
    report = m.score({"id": "a", "prompt": "...", "completion_ids": [...], "logprobs": [...]})

Errors raise glm4v.Error with the engine's one-line message; the library prints nothing. The shared library is
found through $GLM4V_LIB, next to this file, in the source tree's build/, in PREFIX/lib of an installed package,
then by the system's loader (ctypes.util.find_library).
"""
import ctypes
import ctypes.util
import functools
import json
import os
import threading

import numpy as np

__all__ = ["Model", "Output", "Error", "load_library"]


class Error(RuntimeError):
    """a failed libglm4v call (the message is the engine's)"""


class _Media(ctypes.Structure):
    _fields_ = [("images", ctypes.POINTER(ctypes.c_char_p)), ("n_images", ctypes.c_int),
                ("video", ctypes.c_char_p), ("fps", ctypes.c_float)]


class _Sampling(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_k", ctypes.c_int), ("top_p", ctypes.c_float),
                ("repeat_penalty", ctypes.c_float), ("seed", ctypes.c_uint64)]


_lib = None


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    if os.environ.get("GLM4V_LIB"):
        yield os.environ["GLM4V_LIB"]
    yield os.path.join(here, "libglm4v.so")
    yield os.path.join(here, "..", "build", "libglm4v.so")          # the source tree (python/ beside build/)
    yield os.path.join(here, "..", "..", "libglm4v.so")             # PREFIX/lib/pythonX.Y/site-packages -> PREFIX/lib
    yield os.path.join(here, "..", "..", "..", "lib", "libglm4v.so")
    found = ctypes.util.find_library("glm4v")
    if found:
        yield found


def load_library(path=None):
    """load libglm4v (path, or the first one found) and declare its functions; returns the ctypes library"""
    global _lib
    if _lib is not None and path is None:
        return _lib
    tried = []
    for p in ([path] if path else _candidates()):
        if path is None and os.sep in p and not os.path.exists(p):
            tried.append(p)
            continue
        try:
            lib = ctypes.CDLL(p)
            break
        except OSError as e:
            tried.append(f"{p} ({e})")
    else:
        raise Error("libglm4v.so not found (make lib, or set GLM4V_LIB): tried " + ", ".join(tried))
    P, I, C, F, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t
    I32P = ctypes.POINTER(ctypes.c_int32)
    sig = {
        "glm4v_last_error": (C, []), "glm4v_version": (C, []), "glm4v_set_threads": (None, [I]),
        "glm4v_free": (None, [P]),
        "glm4v_open": (I, [C, ctypes.POINTER(P)]), "glm4v_close": (None, [P]),
        "glm4v_info": (I, [P, ctypes.POINTER(I), ctypes.POINTER(I), ctypes.POINTER(I), ctypes.POINTER(I)]),
        "glm4v_tokenize": (I, [P, C, S, ctypes.POINTER(I32P)]),
        "glm4v_detokenize": (P, [P, I32P, I]),
        "glm4v_chat_prompt": (P, [P, C, C]),
        "glm4v_forward": (I, [P, I32P, I, ctypes.POINTER(_Media), I, ctypes.POINTER(P)]),
        "glm4v_output_tokens": (I, [P]), "glm4v_output_ids": (I32P, [P]),
        "glm4v_output_logits": (F, [P]), "glm4v_output_hidden": (F, [P]), "glm4v_output_free": (None, [P]),
        "glm4v_generate": (I, [P, I32P, I, ctypes.POINTER(_Media), I, ctypes.POINTER(_Sampling), I32P, F]),
        "glm4v_score": (P, [P, C, S, I, C]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    _lib = lib
    return lib


def _err(lib):
    return Error(lib.glm4v_last_error().decode("utf-8", "replace"))


def _take_str(lib, ptr):
    """a malloc'd C string from the library -> str (freed)"""
    if not ptr:
        raise _err(lib)
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        lib.glm4v_free(ptr)


def _locked(f):
    """a Model method run under the model's lock, on an open handle (glm4v.Error once closed)"""
    @functools.wraps(f)
    def run(self, *a, **kw):
        with self._lock:
            if not getattr(self, "_h", None):
                raise Error("the model is closed")
            return f(self, *a, **kw)
    return run


class Output:
    """one forward pass: ids [n] (the expanded prompt), logits [n, vocab], hidden_states [layers + 1, n, hidden] or None"""

    def __init__(self, ids, logits, hidden_states):
        self.ids, self.logits, self.hidden_states = ids, logits, hidden_states


class Model:
    """a model folder opened with libglm4v (GLM-4.5V / 4.6V / 4.1V / 4.6V-Flash); one call at a time per Model"""

    def __init__(self, path, threads=None, lib=None):
        self._lock = threading.RLock()  # one call at a time on this model (close waits for a running call)
        self._lib = load_library(lib)
        if threads:
            self._lib.glm4v_set_threads(int(threads))
        h = ctypes.c_void_p()
        if self._lib.glm4v_open(os.fsencode(path), ctypes.byref(h)):
            raise _err(self._lib)
        self._h = h
        v, hs, nl, mp = (ctypes.c_int() for _ in range(4))
        self._lib.glm4v_info(h, ctypes.byref(v), ctypes.byref(hs), ctypes.byref(nl), ctypes.byref(mp))
        self.vocab_size, self.hidden_size, self.num_layers, self.max_positions = v.value, hs.value, nl.value, mp.value

    def close(self):
        """free the model; later calls raise glm4v.Error (closing twice is harmless)"""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if getattr(self, "_h", None):
                self._lib.glm4v_close(self._h)
                self._h = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _ids(self, ids, what):
        """token ids (a list, or a numpy array [n] or [1, n] of integers) -> a ctypes int32 array, every id checked
        against the vocabulary (a value outside int32 would otherwise wrap silently to another token)"""
        a = np.asarray(ids)
        if a.ndim == 2 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 1:
            raise Error(f"{what}: shape {a.shape}, not one sequence [n] (or [1, n])")
        if a.size and a.dtype.kind not in "iu":
            raise Error(f"{what}: not integer token ids (dtype {a.dtype})")
        bad = np.flatnonzero((a < 0) | (a >= self.vocab_size)) if a.size else []
        if len(bad):
            raise Error(f"{what}[{bad[0]}]: token id {int(a[bad[0]])} is outside the model vocabulary ({self.vocab_size})")
        return (ctypes.c_int32 * a.size)(*a.tolist()), int(a.size)

    # ---- text
    @_locked
    def tokenize(self, text):
        """text (special tokens written as text count) -> list of token ids"""
        if not isinstance(text, (str, bytes, bytearray)):
            raise Error(f"tokenize: text is a {type(text).__name__}, not str or bytes")
        b = text.encode() if isinstance(text, str) else bytes(text)
        p = ctypes.POINTER(ctypes.c_int32)()
        n = self._lib.glm4v_tokenize(self._h, b, len(b), ctypes.byref(p))
        if n < 0:
            raise _err(self._lib)
        try:
            return [p[i] for i in range(n)]
        finally:
            self._lib.glm4v_free(p)

    @_locked
    def detokenize(self, ids):
        """token ids -> text (special tokens kept)"""
        a, n = self._ids(ids, "ids")
        return _take_str(self._lib, self._lib.glm4v_detokenize(self._h, a, n))

    @_locked
    def chat_prompt(self, messages, **template_kwargs):
        """the checkpoint's chat template over OpenAI messages, with the generation prompt (text)"""
        kw = json.dumps(template_kwargs).encode() if template_kwargs else None
        return _take_str(self._lib, self._lib.glm4v_chat_prompt(self._h, json.dumps(messages).encode(), kw))

    # ---- model
    def _ids_media(self, input_ids, prompt, images, video, fps):
        if (input_ids is None) == (prompt is None):
            raise Error("give input_ids or prompt (one of them)")
        arr, n = self._ids(self.tokenize(prompt) if prompt is not None else input_ids, "input_ids")
        if isinstance(images, (str, bytes, os.PathLike)):  # one image, not a sequence of one-letter paths
            images = [images]
        imgs = [os.fsencode(p) for p in (images or [])]
        self._keep = (ctypes.c_char_p * max(1, len(imgs)))(*imgs)
        media = _Media(self._keep, len(imgs), os.fsencode(video) if video else None, float(fps or 0))
        return arr, n, media

    @_locked
    def forward(self, input_ids=None, images=None, video=None, prompt=None, hidden_states=True, fps=None):
        """one prefill of input_ids (with <|image|> placeholders, or HF's expanded image tokens) or prompt text,
        images (paths, prompt order) and video (a file or a folder of frames): Output(ids, logits, hidden_states)"""
        arr, n, media = self._ids_media(input_ids, prompt, images, video, fps)
        o = ctypes.c_void_p()
        if self._lib.glm4v_forward(self._h, arr, n, ctypes.byref(media), int(bool(hidden_states)), ctypes.byref(o)):
            raise _err(self._lib)
        try:
            L = self._lib.glm4v_output_tokens(o)
            ids = np.ctypeslib.as_array(self._lib.glm4v_output_ids(o), shape=(L,)).copy()
            logits = np.ctypeslib.as_array(self._lib.glm4v_output_logits(o), shape=(L, self.vocab_size)).copy()
            hs = None
            if hidden_states:
                hs = np.ctypeslib.as_array(self._lib.glm4v_output_hidden(o),
                                           shape=(self.num_layers + 1, L, self.hidden_size)).copy()
            return Output(ids, logits, hs)
        finally:
            self._lib.glm4v_output_free(o)

    @_locked
    def generate(self, input_ids=None, images=None, video=None, prompt=None, max_new_tokens=256, temperature=0.0,
                 top_k=0, top_p=1.0, repeat_penalty=1.0, seed=0, return_logits=False, fps=None):
        """generated token ids (a list; an end-of-sequence id ends it and is included); greedy by default.
        return_logits: (ids, logits [n, vocab] that chose each token)"""
        if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
            raise Error(f"max_new_tokens: {max_new_tokens!r}, not a count of tokens >= 1")
        arr, n, media = self._ids_media(input_ids, prompt, images, video, fps)
        out = (ctypes.c_int32 * max_new_tokens)()
        lg = np.empty((max_new_tokens, self.vocab_size), np.float32) if return_logits else None
        sp = _Sampling(temperature, top_k, top_p, repeat_penalty, seed)
        got = self._lib.glm4v_generate(self._h, arr, n, ctypes.byref(media), max_new_tokens, ctypes.byref(sp), out,
                                       lg.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) if lg is not None else None)
        if got < 0:
            raise _err(self._lib)
        ids = list(out[:got])
        return (ids, lg[:got]) if return_logits else ids

    @_locked
    def score(self, cases, top_k=20, preset="fp32"):
        """`glm4v score` on one case (a dict: returns its report dict) or a list of cases (returns the whole report:
        {"summary", "settings", "cases"}); the case format and the report schema are README.md's"""
        one = isinstance(cases, dict)
        lines = "".join(json.dumps(c) + "\n" for c in ([cases] if one else cases)).encode()
        rep = json.loads(_take_str(self._lib, self._lib.glm4v_score(self._h, lines, len(lines), int(top_k),
                                                                     preset.encode() if preset else None)))
        return rep["cases"][0] if one else rep
