#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# server_check.py - the HTTP cases of tests/cli_server.sh against a running `glm4v serve` (standard library only; the
# `openai` client too when it is installed). Expected answers come from the CLI (`glm4v -p ... --temp 0`, its --dump
# logits), never from the server itself. Prints "ok - ..." / "not ok - ..." lines.
#   server_check.py URL KEY GLM4V MODEL IMAGE MEDIA_DIR TMPDIR
import base64
import http.client
import json
import math
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from array import array

URL, KEY, GLM4V, MODEL, IMAGE, MEDIA_DIR, TMP = sys.argv[1:8]
u = urllib.parse.urlparse(URL)
HOST, PORT = u.hostname, u.port
AUTH = {"Authorization": "Bearer " + KEY}


def ok(cond, msg):
    print(("ok - " if cond else "not ok - ") + msg, flush=True)
    return cond


def request(method, path, body=None, headers=None, raw=None, timeout=60):
    """(status, headers dict, body bytes)"""
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    h = dict(AUTH)
    h.update(headers or {})
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, out


def chat(body, path="/v1/chat/completions"):
    st, _, out = request("POST", path, body)
    return st, json.loads(out)


def stream(body, path="/v1/chat/completions"):
    """the parsed chunks of an SSE answer, and whether it ended with [DONE]"""
    st, h, out = request("POST", path, dict(body, stream=True))
    chunks, done = [], False
    for ev in out.decode().split("\n\n"):
        if not ev.strip():
            continue
        assert ev.startswith("data: "), ev
        if ev == "data: [DONE]":
            done = True
        else:
            chunks.append(json.loads(ev[6:]))
    return st, h, chunks, done


def joined(chunks, field):
    return unmark("".join(c["choices"][0]["delta"].get(field, "") for c in chunks if c.get("choices")))


def cli(prompt, n, extra=()):
    """the CLI's greedy answer (think markers removed: the server splits them out)"""
    out = subprocess.run([GLM4V, "-m", MODEL, "-p", prompt, "-n", str(n), "--temp", "0", "-q", *extra],
                         capture_output=True, timeout=120)
    text = out.stdout.decode()
    assert text.endswith("\n")
    return text[:-1].replace("<think>", "").replace("</think>", "")


def dump_logits(prompt, n, extra=()):
    """generated_logits [n, V] of the CLI's --dump, as lists of floats"""
    path = os.path.join(TMP, "dump.safetensors")
    subprocess.run([GLM4V, "-m", MODEL, "-p", prompt, "-n", str(n), "--temp", "0", "-q", "--dump", path, *extra],
                   check=True, capture_output=True, timeout=120)
    with open(path, "rb") as f:
        data = f.read()
    hl = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + hl])
    t = hdr["generated_logits"]
    a, b = t["data_offsets"]
    vals = array("f")
    vals.frombytes(data[8 + hl + a:8 + hl + b])
    rows, V = t["shape"]
    return [vals[i * V:(i + 1) * V] for i in range(rows)]


def log_softmax(row):
    mx = max(row)
    lse = mx + math.log(math.fsum(math.exp(x - mx) for x in row))
    return [x - lse for x in row]


MARKERS = ("<|begin_of_box|>", "<|end_of_box|>", "<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>",
           "<arg_value>", "</arg_value>")


def unmark(t):
    """the text without the markers the server keeps inline and the CLI's stdout leaves out"""
    for m in MARKERS:
        t = t.replace(m, "")
    return t


def answer(r):
    m = r["choices"][0]["message"]
    return unmark((m.get("reasoning_content") or "") + m["content"])


def metric(name):
    st, _, out = request("GET", "/metrics")
    for line in out.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


with open(IMAGE, "rb") as f:
    IMG_URI = "data:image/png;base64," + base64.b64encode(f.read()).decode()

# ---------------------------------------------------------------------------- auth, routes, errors
st, _, _ = request("GET", "/health", headers={"Authorization": ""})
ok(st == 200, "/health answers 200 without the key")
st, h, out = request("GET", "/v1/models", headers={"Authorization": ""})
ok(st == 401 and json.loads(out)["error"]["code"] == 401, "/v1/models without the key: 401 (%d)" % st)
st, _, _ = request("POST", "/v1/chat/completions", {"messages": []}, headers={"Authorization": "Bearer wrong"})
ok(st == 401, "wrong key: 401 (%d)" % st)
st, _, _ = request("GET", "/metrics", headers={"Authorization": ""})
ok(st == 401, "/metrics needs the key (%d)" % st)
st, _, out = request("GET", "/v1/models")
models = json.loads(out)
ok(st == 200 and models["data"][0]["id"] == "tiny", "/v1/models lists --served-model-name (%s)" % out[:80])
st, _, out = request("GET", "/nope")
e = json.loads(out)["error"]
ok(st == 404 and set(e) == {"message", "type", "param", "code"}, "unknown path: 404 in OpenAI's error shape")

