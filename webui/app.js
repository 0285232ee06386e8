// SPDX-License-Identifier: MIT
// app.js - the chat page of `glm4v serve`: conversations kept in localStorage, messages with images / video / PDF
// pages sent to /v1/chat/completions and streamed back (fetch + ReadableStream of Server-Sent Events), the thinking
// folded, stop (AbortController: the server frees the slot when the connection closes), edit and resend, sampling
// settings, per-answer tokens, tok/s and time to first token, export as OpenAI messages JSON (glm4v --messages), and
// grounding boxes drawn on the image they refer to (boxes.js). Model text and file names only ever become text nodes.
// Every URL is relative: the page works under a reverse proxy's path prefix. A small test hook: window.glm4vTest.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const LS_CONVS = "glm4v.conversations", LS_SETTINGS = "glm4v.settings", LS_KEY = "glm4v.apiKey";

  // ------------------------------------------------------------------ state

  let convs = [];          // [{id, title, created, messages: [{role, content, reasoning, attachments, stats, error}]}]
  let cur = null;          // the conversation shown
  let pending = [];        // attachments of the message being written: [{kind, name, url, pages?}]
  let busy = null;         // {ctrl: AbortController, msg} while an answer streams
  let settings = { system: "", temperature: "", top_p: "", max_tokens: "", thinking: true };
  let emptyNode = null;    // the welcome text shown in an empty conversation

  // conversations and settings from localStorage
  function load() {
    try { convs = JSON.parse(localStorage.getItem(LS_CONVS) || "[]"); } catch (e) { convs = []; }
    if (!Array.isArray(convs)) convs = [];
    try { Object.assign(settings, JSON.parse(localStorage.getItem(LS_SETTINGS) || "{}")); } catch (e) { /* defaults */ }
  }

  // conversations to localStorage; when they do not fit, the attachments' bytes are left out (names kept)
  function save() {
    const keep = convs.filter((c) => !c.ephemeral);
    try {
      localStorage.setItem(LS_CONVS, JSON.stringify(keep));
    } catch (e) {
      const slim = keep.map((c) => Object.assign({}, c, {
        messages: c.messages.map((m) => Object.assign({}, m, {
          attachments: (m.attachments || []).map((a) => ({ kind: a.kind, name: a.name, url: "", dropped: true })),
        })),
      }));
      try {
        localStorage.setItem(LS_CONVS, JSON.stringify(slim));
        setStatus("browser storage is full: attachments are not kept after a reload", "warn");
      } catch (e2) {
        setStatus("browser storage is full: conversations are not saved", "warn");
      }
    }
  }

  // the settings to localStorage
  function saveSettings() {
    localStorage.setItem(LS_SETTINGS, JSON.stringify(settings));
  }

  // a conversation id (unique enough for one browser)
  function newId() {
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  }

  // ------------------------------------------------------------------ DOM helpers (text nodes only)

  // an element with a class and children (strings become text nodes)
  function el(tag, cls, ...kids) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }

  // the line in the top bar (kind: ok / warn / err)
  function setStatus(text, kind) {
    const s = $("status");
    s.textContent = text || "";
    s.className = "status" + (kind ? " " + kind : "");
  }

  // ------------------------------------------------------------------ server

  // request headers: JSON, and the API key when one is kept
  function headers(json) {
    const h = {};
    if (json) h["Content-Type"] = "application/json";
    const k = localStorage.getItem(LS_KEY);
    if (k) h["Authorization"] = "Bearer " + k;
    return h;
  }

  // ask for the API key (once; kept in localStorage), then call then()
  function askKey(then) {
    const d = $("keydlg");
    $("key-input").value = "";
    d.returnValue = "";
    d.addEventListener("close", function onClose() {
      d.removeEventListener("close", onClose);
      const k = $("key-input").value.trim();
      if (k) localStorage.setItem(LS_KEY, k);
      if (then) then();
    });
    d.showModal();
  }

  // /health, then /v1/models (a 401 asks for the key): the model's name in the top bar
  async function connect() {
    try {
      const h = await fetch("health", { cache: "no-store" });
      if (h.status === 503) {
        setStatus("the model is loading…", "warn");
        setTimeout(connect, 2000);
        return;
      }
      const r = await fetch("v1/models", { headers: headers(false), cache: "no-store" });
      if (r.status === 401) {
        setStatus("an API key is required", "warn");
        askKey(connect);
        return;
      }
      const j = await r.json();
      const m = j.data && j.data[0];
      $("model-name").textContent = m ? m.id : "(no model)";
      if (m && m.max_model_len) $("model-name").title = "context " + m.max_model_len + " tokens per request";
      setStatus("ready", "ok");
    } catch (e) {
      setStatus("cannot reach the server", "err");
      setTimeout(connect, 5000);
    }
  }

  // ------------------------------------------------------------------ attachments

  // a File as a data: URL
  function readDataUrl(file) {
    return new Promise((resolve, reject) => {
      const fr = new FileReader();
      fr.onload = () => resolve(fr.result);
      fr.onerror = () => reject(fr.error);
      fr.readAsDataURL(file);
    });
  }

  // a PDF by its type or name
  function isPdf(file) {
    return file.type === "application/pdf" || /\.pdf$/i.test(file.name || "");
  }

  // a file (picker, drop, paste) into the pending attachments; a PDF's pages come from POST v1/pages
  async function addFile(file) {
    const name = file.name || "pasted";
    let url = await readDataUrl(file);
    if (isPdf(file)) {
      url = url.replace(/^data:[^;,]*/, "data:application/pdf");
      const att = { kind: "pdf", name, url, pages: null };
      pending.push(att);
      renderPending();
      try {
        const r = await fetch("v1/pages", {
          method: "POST", headers: headers(true),
          body: JSON.stringify({ file: { file_data: url, filename: name } }),
        });
        const j = await r.json().catch(() => ({}));
        if (!r.ok) throw new Error(r.status === 404 ? "this server does not render PDFs (no POST /v1/pages)"
          : (j.error && j.error.message) || ("HTTP " + r.status));
        att.pages = (j.data || []).map((p) => ({ page: p.page, width: p.width, height: p.height, url: p.image_url }));
      } catch (e) {
        pending = pending.filter((a) => a !== att);
        setStatus(name + ": " + e.message, "err");
      }
      renderPending();
      return;
    }
    if (/^video\//.test(file.type)) pending.push({ kind: "video", name, url });
    else if (/^image\//.test(file.type)) pending.push({ kind: "image", name, url });
    else {
      setStatus(name + ": not an image, a video or a PDF", "err");
      return;
    }
    renderPending();
  }

  // several files (picker, drop, paste), one after the other
  async function addFiles(list) {
    for (const f of Array.from(list || [])) {
      try { await addFile(f); } catch (e) { setStatus((f.name || "file") + ": " + e.message, "err"); }
    }
  }

  // a thumbnail of an attachment (images, the first pages of a PDF, a video)
  function thumb(a) {
    const box = el("figure", "thumb " + a.kind);
    if (a.kind === "video" && a.url) {
      const v = document.createElement("video");
      v.src = a.url;
      v.controls = true;
      v.muted = true;
      box.append(v);
    } else if (a.kind === "pdf") {
      const row = el("div", "pages");
      if (!a.pages) row.append(el("span", "loading", "rendering…"));
      else for (const p of a.pages) {
        const im = document.createElement("img");
        im.src = p.url;
        im.alt = "page " + p.page;
        im.title = "page " + p.page + " (" + p.width + " x " + p.height + " as the model sees it)";
        row.append(im);
      }
      box.append(row);
    } else if (a.url) {
      const im = document.createElement("img");
      im.src = a.url;
      im.alt = "";
      box.append(im);
    }
    box.append(el("figcaption", null, a.name + (a.kind === "pdf" && a.pages ? " · " + a.pages.length + " pages" : "")));
    return box;
  }

  // the composer's attachments, each with a remove button
  function renderPending() {
    const c = $("attachments");
    c.replaceChildren();
    pending.forEach((a, i) => {
      const t = thumb(a);
      const x = el("button", "remove", "×");
      x.type = "button";
      x.title = "remove";
      x.addEventListener("click", () => { pending.splice(i, 1); renderPending(); });
      t.append(x);
      c.append(t);
    });
  }

  // ------------------------------------------------------------------ requests

  // the images of a message, in prompt order (each PDF page is one): [{url, name, pdf?: {pages, index}}]
  function messageImages(m) {
    const out = [];
    for (const a of m.attachments || []) {
      if (a.kind === "image") out.push({ url: a.url, name: a.name });
      else if (a.kind === "pdf" && a.pages) {
        const nums = a.pages.map((p) => p.page);
        a.pages.forEach((p, i) => out.push({ url: p.url, name: a.name + " p. " + p.page, pdf: { pages: nums, index: i, first: out.length - i } }));
      }
    }
    return out;
  }

  // one message as OpenAI's API takes it (media parts first, then the text)
  function apiMessage(m) {
    if (m.role !== "user") {
      // (without NUL characters: a model may generate the byte token 0x00, which the server streams as \u0000 but
      // refuses in a request, as C strings cannot hold it)
      const o = { role: m.role, content: (m.content || "").replace(/\u0000/g, "") };
      if (m.reasoning) o.reasoning_content = m.reasoning.replace(/\u0000/g, "");
      return o;
    }
    const atts = (m.attachments || []).filter((a) => a.url);
    if (!atts.length) return { role: "user", content: m.content || "" };
    const parts = [];
    for (const a of atts) {
      if (a.kind === "image") parts.push({ type: "image_url", image_url: { url: a.url } });
      else if (a.kind === "video") parts.push({ type: "video_url", video_url: { url: a.url } });
      else if (a.kind === "pdf") parts.push({ type: "file", file: { file_data: a.url, filename: a.name } });
    }
    if (m.content) parts.push({ type: "text", text: m.content });
    return { role: "user", content: parts };
  }

  // the conversation as the messages array (the system prompt first): what is sent, and what Export writes
  function apiMessages(conv, upto) {
    const msgs = [];
    if (settings.system) msgs.push({ role: "system", content: settings.system });
    const list = conv.messages.slice(0, upto === undefined ? conv.messages.length : upto);
    for (const m of list) if (!(m.role === "assistant" && m.error && !m.content)) msgs.push(apiMessage(m));
    return msgs;
  }

  // a settings field as a number, undefined when empty (the model's default)
  function num(v) {
    return v === "" || v === null || v === undefined || Number.isNaN(Number(v)) ? undefined : Number(v);
  }

  // stream the answer to the last user message of conv into a new assistant message
  async function runAnswer(conv) {
    const body = {
      messages: apiMessages(conv),
      stream: true,
      stream_options: { include_usage: true },
      chat_template_kwargs: { enable_thinking: !!settings.thinking },
    };
    const t = num(settings.temperature), p = num(settings.top_p), mt = num(settings.max_tokens);
    if (t !== undefined) body.temperature = t;
    if (p !== undefined) body.top_p = p;
    if (mt !== undefined) body.max_tokens = mt;
    Object.assign(body, window.glm4vTest.extra || {});
    const msg = { role: "assistant", content: "", reasoning: "", stats: null, streaming: true };
    conv.messages.push(msg);
    const ctrl = new AbortController();
    busy = { ctrl, msg };
    setBusy(true);
    renderConv();
    const t0 = performance.now();
    let tFirst = 0, nChunks = 0, usage = null, timings = null, finish = null;
    const redraw = throttle(() => updateMessage(conv, msg), 50);
    try {
      const r = await fetch("v1/chat/completions", { method: "POST", headers: headers(true), body: JSON.stringify(body), signal: ctrl.signal });
      if (r.status === 401) {
        msg.error = "an API key is required";
        askKey(null);
      } else if (!r.ok) {
        const j = await r.json().catch(() => ({}));
        msg.error = (j.error && j.error.message) || ("HTTP " + r.status);
      } else {
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let k;
          while ((k = buf.indexOf("\n\n")) >= 0) {
            const ev = buf.slice(0, k);
            buf = buf.slice(k + 2);
            for (const line of ev.split("\n")) {
              if (!line.startsWith("data:")) continue;
              const data = line.slice(5).trim();
              if (data === "[DONE]") continue;
              let j;
              try { j = JSON.parse(data); } catch (e) { continue; }
              if (j.error) { msg.error = j.error.message || "error"; continue; }
              if (j.usage) usage = j.usage;
              if (j.timings) timings = j.timings;
              const ch = j.choices && j.choices[0];
              if (!ch) continue;
              const d = ch.delta || {};
              const rc = d.reasoning_content !== undefined ? d.reasoning_content : d.reasoning;
              if (rc || d.content) {
                if (!tFirst) tFirst = performance.now();
                nChunks++;
              }
              if (rc) msg.reasoning += rc;
              if (d.content) msg.content += d.content;
              if (ch.finish_reason) finish = ch.finish_reason;
              redraw();
            }
          }
        }
      }
    } catch (e) {
      if (e.name === "AbortError") msg.stopped = true;
      else msg.error = "connection lost: " + e.message;
    }
    const t1 = performance.now();
    msg.streaming = false;
    msg.stats = {
      tokens: usage ? usage.completion_tokens : nChunks,
      prompt: usage ? usage.prompt_tokens : undefined,
      cached: usage && usage.prompt_tokens_details ? usage.prompt_tokens_details.cached_tokens : undefined,
      tps: timings && timings.predicted_per_second ? timings.predicted_per_second
        : tFirst && t1 > tFirst && nChunks > 1 ? (nChunks - 1) / ((t1 - tFirst) / 1000) : undefined,
      ttft: tFirst ? tFirst - t0 : undefined,
      promptMs: timings ? timings.prompt_ms : undefined,
      finish,
    };
    busy = null;
    setBusy(false);
    if (!conv.title || conv.title === "New conversation") conv.title = titleOf(conv);
    save();
    renderConv();
    renderList();
  }

  // at most one call of f per ms milliseconds, the last one always made
  function throttle(f, ms) {
    let timer = null;
    return () => {
      if (timer) return;
      timer = setTimeout(() => { timer = null; f(); }, ms);
    };
  }

  // Stop shown and Send disabled while an answer streams
  function setBusy(on) {
    $("stop").hidden = !on;
    $("send").disabled = on;
  }

  // a conversation's title: its first message, shortened
  function titleOf(conv) {
    const u = conv.messages.find((m) => m.role === "user");
    if (!u) return "New conversation";
    const t = (u.content || "").trim() || (u.attachments || []).map((a) => a.name).join(", ") || "New conversation";
    return t.length > 48 ? t.slice(0, 47) + "…" : t;
  }

  // the composer's text and attachments as a new user message, then its answer
  async function send() {
    if (busy) return;
    const text = $("input").value;
    if (!text.trim() && !pending.length) return;
    if (pending.some((a) => a.kind === "pdf" && !a.pages)) {
      setStatus("the PDF is still being rendered", "warn");
      return;
    }
    if (!cur || cur.ephemeral) newConversation();
    cur.messages.push({ role: "user", content: text, attachments: pending });
    pending = [];
    $("input").value = "";
    renderPending();
    if (cur.messages.length === 1) cur.title = titleOf(cur);
    save();
    renderList();
    await runAnswer(cur);
  }

  // the last user message back into the composer (the answer to it removed), to edit and send again
  function editLast() {
    if (busy || !cur) return;
    let i = cur.messages.length - 1;
    while (i >= 0 && cur.messages[i].role !== "user") i--;
    if (i < 0) return;
    const m = cur.messages[i];
    cur.messages.splice(i);
    $("input").value = m.content || "";
    pending = (m.attachments || []).filter((a) => a.url);
    renderPending();
    save();
    renderConv();
    $("input").focus();
  }

  // ------------------------------------------------------------------ rendering

  // an empty conversation, shown
  function newConversation() {
    cur = { id: newId(), title: "New conversation", created: Date.now(), messages: [] };
    convs.unshift(cur);
    renderList();
    renderConv();
    return cur;
  }

  // the sidebar's conversations (titles as text), each with a delete button
  function renderList() {
    const nav = $("conv-list");
    nav.replaceChildren();
    for (const c of convs) {
      if (c.ephemeral) continue;
      const item = el("div", "conv" + (c === cur ? " active" : ""));
      const b = el("button", "conv-title", c.title || "New conversation");
      b.type = "button";
      b.addEventListener("click", () => { if (!busy) { cur = c; renderList(); renderConv(); } });
      const del = el("button", "conv-del", "×");
      del.type = "button";
      del.title = "delete";
      del.addEventListener("click", () => {
        if (busy && c === cur) return;
        convs = convs.filter((x) => x !== c);
        if (cur === c) cur = null;
        save();
        renderList();
        renderConv();
      });
      item.append(b, del);
      nav.append(item);
    }
  }

  // the messages of the conversation shown
  function renderConv() {
    const box = $("messages");
    box.replaceChildren();
    if (!cur || !cur.messages.length) {
      box.append(emptyNode);
      return;
    }
    const lastUser = cur.messages.map((m) => m.role).lastIndexOf("user");
    cur.messages.forEach((m, i) => {
      const node = m.role === "user" ? userNode(m, i === lastUser) : assistantNode(cur, m, i);
      box.append(node);
    });
    box.scrollTop = box.scrollHeight;
  }

  // a user message: attachments, text, and Edit on the last one
  function userNode(m, last) {
    const n = el("div", "msg user");
    const b = el("div", "bubble");
    if ((m.attachments || []).length) {
      const row = el("div", "msg-atts");
      for (const a of m.attachments) row.append(a.dropped ? el("span", "dropped", a.name + " (not kept)") : thumb(a));
      b.append(row);
    }
    if (m.content) b.append(el("div", "text", m.content));
    n.append(b);
    if (last) {
      const e = el("button", "edit", "Edit");
      e.type = "button";
      e.title = "edit and resend this message";
      e.addEventListener("click", editLast);
      n.append(e);
    }
    return n;
  }

  // the images an answer's boxes may refer to: every image up to (and including) its user turn
  function imagesBefore(conv, idx) {
    const out = [];
    for (let i = 0; i < idx && i < conv.messages.length; i++)
      if (conv.messages[i].role === "user") out.push(...messageImages(conv.messages[i]));
    return out;
  }

  // the text the model wrote (thinking, then the answer), as the CLI decodes it
  function fullText(m) {
    return m.reasoning ? m.reasoning + "</think>" + (m.content || "") : m.content || "";
  }

  // for each box of text, the image it is drawn on: the last image of the user turn being answered (a turn without
  // images: the last one before it); when that is a PDF page, the page the answer names before the box (as
  // pdf_box_pages), else the document's first page
  function boxTargets(text, n, images) {
    if (!images.length || n <= 0) return new Array(Math.max(n, 0)).fill(-1);
    const last = images.length - 1, L = images[last];
    if (!L.pdf) return new Array(n).fill(last);
    return GlmBoxes.boxPages(text, n, L.pdf.pages).map((k) => L.pdf.first + k);
  }

  // an assistant message's node
  function assistantNode(conv, m, idx) {
    const n = el("div", "msg assistant");
    n.dataset.index = idx;
    fillAssistant(n, conv, m, idx);
    return n;
  }

  // redraw a streaming answer (kept at the bottom when the reader was there)
  function updateMessage(conv, m) {
    const i = conv.messages.indexOf(m);
    const node = document.querySelector('.msg.assistant[data-index="' + i + '"]');
    if (!node || conv !== cur) return;
    const box = $("messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    fillAssistant(node, conv, m, i);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  // the answer: folded thinking, the text with box references, the pictures with their boxes, the figures
  function fillAssistant(n, conv, m, idx) {
    const wasOpen = n.querySelector("details.think") ? n.querySelector("details.think").open : false;
    n.replaceChildren();
    if (m.reasoning) {
      const d = el("details", "think");
      d.open = wasOpen;
      d.append(el("summary", null, m.streaming && !m.content ? "Thinking…" : "Thought process"), el("div", "think-text", m.reasoning));
      n.append(d);
    }
    const text = fullText(m);
    const parsed = GlmBoxes.parseDetailed(text);
    const off = text.length - (m.content || "").length; // the answer's start in text
    const body = el("div", "text answer");
    let pos = off;
    const refs = [];
    for (const s of parsed.spans) {
      if (s.end <= off) continue;
      if (s.start > pos) body.append(document.createTextNode(text.slice(pos, s.start)));
      if (s.n > 0) {
        const ref = el("span", "box-ref");
        for (let k = s.first; k < s.first + s.n; k++) {
          const tag = el("span", "box-tag", String(k + 1));
          tag.style.background = GlmBoxes.color(k);
          tag.dataset.box = k;
          ref.append(tag);
        }
        ref.append(el("span", "box-src", text.slice(Math.max(s.start, off), s.end).replace(GlmBoxes.BOX_BEGIN, "").replace(GlmBoxes.BOX_END, "")));
        ref.dataset.first = s.first;
        ref.dataset.n = s.n;
        refs.push(ref);
        body.append(ref);
      } else body.append(document.createTextNode(text.slice(Math.max(s.start, off), s.end)));
      pos = s.end;
    }
    if (pos < text.length) body.append(document.createTextNode(text.slice(pos)));
    if (m.streaming && !m.content && !m.reasoning) body.append(el("span", "dots", "…"));
    n.append(body);
    if (parsed.boxes.length && !m.streaming) { // drawn once the answer is complete (no image reloads while it streams)
      const images = imagesBefore(conv, idx);
      const target = boxTargets(text, parsed.boxes.length, images);
      const figs = el("div", "figures");
      const seen = [...new Set(target.filter((t) => t >= 0))];
      for (const ti of seen) figs.append(figure(images[ti], parsed.boxes, target, ti, n));
      if (seen.length) n.append(figs);
      for (const ref of refs) {
        const ks = [];
        for (let k = +ref.dataset.first; k < +ref.dataset.first + +ref.dataset.n; k++) ks.push(k);
        ref.addEventListener("mouseenter", () => highlight(n, ks, true));
        ref.addEventListener("mouseleave", () => highlight(n, ks, false));
      }
    }
    if (m.error) n.append(el("div", "error", m.error));
    if (m.stopped) n.append(el("div", "note", "stopped"));
    if (m.stats) n.append(statsLine(m.stats));
  }

  // boxes ks of answer n (outlines and their text) highlighted or not
  function highlight(n, ks, on) {
    for (const k of ks) {
      for (const e of n.querySelectorAll('[data-box="' + k + '"]')) e.classList.toggle("hl", on);
    }
  }

  // an image with the boxes that belong to it, scaled with the displayed image (positions in % of its size)
  function figure(img, boxes, target, ti, n) {
    const f = el("figure", "boxed");
    const wrap = el("div", "wrap");
    const im = document.createElement("img");
    im.alt = img.name;
    const layer = el("div", "overlay");
    wrap.append(im, layer);
    f.append(wrap, el("figcaption", null, img.name));
    im.addEventListener("load", () => {
      const W = im.naturalWidth, H = im.naturalHeight;
      f.style.setProperty("--ar", String(W / H));
      layer.replaceChildren();
      boxes.forEach((b, k) => {
        if (target[k] !== ti) return;
        const px = GlmBoxes.toPixels(b, W, H);
        const o = el("div", b.isPoint ? "box point" : "box");
        o.dataset.box = k;
        o.style.setProperty("--c", GlmBoxes.color(k));
        if (b.isPoint) {
          o.style.left = ((px.x1 + 0.5) / W * 100) + "%";
          o.style.top = ((px.y1 + 0.5) / H * 100) + "%";
        } else {
          o.style.left = (px.x1 / W * 100) + "%";
          o.style.top = (px.y1 / H * 100) + "%";
          o.style.width = ((px.x2 - px.x1 + 1) / W * 100) + "%";
          o.style.height = ((px.y2 - px.y1 + 1) / H * 100) + "%";
        }
        o.append(el("span", "label", String(k + 1)));
        o.addEventListener("mouseenter", () => highlight(n, [k], true));
        o.addEventListener("mouseleave", () => highlight(n, [k], false));
        layer.append(o);
      });
      f.dataset.ready = "1";
    });
    im.src = img.url;
    return f;
  }

  // tokens, tok/s, time to first token, prompt and cached tokens of an answer
  function statsLine(s) {
    const parts = [];
    if (s.tokens !== undefined) parts.push(s.tokens + " tokens");
    if (s.tps) parts.push(s.tps.toFixed(1) + " tok/s");
    if (s.ttft !== undefined) parts.push("TTFT " + (s.ttft / 1000).toFixed(2) + " s");
    if (s.prompt !== undefined) parts.push("prompt " + s.prompt + (s.cached ? " (" + s.cached + " cached)" : ""));
    if (s.finish && s.finish !== "stop") parts.push(s.finish === "length" ? "cut at max tokens" : s.finish);
    return el("div", "stats", parts.join(" · "));
  }

  // ------------------------------------------------------------------ export

  // download the conversation as the messages JSON of glm4v --messages
  function exportConv() {
    if (!cur || !cur.messages.length) {
      setStatus("nothing to export", "warn");
      return;
    }
    const blob = new Blob([JSON.stringify(apiMessages(cur), null, 1)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = (cur.title || "conversation").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 40) + ".messages.json";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  // ------------------------------------------------------------------ settings

  // the settings dialog, filled
  function openSettings() {
    $("set-system").value = settings.system || "";
    $("set-temperature").value = settings.temperature;
    $("set-top-p").value = settings.top_p;
    $("set-max-tokens").value = settings.max_tokens;
    $("settings").showModal();
  }

  // the dialog's values kept
  function closeSettings() {
    settings.system = $("set-system").value;
    settings.temperature = $("set-temperature").value;
    settings.top_p = $("set-top-p").value;
    settings.max_tokens = $("set-max-tokens").value;
    saveSettings();
  }

  // ------------------------------------------------------------------ wiring

  // the page's handlers, the stored conversations, then the server
  function init() {
    emptyNode = $("empty");
    load();
    $("thinking").checked = settings.thinking !== false;
    $("thinking").addEventListener("change", () => { settings.thinking = $("thinking").checked; saveSettings(); });
    $("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
    $("input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
    });
    $("stop").addEventListener("click", () => { if (busy) busy.ctrl.abort(); });
    $("file").addEventListener("change", async (e) => { await addFiles(e.target.files); e.target.value = ""; });
    $("new-chat").addEventListener("click", () => { if (!busy) newConversation(); });
    $("export").addEventListener("click", exportConv);
    $("open-settings").addEventListener("click", openSettings);
    $("settings").addEventListener("close", closeSettings);
    $("forget-key").addEventListener("click", () => { localStorage.removeItem(LS_KEY); setStatus("API key forgotten", "warn"); });
    document.addEventListener("paste", (e) => {
      const files = e.clipboardData ? Array.from(e.clipboardData.files || []) : [];
      if (files.length) { e.preventDefault(); addFiles(files); }
    });
    document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("drop"); });
    document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) document.body.classList.remove("drop"); });
    document.addEventListener("drop", (e) => {
      e.preventDefault();
      document.body.classList.remove("drop");
      if (e.dataTransfer) addFiles(e.dataTransfer.files);
    });
    cur = convs[0] || null;
    renderList();
    renderConv();
    connect();
  }

  // ------------------------------------------------------------------ test hook (tests/webui_check.py)

  window.glm4vTest = {
    // show a one-turn conversation (not saved): a user message with these images (data: URLs) and the assistant
    // answer text (with reasoning when given); returns the number of boxes parsed
    // (an entry {name, pages: [{page, width, height, url}]} is a PDF as POST v1/pages returns it)
    renderAnswer(text, images, reasoning, question) {
      const atts = (images || []).map((u, i) => typeof u === "string" ? { kind: "image", name: "image " + (i + 1), url: u }
        : { kind: "pdf", name: u.name, url: "data:application/pdf;base64,", pages: u.pages });
      cur = { id: newId(), title: "test", ephemeral: true, messages: [
        { role: "user", content: question || "Where is it?", attachments: atts },
        { role: "assistant", content: text, reasoning: reasoning || "", stats: null },
      ] };
      renderList();
      renderConv();
      return GlmBoxes.parse(fullText(cur.messages[1])).length;
    },
    parse: (text) => GlmBoxes.parse(text),
    boxPages: (text, n, pages) => GlmBoxes.boxPages(text, n, pages),
    attach: (files) => addFiles(files),
    exportJson: () => JSON.stringify(apiMessages(cur)),
    current: () => cur,
    extra: null, // fields added to the next requests' bodies
    pendingCount: () => pending.length,
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
