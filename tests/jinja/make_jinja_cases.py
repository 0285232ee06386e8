#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# make_jinja_cases.py - writes tests/jinja/expected.json: what Python's jinja2, configured exactly as transformers
# configures it (transformers.utils.chat_template_utils._compile_jinja_template: ImmutableSandboxedEnvironment with
# trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson / raise_exception / strftime_now / dict / namespace),
# renders for every case of the corpus. tests/test_jinja.c renders the same cases with jinja.c and compares bytes.
#
# Cases:
#   templates/*.jinja x contexts/chat_*.json   real chat templates with chat contexts (messages, tools, ...)
#   snippets/*.txt                             small templates, separated by lines "#### name", rendered with
#                                              contexts/edge.json; a name starting with "unsupported-" marks a
#                                              template that jinja.c must reject cleanly (Python may render it)
# strftime_now sees the fixed time NOW (test_jinja.c sets GLM4V_JINJA_NOW to the same value).
# Run from the repository root: python3 tests/jinja/make_jinja_cases.py
import datetime
import json
import os
import sys

import jinja2
import transformers
import transformers.utils.chat_template_utils as ctu

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = "2025-07-26 12:34:56"


class FixedDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2025, 7, 26, 12, 34, 56)


ctu.datetime = FixedDatetime  # strftime_now reads datetime.now() from the module


def compile_template(src):
    fn = getattr(ctu, "_cached_compile_jinja_template", None) or ctu._compile_jinja_template
    fn = getattr(fn, "__wrapped__", fn)  # no lru_cache: the patched datetime is seen either way
    return fn(src)


def render(src, ctx):
    try:
        t = compile_template(src)
    except Exception as e:  # TemplateSyntaxError, or a SyntaxError of the generated Python code
        return {"error": f"parse: {type(e).__name__}: {e}"}
    try:
        return {"output": t.render(**ctx)}
    except Exception as e:  # any exception is an error the C side must also report
        return {"error": f"render: {type(e).__name__}: {e}"}


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def main():
    cases = []
    contexts = sorted(f for f in os.listdir(os.path.join(HERE, "contexts")) if f.startswith("chat_"))
    for tname in sorted(os.listdir(os.path.join(HERE, "templates"))):
        if not tname.endswith(".jinja"):
            continue
        src = read(os.path.join(HERE, "templates", tname))
        for cname in contexts:
            ctx = json.loads(read(os.path.join(HERE, "contexts", cname)))
            case = {"name": f"{tname} x {cname}", "template_file": f"templates/{tname}",
                    "context_file": f"contexts/{cname}"}
            case.update(render(src, ctx))
            cases.append(case)
    # with the messages passed through transformers' _alias_reasoning_fields first (jinja_alias_reasoning in C)
    alias_srcs = [(t, read(os.path.join(HERE, "templates", t))) for t in sorted(os.listdir(os.path.join(HERE, "templates")))
                  if t.startswith("glm") or t.startswith("qwen3")]
    alias_srcs.append(("inline", "{{ messages|tojson }}"))
    for tname, src in alias_srcs:
        for cname in ("chat_reasoning.json", "chat_multiturn_nothink.json"):
            ctx = json.loads(read(os.path.join(HERE, "contexts", cname)))
            ctx["messages"] = ctu._alias_reasoning_fields(ctx["messages"])
            case = {"name": f"alias_reasoning: {tname} x {cname}", "context_file": f"contexts/{cname}",
                    "alias_reasoning": True}
            if tname == "inline":
                case["template"] = src
            else:
                case["template_file"] = f"templates/{tname}"
            case.update(render(src, ctx))
            cases.append(case)
    edge_ctx = json.loads(read(os.path.join(HERE, "contexts", "edge.json")))
    for sname in sorted(os.listdir(os.path.join(HERE, "snippets"))):
        if not sname.endswith(".txt"):
            continue
        text = read(os.path.join(HERE, "snippets", sname))
        parts = text.split("\n#### ")
        if not parts[0].startswith("#### "):
            sys.exit(f"{sname}: must start with a '#### name' line")
        parts[0] = parts[0][5:]
        for part in parts:
            name, _, body = part.partition("\n")
            name = name.strip()
            case = {"name": f"{sname}: {name}", "template": body, "context_file": "contexts/edge.json"}
            if name.startswith("unsupported-"):
                case["c_must_fail"] = True
            case.update(render(body, edge_ctx))
            cases.append(case)
    # str.upper / lower / title / capitalize over the Unicode blocks jinja.c maps (large caseless blocks sampled)
    skip = (0xAA, 0xBA, 0x130, 0x149, 0x345, 0x3A2, 0x3A3, 0x390, 0x3B0, 0x38B, 0x38D)  # rejected by jinja.c
    blocks = [(0x20, 0x7E), (0xA0, 0x17F), (0x300, 0x36F), (0x386, 0x3CE), (0x400, 0x45F), (0x590, 0x6FF), (0x900, 0x97F),
              (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2190, 0x21FF), (0x2500, 0x257F),
              (0x3000, 0x30FF), (0x4E00, 0x4EFF), (0xAC00, 0xACFF), (0xFF01, 0xFFEF), (0x1F300, 0x1F3FF)]
    for a, b in blocks:
        text = "".join(chr(c) for c in range(a, b + 1) if c not in skip)
        body = "{% set s = " + json.dumps(text, ensure_ascii=False) + " %}{{ s|upper }}|{{ s|lower }}|{{ s.title() }}|" \
               "{{ s|capitalize }}|{{ s|title }}"
        case = {"name": f"unicode case U+{a:04X}..U+{b:04X}", "template": body, "context_file": "contexts/edge.json"}
        case.update(render(body, edge_ctx))
        cases.append(case)
    out = {"generator": "tests/jinja/make_jinja_cases.py", "jinja2": jinja2.__version__,
           "transformers": transformers.__version__, "now": NOW, "cases": cases}
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    nerr = sum("error" in c for c in cases)
    print(f"{len(cases)} cases ({nerr} expected errors) -> tests/jinja/expected.json")


if __name__ == "__main__":
    main()