MSG = [{"role": "user", "content": "Hello"}]
cases = [
    ("malformed JSON", b'{"messages": [', None),
    ("a JSON list", b'[1, 2]', None),
    ("data after the JSON object", b'{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 1}garbage', None),
    ("two JSON objects", b'{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 1} {"n": 2}', None),
    ("temperature as a string", {"messages": MSG, "temperature": "hot"}, "temperature"),
    ("n = 2", {"messages": MSG, "n": 2}, "n"),
    ("top_logprobs 21", {"messages": MSG, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ("top_logprobs without logprobs", {"messages": MSG, "top_logprobs": 2}, "top_logprobs"),
    ("tool_choice naming a function not in tools", {"messages": MSG, "tools": [{"type": "function", "function": {
        "name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice"),
    ("tool_choice required without tools", {"messages": MSG, "tool_choice": "required"}, "tool_choice"),
    ("max_tokens 0", {"messages": MSG, "max_tokens": 0}, "max_tokens"),
    ("max_tokens huge", {"messages": MSG, "max_tokens": 10 ** 12}, "max_tokens"),
    ("top_p 0", {"messages": MSG, "top_p": 0}, "top_p"),
    ("stream as a string", {"messages": MSG, "stream": "yes"}, "stream"),
    ("no messages", {"model": "x"}, "messages"),
    ("role 'robot'", {"messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
    ("content a number", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("http image URL", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}]}]},
     "messages[0].content[0].image_url"),
    ("path outside --allowed-media-path", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]}, "messages[0].content[0].image_url"),
    ("path escaping by ..", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "../../../etc/hostname"}}]}]}, "messages[0].content[0].image_url"),
    ("bad base64", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]}, "messages[0].content[0].image_url"),
    ("undecodable image bytes", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAAAAAA"}}]}]},
     "messages[0].content[0].image_url"),
    ("65 images", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}] * 65}]}, "messages[0].content[64].image_url"),
    ("5000 images", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}] * 5000}]},
     "messages[0].content[64].image_url"),
    ("n = 10^9", {"messages": MSG, "n": 10 ** 9}, "n"),
    ("max_tokens 2^63", {"messages": MSG, "max_tokens": 2 ** 63}, "max_tokens"),
    ("\\u0000 in a string", b'{"messages": [{"role": "user", "content": "a\\u0000b"}]}', None),
    ("invalid UTF-8", b'{"messages": [{"role": "user", "content": "a\xff\xfeb"}]}', "messages[0].content"),
    ("invalid UTF-8 in a tool (rendered into the prompt)", b'{"messages": [{"role": "user", "content": "a"}], '
     b'"tools": [{"type": "function", "function": {"name": "f", "description": "\xff"}}]}', None),
    ("invalid UTF-8 in chat_template_kwargs", b'{"messages": [{"role": "user", "content": "a"}], '
     b'"chat_template_kwargs": {"x": "\xc3"}}', None),
    ("JSON nested 5000 deep", b'{"messages": ' + b'[' * 5000 + b']' * 5000 + b'}', None),
    ("<|image|> typed without an image", {"messages": [{"role": "user", "content": "<|image|>"}]}, "messages"),
    ("prompt longer than --ctx-size", {"messages": [{"role": "user", "content": "word " * 700}]}, "messages"),
]
for name, body, param in cases:
    raw = body if isinstance(body, bytes) else None
    st, _, out = request("POST", "/v1/chat/completions", None if raw else body, raw=raw)
    try:
        e = json.loads(out)["error"]
    except Exception:
        e = {}
    good = st == 400 and e.get("code") == 400 and (param is None or e.get("param") == param)
    ok(good, "400 for %s (%d, param %s: %s)" % (name, st, e.get("param"), e.get("message", out[:100])))
