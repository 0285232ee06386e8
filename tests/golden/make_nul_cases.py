#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_nul_cases.py - HuggingFace `tokenizers` ids of strings holding NUL bytes, for tests/test_tokenizer_nul.c and
tests/cli_hostile.sh (a prompt is a byte string: a NUL is tokenized as its byte-level token, never the end).

Writes tests/data/tokenizer_nul_cases.json (texts as hex, since JSON readers built on C strings stop at \\u0000) and
tests/data/nul_prompt_ids.txt (the ids of the --raw prompt "a\\0b"). Run from the repository root:
    python3 tests/golden/make_nul_cases.py
"""
import json

import tokenizers
from tokenizers import Tokenizer

SRC = "weights/tiny-glm4v-moe/tokenizer.json"
TEXTS = ["a\0b", "\0", "\0\0\0", "hello\0world", " \0 ", "\0<|user|>\0", "你\0好", "line\n\0\n", "'s\0'll",
         "123\0" "456", "abc\0", "\0abc", "a \0 b\t\0\tc", "<think>\0</think>", "\0\0 \0\0", "x\0\u00e9\0\U0001F600"]


def main():
    tk = Tokenizer.from_file(SRC)
    cases = [{"hex": s.encode("utf-8").hex(), "ids": tk.encode(s, add_special_tokens=False).ids} for s in TEXTS]
    with open("tests/data/tokenizer_nul_cases.json", "w") as f:
        json.dump({"generator": "tests/golden/make_nul_cases.py", "tokenizers": tokenizers.__version__,
                   "tokenizer": SRC, "cases": cases}, f, indent=1)
        f.write("\n")
    with open("tests/data/nul_prompt_ids.txt", "w") as f:
        f.write(" ".join(map(str, tk.encode("a\0b", add_special_tokens=False).ids)) + "\n")
        f.write("# ids of the --raw prompt 'a\\0b' (HF tokenizers %s, %s; tests/golden/make_nul_cases.py)\n"
                % (tokenizers.__version__, SRC))


if __name__ == "__main__":
    main()
