#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs llama.cpp's own convert_hf_to_gguf.py, unmodified, on one of our HF folders.
#
# usage: gguf_convert.py LLAMA_CPP_DIR HF_FOLDER [convert_hf_to_gguf.py arguments ...]
#
# The only thing added: llama.cpp names a BPE pre-tokenizer by the sha256 of the token ids its tokenizer gives for a
# fixed text (get_vocab_base_pre). Our tiny checkpoints carry a 1088-token BPE vocabulary whose pre-tokenizer (the Split
# regex in tokenizer.json) is GLM-4's own, but whose ids naturally hash to nothing llama.cpp knows, so the converter
# stops with "BPE pre-tokenizer was not recognized". When (and only when) that happens, this wrapper answers "glm4",
# the name the converter gives the real GLM-4.5 / 4.6V tokenizer (same regex). Every other line runs as shipped.
import os
import runpy
import sys

# main: patch the one lookup, then hand the command line to the converter as its __main__.
def main():
    if len(sys.argv) < 3:
        sys.exit("usage: gguf_convert.py LLAMA_CPP_DIR HF_FOLDER [converter args ...]")
    lc = os.path.abspath(sys.argv[1])
    sys.path.insert(0, lc)
    sys.path.insert(1, os.path.join(lc, "gguf-py"))
    import conversion.base as base  # llama.cpp's converter package (same as convert_hf_to_gguf.py imports)

    orig = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer):
        try:
            return orig(self, tokenizer)
        except NotImplementedError:
            tok = tokenizer.backend_tokenizer if hasattr(tokenizer, "backend_tokenizer") else None
            if tok is None or "\\p{N}{1,3}" not in tok.to_str():
                raise
            return "glm4"

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = [os.path.join(lc, "convert_hf_to_gguf.py")] + sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