# a request whose images pass the context is refused at the first image that does, before the others are decoded
# (64 images of 100 M pixels each took minutes of preprocessing, holding up every other request, before the 400)
def png(w, h):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = zlib.compress(b"".join(b"\0" + bytes([(x * 7 + y) & 255 for x in range(w * 3)]) for y in range(h)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", raw) + chunk(b"IEND", b"")
BIG = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png(700, 700)).decode()}}
st, _, out = request("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": [
    BIG, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAAAAAA"}}, {"type": "text", "text": "x"}]}]})
e = json.loads(out)["error"]
ok(st == 400 and e["param"] == "messages[0].content[0].image_url" and "625 visual tokens" in e["message"] and
   "--ctx-size" in e["message"], "an image over the context: refused at it, the images after it not decoded (%s)" %
   e["message"][:120])
# a path outside --allowed-media-path is refused the same way whether it exists or not (no probing of the file system)
outside = []
for url in ("file:///etc/passwd", "file:///etc/glm4v-no-such-file", "../../../../../etc/glm4v-no-such-file"):
    st, _, out = request("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}]})
    outside.append((st, json.loads(out)["error"]["message"].replace(url.replace("file://", ""), "PATH")))
ok(all(x == (400, "messages[0].content[0].image_url: PATH is outside --allowed-media-path") for x in outside),
   "a missing file outside --allowed-media-path: the same 400 as an existing one (%s)" % outside[1][1])
for path in ("/v1/completions", "/tokenize", "/detokenize"):
    st, _, out = request("POST", path, raw=b'{"prompt": "a", "content": "a", "tokens": [1], "max_tokens": 1}}')
    ok(st == 400 and "data after its end" in json.loads(out)["error"]["message"], "%s: data after the JSON body: 400" % path)
# a request's invalid bytes quoted in an error message become '?', the message is kept (it was "bad request")
st, _, out = request("POST", "/v1/chat/completions", raw=b'{"messages": [{"role": "r\xc3\xa9le\xff", "content": "x"}]}')
ok(st == 400 and json.loads(out)["error"]["message"] == "messages[0].role 'r\u00e9le?' is not system, user, assistant or tool",
   "invalid UTF-8 quoted in an error: the message kept, the bad byte as '?' (%s)" % json.loads(out)["error"]["message"])
st, _, out = request("POST", "/v1/completions", {"prompt": 5})
ok(st == 400 and json.loads(out)["error"]["param"] == "prompt", "/v1/completions: prompt must be a string")
# fields that would change the answer and are not implemented are refused, not ignored
for k, v in (("echo", True), ("best_of", 2), ("suffix", "}")):
    st, _, out = request("POST", "/v1/completions", {"prompt": "a", "max_tokens": 1, k: v})
    ok(st == 400 and json.loads(out)["error"]["param"] == k, "/v1/completions: %s %s is a 400 naming it" % (k, v))
st, _, out = request("POST", "/v1/completions", {"prompt": "a", "max_tokens": 1, "echo": False, "best_of": 1, "suffix": ""})
ok(st == 200, "/v1/completions: echo false, best_of 1, an empty suffix are read (%d)" % st)
def raw_status(head, body=b""):
    """send raw bytes, return the status line's code (the server may answer before reading the body)"""
    s = socket.create_connection((HOST, PORT), timeout=30)
    try:
        s.sendall(head)
        for i in range(0, len(body), 65536):
            s.sendall(body[i:i + 65536])
    except OSError:
        pass
    data = b""
    while b"\r\n" not in data:
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    return int(data.split(b" ")[1]) if data.startswith(b"HTTP/") else 0


HDR = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
st = raw_status(HDR + b"Content-Length: %d\r\n\r\n" % (2 << 20))
ok(st == 413, "413 for a Content-Length over --max-body, before the body is read (%d)" % st)
big = b"{" + b" " * (2 << 20) + b"}"
chunked = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 65536]), big[i:i + 65536]) for i in range(0, len(big), 65536))
st = raw_status(HDR + b"Transfer-Encoding: chunked\r\n\r\n", chunked + b"0\r\n\r\n")
ok(st == 413, "413 for a chunked body that grows over --max-body (%d)" % st)
st, h, out = request("GET", "/v1/chat/completions")
ok(st == 405 and h.get("allow") == "POST", "GET on a POST endpoint: 405 with Allow: POST (%d, %s)" % (st, h.get("allow")))
st, h, out = request("DELETE", "/v1/models")
ok(st == 405 and h.get("allow") == "GET, HEAD", "DELETE on a GET endpoint: 405 with Allow: GET, HEAD (%d)" % st)
# a client that sends half a body and goes away, and one that sends nothing: the server carries on
s = socket.create_connection((HOST, PORT))
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
          b"\r\nContent-Length: 1000\r\n\r\n{\"messages\"")
s.close()
s2 = socket.create_connection((HOST, PORT))
st, _, _ = request("GET", "/health")
ok(st == 200, "a truncated body and an idle connection leave the server answering")
s2.close()
# a slow client: a whole request trickled 8 bytes at a time (about 1 s) is answered, and others are answered meanwhile
body = json.dumps({"messages": MSG, "max_tokens": 2, "temperature": 0}).encode()
req = HDR + b"Connection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
slow = {}


