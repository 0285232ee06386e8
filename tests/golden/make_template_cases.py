#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# make_template_cases.py - references for the chat-template path (tests/cli_templates.sh, tests/test_template.c):
# conversations in OpenAI format, each rendered by transformers' processor.apply_chat_template with a real GLM-V chat
# template (tests/jinja/templates/, see tests/jinja/SOURCES.md) or glm4v.c's built-in one, on the tiny checkpoints of
# both architectures. For each case it writes into tests/data/templates/:
#   NAME.messages.json  the conversation as `glm4v --messages` reads it (image_url parts with local paths, a video as
#                       a frames folder, tool-call arguments as JSON strings, as OpenAI clients send them)
#   NAME.tools.json     the OpenAI tools (when the case has tools)
#   NAME.args           the glm4v arguments of the case (template, kwargs) on one line
#   NAME.prompt.txt     apply_chat_template(..., tokenize=False): what `--show-prompt` must print, byte for byte
#   NAME.ids.safetensors  input_ids of apply_chat_template(..., tokenize=True) (placeholders expanded by the processor;
#                       with a video, the processor called on that text with the frames, as apply_chat_template does
#                       after loading them): what `-n 0 --dump` must hold
# and cases.txt (one case name per line). Run from the repository root: python3 tests/golden/make_template_cases.py
import json
import os
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
import transformers
from transformers import AutoProcessor
from transformers.image_utils import load_image
from transformers.video_utils import VideoMetadata

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/data/templates"
TPL = "tests/jinja/templates"
IMG1, IMG2 = "tests/data/images/synth_200x150.png", "tests/data/images/synth_97x61.png"
FRAMES = "tests/data/video_frames"

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city, in °C",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}, "days": {"type": "integer", "default": 1.0}},
                                          "required": ["city"]}}},
    {"type": "function", "function": {"name": "zoom", "description": "Crop the image",
                                      "parameters": {"type": "object", "properties": {
                                          "box": {"type": "array", "items": {"type": "number"}}}}}},
]


def img(p):
    return {"type": "image_url", "image_url": {"url": p}}


def text(t):
    return {"type": "text", "text": t}


