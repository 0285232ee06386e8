// SPDX-License-Identifier: MIT
// boxes.js - the chat page's grounding-box parser: a line-by-line port of boxes.c's boxes_parse (GLM-4.5V's
// <|begin_of_box|>[[x1,y1,x2,y2],...]<|end_of_box|>, points [[x,y]], 0-1000 coordinates; bare [[...]] lists when
// the answer has no box tokens; <think> text skipped) and of pdf.c's pdf_box_pages (the page of each box), plus the
// pieces of an answer for display (text and box spans). tests/cli_webui.sh holds it against boxes.c on
// tests/data/boxes_corpus.json: the page never reads an answer differently from `glm4v --draw-boxes`.
"use strict";

(function (global) {
  const BOX_BEGIN = "<|begin_of_box|>";
  const BOX_END = "<|end_of_box|>";
  const THINK_OPEN = "<think>";
  const THINK_CLOSE = "</think>";
  const MAX_NUMBER_CHARS = 63; // longer "numbers" are garbage, not coordinates
  const BLANK = "\x1f"; // replaces think text so that nothing can match across it
  const FLT_MAX = 3.4028234663852886e38;
  const INT_MAX = 2147483647;

  // the text as C sees it: up to the first NUL
  function cstr(text) {
    const z = text.indexOf("\0");
    return z < 0 ? text : text.slice(0, z);
  }

  // index of needle in s at or after from, or -1 (strstr)
  function find(s, needle, from) {
    return s.indexOf(needle, from);
  }

  // first non-blank at or after p
  function skipWs(t, p) {
    while (t[p] === " " || t[p] === "\t" || t[p] === "\n" || t[p] === "\r") p++;
    return p;
  }

  // ASCII digit
  function isDigit(c) {
    return c !== undefined && c >= "0" && c <= "9";
  }

  // a number [+-]digits[.digits][e[+-]digits] at p: {end, v}, or null when none or not a finite float
  function scanNumber(t, p) {
    const s = p;
    if (t[p] === "+" || t[p] === "-") p++;
    let ndig = 0;
    while (isDigit(t[p])) p++, ndig++;
    if (t[p] === ".") {
      p++;
      while (isDigit(t[p])) p++, ndig++;
    }
    if (ndig === 0) return null;
    if (t[p] === "e" || t[p] === "E") {
      let e = p + 1;
      if (t[e] === "+" || t[e] === "-") e++;
      if (isDigit(t[e])) {
        while (isDigit(t[e])) e++;
        p = e;
      }
    }
    if (p - s > MAX_NUMBER_CHARS) return null;
    const x = Number(t.slice(s, p)); // JavaScript reads "+5", ".5", "5." and "5.e3" as strtod does, correctly rounded
    if (!Number.isFinite(x) || Math.abs(x) > FLT_MAX) return null;
    return { end: p, v: x };
  }

  // append a box from k = 2 (point) or 4 numbers; coordinates rounded to float as boxes.c stores them
  function push(list, num, k) {
    const f = Math.fround;
    list.push({
      x1: f(num[0]), y1: f(num[1]),
      x2: f(num[k === 4 ? 2 : 0]), y2: f(num[k === 4 ? 3 : 1]),
      isPoint: k === 2,
    });
  }

  // one group "[n, n]" or "[n, n, n, n]" at p (t[p] === "["): appended to list, returns the end; -1 when malformed
  function parseGroup(t, p, list) {
    const num = [];
    let k = 0;
    let q = p + 1;
    for (;;) {
      if (k === 4) return -1;
      const r = scanNumber(t, skipWs(t, q));
      if (!r) return -1;
      num[k++] = r.v;
      q = skipWs(t, r.end);
      if (t[q] === ",") {
        q++;
        continue;
      }
      if (t[q] === "]") break;
      return -1;
    }
    if (k !== 2 && k !== 4) return -1;
    push(list, num, k);
    return q + 1;
  }

  // inside a box span [s, end): every group, however it is nested
  function parseSpan(t, s, end, list) {
    for (let p = s; p < end;) {
      const r = t[p] === "[" ? parseGroup(t, p, list) : -1;
      p = r >= 0 ? r : p + 1;
    }
  }

  // outside spans: lists "[[a], [b], ...]"; q at the first group's "[". Returns {stop, last}: where the list
  // stopped, and the end of its last good group (-1: none)
  function parseList(t, q, list) {
    let last = -1;
    for (;;) {
      let r = parseGroup(t, q, list);
      if (r < 0) return { stop: q, last };
      last = r;
      r = skipWs(t, r);
      if (t[r] !== ",") return { stop: r, last };
      r = skipWs(t, r + 1);
      if (t[r] !== "[") return { stop: r, last };
      q = r;
    }
  }

  // think text blanked (<think>...</think>; unterminated: to the end; a first "</think>" before any "<think>": from
  // the start, as when the prompt ended with <think>)
  function blankThink(t) {
    const a = t.split("");
    const blank = (from, to) => {
      for (let i = from; i < to; i++) a[i] = BLANK;
    };
    let p = 0;
    let o = find(t, THINK_OPEN, 0), c = find(t, THINK_CLOSE, 0);
    for (let first = true; o >= 0 || c >= 0; first = false) {
      let e;
      if (c >= 0 && (o < 0 || c < o)) {
        e = c + THINK_CLOSE.length;
        blank(first ? p : c, e);
      } else {
        e = c >= 0 ? c + THINK_CLOSE.length : t.length;
        blank(o, e);
      }
      p = e;
      if (o >= 0 && o < p) o = find(t, THINK_OPEN, p);
      if (c >= 0 && c < p) c = find(t, THINK_CLOSE, p);
    }
    return a.join("");
  }

  // boxes_parse with where each came from: {boxes: [{x1, y1, x2, y2, isPoint}], spans: [{start, end, first, n}]}
  // (spans: the answer's text ranges that hold boxes first .. first + n - 1, for display)
  function parseDetailed(text) {
    const t = blankThink(cstr(text));
    const list = [];
    const spans = [];
    let b = find(t, BOX_BEGIN, 0);
    if (b >= 0) {
      let e = find(t, BOX_END, b);
      while (b >= 0) {
        const s = b + BOX_BEGIN.length;
        if (e >= 0 && e < s) e = find(t, BOX_END, s);
        const nb = find(t, BOX_BEGIN, s);
        let end = e >= 0 ? e : t.length;
        let shown = e >= 0 ? e + BOX_END.length : t.length;
        if (nb >= 0 && nb < end) end = shown = nb;
        const n0 = list.length;
        parseSpan(t, s, end, list);
        spans.push({ start: b, end: shown, first: n0, n: list.length - n0 });
        b = nb;
      }
    } else {
      for (let p = 0; p < t.length;) {
        const q = t[p] === "[" ? skipWs(t, p + 1) : -1;
        if (q < 0 || t[q] !== "[") {
          p++;
          continue;
        }
        const n0 = list.length;
        const r = parseList(t, q, list);
        if (list.length > n0) {
          let end = r.last;
          const c = skipWs(t, end);
          if (t[c] === "]") end = c + 1; // the list's closing bracket
          spans.push({ start: p, end, first: n0, n: list.length - n0 });
        }
        p = r.stop > p ? r.stop : p + 1;
      }
    }
    return { boxes: list, spans };
  }

  // the boxes of an answer, as boxes_parse returns them
  function parse(text) {
    return parseDetailed(text).boxes;
  }

  // ASCII letter (isalpha in the C locale)
  function isAlpha(c) {
    return c !== undefined && ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z"));
  }

  // text at s starts with the lower-case word w, ASCII case ignored
  function startsCi(t, s, w) {
    for (let i = 0; i < w.length; i++) {
      let c = t[s + i];
      if (c === undefined) return false;
      if (c >= "A" && c <= "Z") c = String.fromCharCode(c.charCodeAt(0) + 32);
      if (c !== w[i]) return false;
    }
    return true;
  }

  // the number at p (digits), -1 when none or above INT_MAX
  function parseNum(t, p) {
    if (!isDigit(t[p])) return -1;
    let v = 0;
    while (isDigit(t[p])) {
      v = v * 10 + (t.charCodeAt(p) - 48);
      if (v > INT_MAX) return -1;
      p++;
    }
    return v;
  }

  // the page number of a mention starting at s ("page N", "pages N", "page #N", "p. N", "第N页"), or -1
  function pageMention(t, s) {
    let p = -1;
    if (startsCi(t, s, "page") && (s === 0 || !isAlpha(t[s - 1]))) {
      p = s + 4;
      if (t[p] === "s" || t[p] === "S") p++;
      while (t[p] === " " || t[p] === "#" || t[p] === "\t") p++;
    } else if ((t[s] === "p" || t[s] === "P") && t[s + 1] === "." && (s === 0 || !isAlpha(t[s - 1]))) {
      p = s + 2;
      while (t[p] === " ") p++;
    } else if (t[s] === "\u7b2c") { // 第 N 页
      p = s + 1;
      let q = p;
      while (isDigit(t[q])) q++;
      if (q === p || t[q] !== "\u9875") return -1;
    }
    if (p < 0 || !isDigit(t[p])) return -1;
    return parseNum(t, p);
  }

  // pdf_box_pages: for each of nboxes boxes, the index (into pages, the document's page numbers) of the page the
  // answer names last before it ("page 3", "p. 3", "第3页": a page number of the document, else the N-th page), or 0
  function boxPages(text, nboxes, pages) {
    text = cstr(text);
    const npages = pages.length;
    const out = new Array(Math.max(nboxes, 0)).fill(0);
    if (nboxes <= 0 || npages <= 1) return out;
    let t = 0; // the answer after the thinking
    for (let q = find(text, THINK_CLOSE, 0); q >= 0; q = find(text, THINK_CLOSE, q + 8)) t = q + 8;
    const mark = find(text, BOX_BEGIN, t) >= 0 ? BOX_BEGIN : "[[";
    const ml = mark.length;
    let cur = 0, k = 0, scan = 0;
    for (let q = find(text, mark, t); q >= 0 && k < nboxes; q = find(text, mark, q + ml)) {
      for (; scan < q; scan++) {
        const pn = pageMention(text, scan);
        if (pn < 1) continue;
        let idx = -1;
        for (let j = 0; j < npages; j++) if (pages[j] === pn) idx = j;
        if (idx < 0 && pn <= npages) idx = pn - 1;
        if (idx >= 0) cur = idx;
      }
      const next = find(text, mark, q + ml);
      const nb = parse(text.slice(q, next >= 0 ? next : text.length)).length;
      for (let j = 0; j < nb && k < nboxes; j++) out[k++] = cur;
    }
    for (; k < nboxes; k++) out[k] = cur;
    return out;
  }

  // box_to_pixels: pixel coordinates in a w x h image, round(v * size / 1000) clamped, ordered
  function toPixels(b, w, h) {
    const px = (v, size) => {
      if (size <= 0 || Number.isNaN(v)) return 0;
      const x = v * size / 1000;
      let r = x < 0 ? -Math.round(-x) : Math.round(x); // half away from zero, as C's round
      if (r < 0) r = 0;
      if (r > size - 1) r = size - 1;
      return r;
    };
    const x1 = px(b.x1, w), x2 = px(b.x2, w), y1 = px(b.y1, h), y2 = px(b.y2, h);
    return { x1: Math.min(x1, x2), y1: Math.min(y1, y2), x2: Math.max(x1, x2), y2: Math.max(y1, y2) };
  }

  // box_color: the outline colour of box i (boxes_draw_png's palette)
  const PALETTE = ["#ff2828", "#28e628", "#2878ff", "#ffdc00", "#ff00ff", "#00e6ff", "#ff8c00", "#aa5aff"];
  function color(i) {
    return PALETTE[((i % 8) + 8) % 8];
  }

  global.GlmBoxes = { parse, parseDetailed, boxPages, toPixels, color, BOX_BEGIN, BOX_END };
})(window);