def trickle():
    s = socket.create_connection((HOST, PORT), timeout=60)
    for i in range(0, len(req), 8):
        s.sendall(req[i:i + 8])
        time.sleep(0.03)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    slow["reply"] = data


th = threading.Thread(target=trickle)
th.start()
time.sleep(0.2)
t0 = time.time()
st, _, _ = request("GET", "/health")
others = st == 200 and time.time() - t0 < 5 and th.is_alive()
th.join(60)
head, _, rest = slow.get("reply", b"").partition(b"\r\n\r\n")
try:
    good = head.startswith(b"HTTP/1.1 200") and "choices" in json.loads(rest)
except ValueError:
    good = False
ok(others and good, "a slow client trickling its request is answered, and /health answers meanwhile (%s)" % head[:20])

# ---------------------------------------------------------------------------- answers equal the CLI's
N = 12
st, r = chat({"messages": [{"role": "user", "content": "Describe the weather today."}], "max_tokens": N,
              "temperature": 0, "user": "ignored", "presence_penalty": 0, "response_format": {"type": "text"}})
want = cli("Describe the weather today.", N)
ok(st == 200 and answer(r) == want, "text: non-streamed answer == CLI's (%r vs %r)" % (answer(r)[:60], want[:60]))
u_ = r.get("usage", {})
ok(u_.get("completion_tokens") == N and u_["total_tokens"] == u_["prompt_tokens"] + N and
   "cached_tokens" in u_.get("prompt_tokens_details", {}), "usage: prompt/completion/total/cached_tokens")
t = r.get("timings", {})
ok(all(k in t for k in ("cache_n", "prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second", "predicted_n",
                        "predicted_ms", "predicted_per_token_ms", "predicted_per_second")), "timings: llama-server's fields")
ok(r["choices"][0]["finish_reason"] == "length" and r["system_fingerprint"].startswith("glm4v-") and
   r["object"] == "chat.completion", "finish_reason length, system_fingerprint, object")
st, h, chunks, done = stream({"messages": [{"role": "user", "content": "Describe the weather today."}],
                              "max_tokens": N, "temperature": 0, "stream_options": {"include_usage": True}})
text = joined(chunks, "reasoning_content") + joined(chunks, "content")
ok(st == 200 and h.get("content-type", "") == "text/event-stream; charset=utf-8",
   "stream: 200 text/event-stream; charset=utf-8 (without it requests' iter_lines(decode_unicode=True) reads Latin-1)")
ok(done and text == answer(r), "stream: deltas concatenate to the non-streamed answer (%r)" % text[:60])
ok(chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == N and
   chunks[-2]["choices"][0]["finish_reason"] == "length", "stream: finish chunk, then usage (include_usage), then [DONE]")
ok(all(c["object"] == "chat.completion.chunk" for c in chunks), "stream: chat.completion.chunk objects")
ok(chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""} and
   all("role" not in c["choices"][0]["delta"] for c in chunks[1:] if c["choices"]),
   "stream: the first chunk carries the role (delta {role: assistant, content: ''}), no other does")

img_msg = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMG_URI}},
                                        {"type": "text", "text": "What is in this picture?"}]}]
st, r = chat({"messages": img_msg, "max_tokens": N, "temperature": 0})
want_img = cli("What is in this picture?", N, ["-i", IMAGE])
ok(st == 200 and answer(r) == want_img, "image (data: URI): answer == CLI's -i (%r vs %r)" % (answer(r)[:50], want_img[:50]))
st, h, chunks, done = stream({"messages": img_msg, "max_tokens": N, "temperature": 0})
ok(done and joined(chunks, "reasoning_content") + joined(chunks, "content") == want_img, "image: streamed == CLI's")
local = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": os.path.relpath(IMAGE, MEDIA_DIR)}},
                                      {"type": "text", "text": "What is in this picture?"}]}]
st, r2 = chat({"messages": local, "max_tokens": N, "temperature": 0})
ok(st == 200 and answer(r2) == want_img, "image by a path under --allowed-media-path == CLI's (%d)" % st)
furl = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file://" + os.path.abspath(IMAGE)}},
                                     {"type": "text", "text": "What is in this picture?"}]}]
st, r2 = chat({"messages": furl, "max_tokens": N, "temperature": 0})
ok(st == 200 and answer(r2) == want_img, "image by a file:// URL == CLI's (%d)" % st)
# a file:// URL's %XX escapes are decoded (Python's Path.as_uri() writes a space as %20)
esc = "file://" + os.path.abspath(IMAGE).replace("synth_", "%73ynth%5F")
st, r2 = chat({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": esc}},
                                                         {"type": "text", "text": "What is in this picture?"}]}],
               "max_tokens": N, "temperature": 0})