CONVS = {
    "system_text": [{"role": "system", "content": "You are a careful assistant."},
                    {"role": "user", "content": "What is 2 + 2? Answer in one word."}],
    "image": [{"role": "user", "content": [img(IMG1), text("Describe this picture.")]}],
    "two_images_multiturn": [
        {"role": "user", "content": [img(IMG1), img(IMG2), text("What changed between these two?")]},
        {"role": "assistant", "content": "The second one is smaller.", "reasoning_content": "Compare sizes."},
        {"role": "user", "content": [text("And the colours? Dites-le en français, s'il vous plaît.")]},
    ],
    "reasoning_history": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nThe user greets.\n</think>\n\nHello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "tools": [
        {"role": "system", "content": "Use the tools when they help."},
        {"role": "user", "content": "Weather in Paris for 3 days?"},
        {"role": "assistant", "content": None, "reasoning_content": "I should call the tool.",
         "tool_calls": [{"id": "call_0", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 3}"}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp\": [21.5, 19.0, 18.25]}"},
        {"role": "user", "content": "Thanks. Now zoom on the sky."},
    ],
    "video": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": FRAMES}}, text("What happens?")]}],
}

# (name, checkpoint, template file or None for the built-in one, conversation, tools?, kwargs)
CASES = [
    ("moe_builtin_system", "moe", None, "system_text", False, {}),
    ("moe_builtin_image_nothink", "moe", None, "image", False, {"enable_thinking": False}),
    ("moe_glm46v_two_images", "moe", f"{TPL}/glm-4.6v-style-glm-ocr.jinja", "two_images_multiturn", False, {}),
    ("moe_glm46v_tools", "moe", f"{TPL}/glm-4.6v-style-glm-ocr.jinja", "tools", True, {}),
    ("moe_glm46v_video_nothink", "moe", f"{TPL}/glm-4.6v-style-glm-ocr.jinja", "video", False,
     {"enable_thinking": False}),
    ("moe_glm46_reasoning", "moe", f"{TPL}/glm-4.6.jinja", "reasoning_history", False, {"enable_thinking": False}),
    ("moe_glm46_tools", "moe", f"{TPL}/glm-4.6.jinja", "tools", True, {}),
    ("dense_glm41v_image", "dense", f"{TPL}/glm-4.1v-9b-thinking.jinja", "image", False, {}),
    ("dense_glm41v_two_images", "dense", f"{TPL}/glm-4.1v-9b-thinking.jinja", "two_images_multiturn", False, {}),
    ("dense_glm41v_video", "dense", f"{TPL}/glm-4.1v-9b-thinking.jinja", "video", False, {}),
    ("dense_builtin_reasoning", "dense", None, "reasoning_history", False, {}),
    ("dense_builtin_tools_nothink", "dense", None, "tools", True, {"enable_thinking": False}),
]


def hf_messages(conv):
    """OpenAI messages as transformers takes them: image parts as {"type": "image", "path"}, video as
    {"type": "video"} (the frames are handed to the processor separately), tool-call arguments as objects."""
    out = []
    for m in conv:
        m = json.loads(json.dumps(m))
        if isinstance(m.get("content"), list):
            parts = []
            for p in m["content"]:
                if p["type"] == "image_url":
                    parts.append({"type": "image", "path": str(ROOT / p["image_url"]["url"])})
                elif p["type"] == "video_url":
                    parts.append({"type": "video"})
                else:
                    parts.append(p)
            m["content"] = parts
        for tc in m.get("tool_calls") or []:
            tc["function"]["arguments"] = json.loads(tc["function"]["arguments"])
        out.append(m)
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    procs = {k: AutoProcessor.from_pretrained(ROOT / f"weights/tiny-glm4v-{k}") for k in ("moe", "dense")}
    builtin = (ROOT / "templates/glm45v.jinja").read_text()
    names = []
    for name, ck, tpl, conv_name, with_tools, kwargs in CASES:
        proc = procs[ck]
        conv = CONVS[conv_name]
        template = (ROOT / tpl).read_text() if tpl else builtin
        msgs = hf_messages(conv)
        tools = TOOLS if with_tools else None
        prompt = proc.apply_chat_template(msgs, chat_template=template, tools=tools, add_generation_prompt=True,
                                          tokenize=False, **kwargs)
        if conv_name == "video":
            frames = [load_image(str(ROOT / FRAMES / f)) for f in sorted(os.listdir(ROOT / FRAMES))]
            n = len(frames)
            enc = proc(text=[prompt], videos=[frames], do_sample_frames=False,
                       video_metadata=[VideoMetadata(total_num_frames=n, fps=2.0, frames_indices=list(range(n)))])
        else:
            enc = proc.apply_chat_template(msgs, chat_template=template, tools=tools, add_generation_prompt=True,
                                           tokenize=True, return_dict=True, **kwargs)
        ids = np.asarray(enc["input_ids"]).reshape(-1).astype(np.int64)
        (OUT / f"{name}.messages.json").write_text(json.dumps(conv, indent=1, ensure_ascii=False) + "\n")
        args = [f"-m weights/tiny-glm4v-{ck}"]
        if tpl:
            args.append(f"--chat-template {tpl}")
        if with_tools:
            (OUT / f"{name}.tools.json").write_text(json.dumps(TOOLS, indent=1, ensure_ascii=False) + "\n")
            args.append(f"--tools tests/data/templates/{name}.tools.json")
        if kwargs:
            args.append("--chat-template-kwargs '" + json.dumps(kwargs) + "'")
        (OUT / f"{name}.args").write_text(" ".join(args) + "\n")
        (OUT / f"{name}.prompt.txt").write_bytes(prompt.encode("utf-8"))
        save_file({"input_ids": ids}, str(OUT / f"{name}.ids.safetensors"),
                  metadata={"transformers": transformers.__version__})
        names.append(name)
        print(f"{name}: {len(prompt)} chars, {len(ids)} ids", file=sys.stderr)
    (OUT / "cases.txt").write_text("".join(n + "\n" for n in names))


if __name__ == "__main__":
    main()
