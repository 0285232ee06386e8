#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cli_structure.sh - the structure docs/architecture.json describes holds in the code: the include graph of the
# sources has no cycle, no include crosses a "never" edge between parts (a header belongs to the part of its .c),
# and the front end (glm4v.c) defines no prefill, scatter or encode of its own (the engine's job).
cd "$(dirname "$0")/.." || exit 2
python3 - <<'PY'
import json, os, re, glob
arch = json.load(open("docs/architecture.json"))
part_of = {}
for name, p in arch["parts"].items():
    for f in p["is"]:
        part_of[f.rstrip("/")] = name
def part(path):
    if path in part_of: return part_of[path]
    top = path.split("/")[0]
    if top in part_of: return part_of[top]
    if path.endswith(".h") and path[:-2] + ".c" in part_of: return part_of[path[:-2] + ".c"]
    if path == "base.h": return part_of.get("util.c")
    return None
srcs = sorted(set(glob.glob("*.c") + glob.glob("*.h") + glob.glob("bench/*.c") + glob.glob("fuzz/*.c") + glob.glob("tools/*.c")))
inc = {}
for f in srcs:
    deps = []
    for m in re.finditer(r'^#include "([^"]+)"', open(f, errors="replace").read(), re.M):
        d = os.path.normpath(os.path.join(os.path.dirname(f), m.group(1)))
        if os.path.exists(d): deps.append(d)
    inc[f] = deps
ok = True
# cycles (depth-first search)
state = {}
def visit(f, stack):
    global ok
    state[f] = 1
    for d in inc.get(f, []):
        if state.get(d) == 1:
            print("not ok - include cycle: " + " -> ".join(stack + [f, d])); ok = False
        elif d not in state: visit(d, stack + [f])
    state[f] = 2
for f in srcs:
    if f not in state: visit(f, [])
print(("ok" if ok else "not ok") + f" - the include graph of {len(srcs)} files has no cycle")
never = {(a, b): why for a, b, why in arch["never"]}
bad = [(f, d, never[(part(f), part(d))]) for f in srcs for d in inc[f] if (part(f), part(d)) in never]
for f, d, why in bad: print(f"not ok - {f} includes {d}: never {part(f)} -> {part(d)} ({why})")
print(("ok" if not bad else "not ok") + f" - none of the {len(never)} never-dependencies of docs/architecture.json is included")
unplaced = [f for f in srcs if f.endswith(".c") and part(f) is None]
print(("ok" if not unplaced else "not ok") + " - every source file belongs to a part of docs/architecture.json" + (": missing " + ", ".join(unplaced) if unplaced else ""))
cli = open("glm4v.c").read()
defs = re.findall(r'^(?:static\s+)?[A-Za-z_][\w\s\*]*?\b(\w*(?:prefill|scatter|encode)\w*)\s*\([^;]*\)\s*\{', cli, re.M)
print(("ok" if not defs else "not ok") + " - glm4v.c defines no prefill, scatter or encode function" + (": " + ", ".join(defs) if defs else ""))
PY