ok(st == 200 and answer(r2) == want_img, "image by a percent-encoded file:// URL == CLI's (%d)" % st)

IMG2 = os.path.join(MEDIA_DIR, "images", "synth_97x61.png")
two = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMG_URI}},
                                    {"type": "image_url", "image_url": {"url": os.path.relpath(IMG2, MEDIA_DIR)}},
                                    {"type": "text", "text": "Compare them."}]}]
hits0 = metric("glm4v_media_cache_hits_total")
st, r = chat({"messages": two, "max_tokens": 4, "temperature": 0, "logprobs": True, "top_logprobs": 3})
rows = dump_logits("Compare them.", 4, ["-i", IMAGE, "-i", IMG2])
good = st == 200 and len(r["choices"][0]["logprobs"]["content"]) == 4
for i, e in enumerate(r["choices"][0]["logprobs"]["content"] if good else []):
    ref = sorted(log_softmax(rows[i]), reverse=True)
    good &= all(abs(e["top_logprobs"][k]["logprob"] - ref[k]) < 1e-9 for k in range(3))
ok(good, "two images (the first from the media cache, the second encoded alone): logprobs == CLI -i -i --dump")
ok(metric("glm4v_media_cache_hits_total") > hits0, "the same image bytes again: features from the media cache")

vid = [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "video_frames"}},
                                    {"type": "text", "text": "What happens?"}]}]
st, r = chat({"messages": vid, "max_tokens": 8, "temperature": 0})
want = cli("What happens?", 8, ["--video", os.path.join(MEDIA_DIR, "video_frames")])
ok(st == 200 and answer(r) == want, "video (a frames folder under --allowed-media-path) == CLI --video (%d)" % st)

st, r = chat({"messages": [{"role": "system", "content": "You are terse."},
                           {"role": "user", "content": "Name a colour."}], "max_tokens": N, "temperature": 0,
              "chat_template_kwargs": {"enable_thinking": False}})
want = cli("Name a colour.", N, ["--system", "You are terse.", "--no-think"])
ok(st == 200 and answer(r) == want and not r["choices"][0]["message"].get("reasoning_content"),
   "system + enable_thinking false == CLI --system --no-think, no reasoning")

raw = "[gMASK]<sop><|user|>\nHi<|assistant|>"
st, r = chat({"prompt": raw, "max_tokens": 9, "temperature": 0}, "/v1/completions")
want = cli(raw, 9, ["--raw"])
ok(st == 200 and unmark(r["choices"][0]["text"]) == want and r["object"] == "text_completion",
   "/v1/completions: raw prompt == CLI --raw (%r)" % r["choices"][0]["text"][:40] if st == 200 else "completions %d" % st)
st, _, out = request("POST", "/tokenize", {"content": raw})
st, r2 = chat({"prompt": json.loads(out)["tokens"], "max_tokens": 9, "temperature": 0}, "/v1/completions")
ok(st == 200 and unmark(r2["choices"][0]["text"]) == want, "/v1/completions: the prompt as token ids (from /tokenize) == text")
st, r2 = chat({"prompt": [10 ** 9], "max_tokens": 2}, "/v1/completions")
ok(st == 400 and r2["error"]["param"] == "prompt", "/v1/completions: an id outside the vocabulary is a 400")
st, h, chunks, done = stream({"prompt": raw, "max_tokens": 9, "temperature": 0}, "/v1/completions")
ok(done and unmark("".join(c["choices"][0]["text"] for c in chunks if c["choices"])) == want,
   "/v1/completions: streamed")
# legacy logprobs: the streamed chunks' tokens and text_offset run on as the whole answer's (a stop string holding
# text back, or a token ending inside a UTF-8 character, does not shift them)
q = {"prompt": raw, "max_tokens": 12, "temperature": 0, "logprobs": 1}
st, whole = chat(q, "/v1/completions")
for extra in ({}, {"stop": whole["choices"][0]["text"][4:8] + "\x01"}):
    st, h, chunks, done = stream(dict(q, **extra), "/v1/completions")
    lps = [c["choices"][0]["logprobs"] for c in chunks if c["choices"] and c["choices"][0].get("logprobs")]
    ok([o for l in lps for o in l["text_offset"]] == whole["choices"][0]["logprobs"]["text_offset"] and
       [t for l in lps for t in l["tokens"]] == whole["choices"][0]["logprobs"]["tokens"],
       "/v1/completions: streamed logprobs%s: tokens and text_offset == the whole answer's %s" %
       (" with a stop string" if extra else "", whole["choices"][0]["logprobs"]["text_offset"]))

# grounding boxes stay inline: logit_bias makes the model write <|begin_of_box|> twice, then text
st, _, out = request("POST", "/tokenize", {"content": "<|begin_of_box|>"})
box = json.loads(out)["tokens"]
st, r = chat({"prompt": raw, "max_tokens": 2, "temperature": 0, "logit_bias": {str(box[0]): 100}}, "/v1/completions")
ok(len(box) == 1 and st == 200 and r["choices"][0]["text"] == "<|begin_of_box|>" * 2,
   "logit_bias; grounding-box markers stay inline in the text (%r)" % (r["choices"][0]["text"] if st == 200 else st))
st, r = chat({"prompt": raw, "max_tokens": 2, "logit_bias": {"x": 1}}, "/v1/completions")
ok(st == 400 and r["error"]["param"] == "logit_bias", "logit_bias with a key that is not an id: 400")

# ---------------------------------------------------------------------------- logprobs
K = 6
st, r = chat({"messages": [{"role": "user", "content": "Count to five."}], "max_tokens": K, "temperature": 0,
              "logprobs": True, "top_logprobs": 5})
rows = dump_logits("Count to five.", K)
lp = r["choices"][0]["logprobs"]["content"]
good = len(lp) == K
for i in range(min(K, len(lp))):
    ref = log_softmax(rows[i])
    order = sorted(range(len(ref)), key=lambda j: (-ref[j], j))[:5]
    good &= abs(lp[i]["logprob"] - ref[order[0]]) < 1e-9 # greedy: the chosen token is the best one
    for k in range(5):
        good &= abs(lp[i]["top_logprobs"][k]["logprob"] - ref[order[k]]) < 1e-9
ok(good, "logprobs and top_logprobs == log_softmax of the CLI --dump generated_logits (first %d tokens)" % K)
st, h, chunks, done = stream({"messages": [{"role": "user", "content": "Count to five."}], "max_tokens": K,
                              "temperature": 0, "logprobs": True, "top_logprobs": 5})
slp = [e for c in chunks if c["choices"] and c["choices"][0].get("logprobs") for e in c["choices"][0]["logprobs"]["content"]]
ok([e["logprob"] for e in slp] == [e["logprob"] for e in lp], "stream: the same logprobs, chunk by chunk")
# logprobs without alternatives (no top_logprobs; completions' logprobs 0): the chosen tokens' only (add_logprobs
# wrote top[-1] on the stack when none were asked: make test-asan's UBSan stops the server there)
st, r = chat({"messages": [{"role": "user", "content": "Count to five."}], "max_tokens": K, "temperature": 0,
              "logprobs": True})
lp0 = r["choices"][0]["logprobs"]["content"] if st == 200 else []
ok([e["logprob"] for e in lp0] == [e["logprob"] for e in lp] and all(e["top_logprobs"] == [] for e in lp0),
   "logprobs without top_logprobs: the chosen tokens' logprobs, top_logprobs [] (%d)" % st)
st, r = chat({"prompt": raw, "max_tokens": 3, "temperature": 0, "logprobs": 0}, "/v1/completions")
ok(st == 200 and r["choices"][0]["logprobs"]["top_logprobs"] == [{}, {}, {}],
   "/v1/completions logprobs 0: token_logprobs without alternatives (%d)" % st)

# ---------------------------------------------------------------------------- stop strings
st, r = chat({"messages": [{"role": "user", "content": "Describe the weather today."}], "max_tokens": N, "temperature": 0})
full = r["choices"][0]["message"]["content"]
stop = full[len(full) // 2:len(full) // 2 + 3] if len(full) > 6 else None
if stop:
    st, r = chat({"messages": [{"role": "user", "content": "Describe the weather today."}], "max_tokens": N,
                  "temperature": 0, "stop": [stop]})
    ok(r["choices"][0]["message"]["content"] == full[:full.index(stop)] and r["choices"][0]["finish_reason"] == "stop",
       "stop string: the answer ends before it, finish_reason stop")
    st, h, chunks, done = stream({"messages": [{"role": "user", "content": "Describe the weather today."}],
                                  "max_tokens": N, "temperature": 0, "stop": stop})
    ok(joined(chunks, "content") == full[:full.index(stop)], "stop string: streamed the same")

# ---------------------------------------------------------------------------- tokenize
st, _, out = request("POST", "/tokenize", {"content": "Hello world"})
toks = json.loads(out)["tokens"]
st2, _, out2 = request("POST", "/detokenize", {"tokens": toks})
ok(st == 200 and st2 == 200 and json.loads(out2)["content"] == "Hello world", "/tokenize + /detokenize round trip")
st, _, out = request("POST", "/tokenize", {"content": "Hi", "with_pieces": True})
ok(st == 200 and "piece" in json.loads(out)["tokens"][0], "/tokenize with_pieces")
st, _, _ = request("POST", "/detokenize", {"tokens": [10 ** 9]})
ok(st == 400, "/detokenize: an id outside the vocabulary is a 400")

# ---------------------------------------------------------------------------- prefix cache
X = {"messages": [{"role": "system", "content": "You answer questions about the weather in great detail."},
                  {"role": "user", "content": "Is it raining?"}], "max_tokens": N, "temperature": 0}
st, a = chat(X)
st, b = chat(X)
ok(b["usage"]["prompt_tokens_details"]["cached_tokens"] == b["usage"]["prompt_tokens"] - 1 and answer(a) == answer(b),
   "the same request again: cached_tokens = prompt - 1 (%d), same answer" % b["usage"]["prompt_tokens_details"]["cached_tokens"])
Y = {"messages": [X["messages"][0], {"role": "user", "content": "Is it windy?"}], "max_tokens": N, "temperature": 0}
st, y = chat(Y)
want_y = cli("Is it windy?", N, ["--system", X["messages"][0]["content"]])
ok(y["usage"]["prompt_tokens_details"]["cached_tokens"] > 0 and answer(y) == want_y,
   "a shared prefix: cached_tokens %d > 0, answer == the cold CLI run" % y["usage"]["prompt_tokens_details"]["cached_tokens"])
ok(y["timings"]["cache_n"] == y["usage"]["prompt_tokens_details"]["cached_tokens"] and
   y["timings"]["prompt_n"] == y["usage"]["prompt_tokens"] - y["timings"]["cache_n"], "timings: cache_n and prompt_n")
# a two-turn chat about a picture, as `glm4v --chat` runs it: turn 2 re-sends turn 1 (the image too) and reuses its
# KV cache and the image's features; both answers equal the CLI chat's
proc = subprocess.run([GLM4V, "-m", MODEL, "--chat", "-n", "8", "--temp", "0", "-q"], capture_output=True, timeout=120,
                      input=("/image %s\nWhat is in this picture?\nAnd the colours?\n" % IMAGE).encode())
lines = proc.stdout.decode().split("\n")
if len(lines) == 3 and lines[2] == "":
    w1, w2 = [x.replace("<think>", "").replace("</think>", "") for x in lines[:2]]
    h0 = metric("glm4v_media_cache_hits_total")
    st, t1 = chat({"messages": img_msg, "max_tokens": 8, "temperature": 0})
    turn2 = img_msg + [{"role": "assistant", "content": t1["choices"][0]["message"]["content"]},
                       {"role": "user", "content": "And the colours?"}]
    st, t2 = chat({"messages": turn2, "max_tokens": 8, "temperature": 0})
    c2 = t2["usage"]["prompt_tokens_details"]["cached_tokens"]
    ok(answer(t1) == w1 and answer(t2) == w2, "two-turn chat with an image == glm4v --chat (%r, %r)" % (answer(t2), w2))
    ok(c2 >= t1["usage"]["prompt_tokens"] and metric("glm4v_media_cache_hits_total") >= h0 + 2,
       "turn 2 reuses turn 1's KV cache (%d cached of %d) and the image's features" % (c2, t2["usage"]["prompt_tokens"]))
else:
    print("# glm4v --chat answers span several lines: the two-turn comparison is skipped")

# the same text with another image must not reuse the first image's cache
st, c1 = chat({"messages": img_msg, "max_tokens": 4, "temperature": 0})
other = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64," +
          base64.b64encode(open(os.path.join(MEDIA_DIR, "images", "synth_97x61.png"), "rb").read()).decode()}},
          {"type": "text", "text": "What is in this picture?"}]}] if os.path.exists(
    os.path.join(MEDIA_DIR, "images", "synth_97x61.png")) else None
if other:
    st, c2 = chat({"messages": other, "max_tokens": 4, "temperature": 0})
    cached = c2["usage"]["prompt_tokens_details"]["cached_tokens"]
    ok(cached < 10, "another image after the same text: its tokens are not taken from the cache (cached %d)" % cached)

# ---------------------------------------------------------------------------- batch invariance
reqs = []
for i in range(8):
    m = img_msg if i % 3 == 0 else [{"role": "user", "content": "Question number %d: %s?" % (i, "why " * i)}]
    reqs.append({"messages": m, "max_tokens": 6 + i, "temperature": 0, "logprobs": True, "top_logprobs": 2,
                 "stream": i % 2 == 1})
alone = []
for q in reqs:
    if q["stream"]:
        _, _, ch, _ = stream(q)
        alone.append((joined(ch, "reasoning_content") + joined(ch, "content"),
                      [e["logprob"] for c in ch if c["choices"] and c["choices"][0].get("logprobs")
                       for e in c["choices"][0]["logprobs"]["content"]]))
    else:
        _, r = chat(q)
        alone.append((answer(r), [e["logprob"] for e in r["choices"][0]["logprobs"]["content"]]))
together = [None] * 8


def worker(i):
    q = reqs[i]
    if q["stream"]:
        _, _, ch, _ = stream(q)
        together[i] = (joined(ch, "reasoning_content") + joined(ch, "content"),
                       [e["logprob"] for c in ch if c["choices"] and c["choices"][0].get("logprobs")
                        for e in c["choices"][0]["logprobs"]["content"]])
    else:
        _, r = chat(q)
        together[i] = (answer(r), [e["logprob"] for e in r["choices"][0]["logprobs"]["content"]])


ths = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
[t.start() for t in ths]
[t.join(120) for t in ths]
ok(together == alone, "batch invariance: 8 concurrent mixed requests (text/image, streamed or not) == each alone, "
   "tokens and logprobs")

# ---------------------------------------------------------------------------- disconnect
gen0, canc0 = metric("glm4v_generated_tokens_total"), metric("glm4v_requests_cancelled_total")
s = socket.create_connection((HOST, PORT))
body = json.dumps({"messages": [{"role": "user", "content": "Go on forever."}], "max_tokens": 3000, "stream": True,
                   "temperature": 0, "ignore_eos": True}).encode()
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
          b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
got = b""
while got.count(b"data: ") < 2:
    got += s.recv(4096)
s.close()
busy = None
for _ in range(100):
    busy = metric("glm4v_slots_busy")
    if busy == 0:
        break
    time.sleep(0.05)
gen1, canc1 = metric("glm4v_generated_tokens_total"), metric("glm4v_requests_cancelled_total")
ok(busy == 0, "client gone mid-stream: glm4v_slots_busy back to 0")
ok(canc1 == canc0 + 1, "the abandoned request was cancelled (after %d of about 490 tokens)" % (gen1 - gen0))

# ---------------------------------------------------------------------------- metrics
st, h, out = request("GET", "/metrics")
names = ["glm4v_requests_total", "glm4v_prompt_tokens_total", "glm4v_generated_tokens_total", "glm4v_queue_depth",
         "glm4v_slots_busy", "glm4v_cache_hit_tokens_total", "glm4v_prompt_tokens_per_second",
         "glm4v_decode_tokens_per_second"]
ok(st == 200 and all(("\n%s " % n) in "\n" + out.decode() for n in names), "/metrics: Prometheus text with " + ", ".join(names))
ok(metric("glm4v_cache_hit_tokens_total") > 0, "/metrics: cache hits counted")

# ---------------------------------------------------------------------------- the openai client
try:
    import openai
except ImportError:
    openai = None
if openai is None:
    print("# the openai package is not installed: its checks are skipped")
else:
    cl = openai.OpenAI(base_url=URL + "/v1", api_key=KEY)
    q = [{"role": "user", "content": "Describe the weather today."}]
    r = cl.chat.completions.create(model="tiny", messages=q, max_tokens=N, temperature=0)
    want = cli("Describe the weather today.", N)
    m = r.choices[0].message
    ok((getattr(m, "reasoning_content", None) or "") + m.content == want, "openai client: chat answer == CLI's")
    parts = []
    for ch in cl.chat.completions.create(model="tiny", messages=q, max_tokens=N, temperature=0, stream=True):
        if ch.choices:
            d = ch.choices[0].delta
            parts.append((getattr(d, "reasoning_content", None) or "") + (d.content or ""))
    ok("".join(parts) == want, "openai client: streamed answer == CLI's")
    if hasattr(cl.chat.completions, "stream"): # the SDK's stream helper (openai >= 1.40)
        with cl.chat.completions.stream(model="tiny", messages=q, max_tokens=N, temperature=0) as st_:
            for _ in st_:
                pass
            fm = st_.current_completion_snapshot.choices[0].message
        ok(fm.role == "assistant" and (getattr(fm, "reasoning_content", None) or "") + (fm.content or "") == want,
           "openai client: the stream helper assembles the message with its role (%r)" % fm.role)
    ok([x.id for x in cl.models.list().data] == ["tiny"], "openai client: models.list")
    try:
        cl.chat.completions.create(model="tiny", messages=q, temperature="hot")
        ok(False, "openai client: a bad field raises")
    except openai.BadRequestError:
        ok(True, "openai client: a bad field raises BadRequestError")
