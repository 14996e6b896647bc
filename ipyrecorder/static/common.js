/* ipyrecorder: what the offline html report and the live web dashboard share. Vanilla JS.
 *
 * The html sink inlines this file ahead of report.js in the report's one script; the web
 * viewer serves this same file to the dashboard. It defines window.ipyrecorderCommon:
 * formatting helpers, the decoder of the columnar task encoding (docs/sinks.md, `html`),
 * a paged sortable table, the task search, and the timeline's drawing primitives.
 *
 * Text from a log only ever reaches the page through textContent (h) or canvas fillText.
 */
(function (root) {
  "use strict";

  var C = (root.ipyrecorderCommon = {});

  // Constants from Python (ipyrecorder/browser.py, colours.py), put in when the page or asset is built.
  var COLOURS = /*@@COLOURS@@*/ null;
  C.STATUSES = /*@@STATUSES@@*/ null;  // a task's status code in the columns -> its name
  var ST = (C.ST = {});  // a status name -> its code
  C.STATUSES.forEach(function (name, code) { ST[name] = code; });
  C.isDone = function (st) { return st === ST.ok || st === ST.error || st === ST.aborted; };
  C.PALETTE = COLOURS.palette;
  // A task's colour slot when its status decides it (after the palette: error, aborted, running), else -1.
  C.statusSlot = function (st) {
    var P = C.PALETTE.length;
    return st === ST.error ? P : st === ST.aborted ? P + 1 : st === ST.running ? P + 2 : -1;
  };
  // ipyrecorder.events.split_msg_id as the columns store a msg_id: [prefix, numeric suffix], or [whole, none].
  C.splitMsgId = function (id, none) {
    var k = id.lastIndexOf("_"), tail = id.slice(k + 1);
    if (/^[0-9]+$/.test(tail) && tail.length < 19 && (tail === "0" || tail[0] !== "0") && Number(tail) < none) {
      return [id.slice(0, k + 1), Number(tail)];
    }
    return [id, none];
  };
  C.C_ERROR = COLOURS.error; C.C_ABORTED = COLOURS.aborted; C.C_RUNNING = COLOURS.running; C.C_QUEUED = COLOURS.queued;
  C.C_DEPENDENCY = COLOURS.dependency;
  // A function's palette index: FNV-1a over the UTF-8 bytes of its name, as colours.palette_index.
  C.colourIndex = function (name) {
    var bytes = new TextEncoder().encode(name || ""), h = 0x811c9dc5;
    for (var k = 0; k < bytes.length; k++) h = Math.imul(h ^ bytes[k], 0x01000193) >>> 0;
    return h % C.PALETTE.length;
  };
  // A function's colour among those already taken (a Set of indexes, added to): its own, else the next
  // free one, as colours.distinct_colours gives them (the functions in sorted order).
  C.takeColour = function (name, taken) {
    var P = C.PALETTE.length, index = C.colourIndex(name);
    for (var step = 0; step < P && taken.has(index); step++) index = (index + 1) % P;
    taken.add(index);
    return index;
  };
  C.C_GRID = "#eaeef2"; C.C_ZEBRA = "#f6f8fa"; C.C_TEXT = "#57606a"; C.C_MARK = COLOURS.mark;
  C.FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif";
  var MU = (C.MU = "\u00b5"), DASH = (C.DASH = "\u2013");
  C.TIMES = "\u00d7";
  var EMPTY = (C.EMPTY = 255);
  var ALPHAS = [0.25, 0.45, 0.65, 0.85, 1];  // merged columns: opacity by the busy fraction of the column
  function LEVEL(busy) { return busy >= 0.9 ? 4 : Math.floor(busy * 4.5); }

  // ---------------------------------------------------------------- helpers
  function h(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function fmtInt(n) { return Number(n).toLocaleString("en-US"); }
  function sig(x) { return x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0); }
  function fmtDur(us) {
    if (us === null || us === undefined || us !== us) return DASH;
    var a = Math.abs(us), sign = us < 0 ? "-" : "";
    if (a < 1e3) return sign + Math.round(a) + " " + MU + "s";
    if (a < 1e6) return sign + sig(a / 1e3) + " ms";
    if (a < 60e6) return sign + sig(a / 1e6) + " s";
    var s = Math.round(a / 1e6);
    if (s < 3600) return sign + Math.floor(s / 60) + " min " + (s % 60) + " s";
    return sign + Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function fmtBytes(n) {  // decimal units, as `info` writes them (rich.filesize.decimal)
    if (n === null || n === undefined || n !== n) return DASH;
    if (n < 1000) return n + (n === 1 ? " byte" : " bytes");
    var units = ["kB", "MB", "GB", "TB", "PB"], k = -1;
    do { n /= 1000; k++; } while (n >= 1000 && k < units.length - 1);
    return n.toFixed(1) + " " + units[k];
  }
  function fmtTime(iso) {  // "2026-01-02T03:04:05.678901+00:00" -> "2026-01-02 03:04:05.678901 UTC"
    return iso ? String(iso).replace("T", " ").replace(/\+00:00$/, " UTC") : null;
  }
  function fmtPct(x) {
    if (x === null || x === undefined || x !== x) return DASH;
    if (x > 0 && x < 0.001) return "<0.1%";
    if (x < 1 && x > 0.999) return ">99.9%";
    return (100 * x).toFixed(1) + "%";
  }
  function firstLine(text, max) {
    var line = String(text).split("\n").filter(function (l) { return l.trim(); })[0] || "";
    return line.length > max ? line.slice(0, max - 1) + "\u2026" : line;
  }
  function fitText(ctx, text, room) {  // the longest prefix (with an ellipsis) that fits in room pixels
    if (ctx.measureText(text).width <= room) return text;
    var lo = 0, hi = text.length - 1;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + "\u2026").width <= room) lo = mid; else hi = mid - 1;
    }
    return lo ? text.slice(0, lo) + "\u2026" : "";
  }
  function lowerBound(a, x, lo, hi) {  // first k in [lo, hi) with a[k] >= x
    while (lo < hi) { var m = (lo + hi) >>> 1; if (a[m] < x) lo = m + 1; else hi = m; }
    return lo;
  }
  function upperBound(a, x, lo, hi) {  // first k in [lo, hi) with a[k] > x
    while (lo < hi) { var m = (lo + hi) >>> 1; if (a[m] <= x) lo = m + 1; else hi = m; }
    return lo;
  }
  C.h = h; C.clear = clear; C.fmtInt = fmtInt; C.sig = sig; C.fmtDur = fmtDur; C.fmtBytes = fmtBytes; C.fmtTime = fmtTime;
  C.fmtPct = fmtPct; C.firstLine = firstLine; C.fitText = fitText; C.lowerBound = lowerBound; C.upperBound = upperBound;

  // ---------------------------------------------------------------- data
  C.b64ToBytes = function (text) {
    if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
    var bin = atob(text), n = bin.length, out = new Uint8Array(n);
    for (var i = 0; i < n; i++) out[i] = bin.charCodeAt(i);
    return out;
  };

  // The bytes, inflated when compression names a DecompressionStream format ("deflate"): a Promise.
  C.inflate = function (bytes, compression, hint) {
    if (!compression) return Promise.resolve(bytes);
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("This browser cannot decompress the data (no DecompressionStream)." + (hint || "")));
    }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(compression));
    return new Response(stream).arrayBuffer().then(function (buf) { return new Uint8Array(buf); });
  };

  var TYPES = (C.TYPES = { u1: Uint8Array, u2: Uint16Array, u4: Uint32Array, i4: Int32Array, f8: Float64Array });

  // The task columns of build_report_data's blob, as typed arrays (times: Float64Array of microseconds, NaN if missing).
  C.decode = function (meta, bytes) {
    function raw(name) {  // the column's typed array, its byte planes put back together
      var spec = meta.columns[name], T = TYPES[spec[0]], n = spec[2], w = T.BYTES_PER_ELEMENT;
      var src = bytes.subarray(spec[1], spec[1] + n * w);
      if (w === 1) return new T(src.slice().buffer);
      var out = new Uint8Array(n * w);
      for (var k = 0; k < w; k++) {
        var plane = k * n;
        for (var i = 0; i < n; i++) out[i * w + k] = src[plane + i];
      }
      return new T(out.buffer);
    }
    function col(name) {
      var spec = meta.columns[name], a = raw(name);
      if (spec[3] !== "delta") return a;
      var out = new Uint32Array(a.length), acc = 0;  // integer columns stored as deltas
      for (var i = 0; i < a.length; i++) { acc += a[i]; out[i] = acc; }
      return out;
    }
    function times(name, refs) {  // Float64Array of microseconds, NaN where missing
      var spec = meta.columns[name], a = raw(name), n = a.length, out = new Float64Array(n), i, v;
      var missing = spec[0] === "i4" ? meta.int32_missing : NaN;
      for (i = 0; i < n; i++) { v = a[i]; out[i] = v === missing ? NaN : v; }
      if (spec[3] === "delta") {
        var acc = 0;
        for (i = 0; i < n; i++) { v = out[i]; if (v === v) { acc += v; out[i] = acc; } }
      } else if (spec[3]) {
        var ref = refs[spec[3].slice(4)];
        for (i = 0; i < n; i++) { var r = ref[i]; if (r === r) out[i] += r; }
      }
      return out;
    }
    var t = {};
    t.start = times("start", t);
    t.end = times("end", t);
    t.sub = times("sub", t);
    t.recv = times("recv", t);
    function sizes(name) {  // Float64Array of bytes, NaN where not measured (or an older page's data lacks it)
      if (!meta.columns[name]) return new Float64Array(meta.tasks).fill(NaN);
      return raw(name);
    }
    var text = JSON.parse(new TextDecoder("utf-8").decode(bytes.subarray(meta.text[0], meta.text[0] + meta.text[1])));
    return {
      n: meta.tasks, sub: t.sub, start: t.start, end: t.end, recv: t.recv,
      row: col("row"), status: col("status"), fn: col("fn"), name: col("name"), mp: col("mp"), ms: col("ms"),
      bytesIn: sizes("bytes_in"), bytesOut: sizes("bytes_out"),
      strings: text.strings, stdout: new Map(text.stdout), stderr: new Map(text.stderr), errors: new Map(text.errors),
      tracebacks: new Map(text.tracebacks || []), depends: text.depends || [],
      statuses: meta.statuses, noEngine: meta.no_engine, noSuffix: meta.no_suffix, engines: meta.engines,
    };
  };

  C.msgId = function (D, i) {
    var p = D.strings[D.mp[i]];
    return D.ms[i] === D.noSuffix ? p : p + D.ms[i];
  };
  C.engineOf = function (D, i) { var r = D.row[i]; return r === D.noEngine ? null : D.engines[r].id; };
  C.taskTitle = function (D, i) { return D.strings[D.name[i]] || D.strings[D.fn[i]] || C.msgId(D, i); };
  C.runUs = function (D, i) { return D.end[i] - D.start[i]; };
  C.queueUs = function (D, i) { return D.start[i] - D.sub[i]; };
  C.errorText = function (D, i) { var e = D.errors.get(i); return e === undefined ? null : D.strings[e]; };
  C.tracebackText = function (D, i) { var e = D.tracebacks && D.tracebacks.get(i); return e === undefined ? null : D.strings[e]; };
  // A collapsed traceback (text only, never markup), or nothing.
  C.tracebackDetails = function (text) {
    var box = document.createElement("details"), summary = document.createElement("summary"), pre = document.createElement("pre");
    summary.textContent = "traceback";
    pre.textContent = text;
    box.appendChild(summary);
    box.appendChild(pre);
    // a traceback is read from its end, where the exception is
    box.addEventListener("toggle", function () { if (box.open) pre.scrollTop = pre.scrollHeight; });
    return box;
  };

  // ---------------------------------------------------------------- paged tables
  // columns: [{label, cls, cell(i, td), key() -> array of sort keys by row id (optional), desc}]
  function PagedTable(container, columns, opts) {
    this.columns = columns;
    this.opts = opts;
    this.pageSize = opts.pageSize || 50;
    this.rows = new Uint32Array(0);
    this.page = 0;
    this.sortCol = -1;
    this.sortDir = 1;
    this.selected = -1;
    var box = h("div", "table-box");
    this.table = h("table", "grid");
    var thead = h("thead"), tr = h("tr"), self = this;
    this.heads = columns.map(function (c, k) {
      var th = h("th", (c.cls || "") + (c.key ? " sortable" : ""));
      th.appendChild(document.createTextNode(c.label));
      if (c.key) {
        var arrow = h("span", "arrow");
        th.appendChild(arrow);
        th.title = "Sort by " + c.label;
        th.addEventListener("click", function () { self.sortBy(k); });
      }
      tr.appendChild(th);
      return th;
    });
    thead.appendChild(tr);
    this.table.appendChild(thead);
    this.tbody = h("tbody");
    this.table.appendChild(this.tbody);
    box.appendChild(this.table);
    container.appendChild(box);
    var pager = h("div", "pager");
    this.info = h("span", "info");
    pager.appendChild(this.info);
    function btn(label, title, fn) {
      var b = h("button", null, label); b.type = "button"; b.title = title;
      b.addEventListener("click", fn); pager.appendChild(b); return b;
    }
    this.bFirst = btn("\u00ab", "First page", function () { self.go(0); });
    this.bPrev = btn("\u2039 Prev", "Previous page", function () { self.go(self.page - 1); });
    this.pageInfo = h("span", "muted");
    pager.appendChild(this.pageInfo);
    this.bNext = btn("Next \u203a", "Next page", function () { self.go(self.page + 1); });
    this.bLast = btn("\u00bb", "Last page", function () { self.go(Infinity); });
    container.appendChild(pager);
  }
  PagedTable.prototype.setRows = function (rows, note) {
    this.base = rows;
    this.note = note || "";
    this.applySort();
    this.page = 0;
    this.render();
  };
  // New rows for the same view (live data): the sort and the page stay.
  PagedTable.prototype.refresh = function (rows, note) {
    this.base = rows;
    this.note = note || "";
    this.applySort();
    this.render();
  };
  PagedTable.prototype.sortBy = function (k) {
    if (this.sortCol === k) this.sortDir = -this.sortDir;
    else { this.sortCol = k; this.sortDir = this.columns[k].desc ? -1 : 1; }
    this.applySort();
    this.page = 0;
    this.render();
  };
  PagedTable.prototype.applySort = function () {
    var base = this.base || new Uint32Array(0);
    var self = this;
    this.heads.forEach(function (th, k) {
      var arrow = th.querySelector(".arrow");
      if (arrow) arrow.textContent = k === self.sortCol ? (self.sortDir > 0 ? "\u2191" : "\u2193") : "";
    });
    if (this.sortCol < 0) { this.rows = base; return; }
    var key = this.columns[this.sortCol].key(), dir = this.sortDir;
    var rows = Uint32Array.from(base);
    rows.sort(function (a, b) {
      var x = key[a], y = key[b];
      if (x !== x) return y !== y ? a - b : 1;
      if (y !== y) return -1;
      return dir * (x - y) || a - b;
    });
    this.rows = rows;
  };
  PagedTable.prototype.go = function (page) {
    var pages = Math.max(1, Math.ceil(this.rows.length / this.pageSize));
    this.page = Math.max(0, Math.min(pages - 1, page));
    this.render();
  };
  PagedTable.prototype.render = function () {
    var rows = this.rows, n = rows.length, size = this.pageSize, self = this;
    var pages = Math.max(1, Math.ceil(n / size));
    if (this.page > pages - 1) this.page = pages - 1;
    var from = this.page * size, to = Math.min(n, from + size);
    var body = h("tbody");
    for (var k = from; k < to; k++) {
      var i = rows[k], tr = h("tr", this.opts.onClick ? "clickable" : null);
      tr.dataset.index = String(i);
      if (i === this.selected) tr.classList.add("selected");
      for (var c = 0; c < this.columns.length; c++) {
        var col = this.columns[c], td = h("td", col.cls || null);
        col.cell(i, td);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    if (!n) {
      var tr0 = h("tr"), td0 = h("td", "empty", this.opts.empty || "Nothing to show.");
      td0.colSpan = this.columns.length; tr0.appendChild(td0); body.appendChild(tr0);
    }
    if (this.opts.onClick) {
      body.addEventListener("click", function (ev) {
        var tr = ev.target.closest("tr");
        if (tr && tr.dataset.index !== undefined) self.opts.onClick(Number(tr.dataset.index));
      });
    }
    this.table.replaceChild(body, this.tbody);
    this.tbody = body;
    this.info.textContent = n ? "Rows " + fmtInt(from + 1) + DASH + fmtInt(to) + " of " + fmtInt(n) + this.note : "No rows" + this.note;
    this.pageInfo.textContent = "page " + fmtInt(this.page + 1) + " of " + fmtInt(pages);
    this.bFirst.disabled = this.bPrev.disabled = this.page === 0;
    this.bNext.disabled = this.bLast.disabled = this.page >= pages - 1;
  };
  PagedTable.prototype.select = function (i) {
    this.selected = i;
    var k = this.rows.indexOf(i);
    if (k >= 0) this.page = Math.floor(k / this.pageSize);
    this.render();
  };
  C.PagedTable = PagedTable;

  // A cell renderer: fn(i) as text (its first line, cut to max characters, when max is given).
  // A column of msg_ids of D's tasks: each its last 12 characters (what tells one client's tasks apart), the
  // whole in its tooltip, so that a 42-character msg_id does not squeeze the names and output beside it.
  C.cellMsgId = function (store) {  // (store(): D, the task columns as they are now)
    return function (i, td) {
      var id = C.msgId(store(), i);
      td.textContent = id.length > 14 ? "\u2026" + id.slice(-12) : id;
      td.title = id;
    };
  };
  C.cellText = function (fn, max) {
    return function (i, td) {
      var t = fn(i);
      if (t === null || t === undefined || t === "") { td.textContent = DASH; td.classList.add("muted"); return; }
      td.textContent = max ? firstLine(t, max) : t;
      if (max && String(t).length > 0) td.title = t;
    };
  };
  C.statusBadge = function (status) { return h("span", "badge " + status, status); };

  // ---------------------------------------------------------------- search
  // Tasks matching every word of query (any of name, msg_id, function, status, engine; or field:word with
  // id/msg_id, name, fn/function, status, engine). cache ({}) keeps the lowered string table between calls;
  // it grows with D.strings. Returns a Uint32Array of task indices, in order.
  C.search = function (D, query, cache) {
    var terms = String(query).toLowerCase().split(/\s+/).filter(Boolean);
    var n = D.n, k;
    if (!terms.length) { var all = new Uint32Array(n); for (k = 0; k < n; k++) all[k] = k; return all; }
    var low = cache.lowered || (cache.lowered = []);
    for (k = low.length; k < D.strings.length; k++) low.push(String(D.strings[k]).toLowerCase());
    var nS = low.length, statuses = D.statuses, engines = D.engines;
    var tests = terms.map(function (term) {
      var field = null, m = /^(id|msg_id|name|fn|function|status|engine):(.*)$/.exec(term);
      if (m) { field = m[1]; term = m[2]; }
      if (field === "msg_id") field = "id";
      if (field === "fn") field = "function";
      var any = field === null, str = new Uint8Array(nS), st = new Uint8Array(statuses.length);
      var eng = new Uint8Array(engines.length + 1);
      if (any || field !== "engine" && field !== "status") {
        for (var s = 0; s < nS; s++) str[s] = low[s].indexOf(term) >= 0 ? 1 : 0;
      }
      if (any || field === "status") {
        for (var j = 0; j < statuses.length; j++) st[j] = (field ? statuses[j] === term : statuses[j].indexOf(term) >= 0) ? 1 : 0;
      }
      if (any || field === "engine") {
        var t = term.replace(/^engine\s*/, "");
        for (var r = 0; r < engines.length; r++) eng[r] = String(engines[r].id) === t && t !== "" ? 1 : 0;
      }
      return { field: field, term: term, str: str, st: st, eng: eng, digits: /[0-9]/.test(term) };
    });
    var out = new Uint32Array(n), count = 0;
    var row = D.row, status = D.status, fn = D.fn, name = D.name, mp = D.mp, ms = D.ms, noS = D.noSuffix, noE = D.noEngine;
    var nE = engines.length;
    for (var i = 0; i < n; i++) {
      var ok = true;
      for (var q = 0; q < tests.length && ok; q++) {
        var T = tests[q], f = T.field, hit = false;
        if (f === null || f === "id") {
          if (T.str[mp[i]]) hit = true;
          else if (T.digits && ms[i] !== noS && (low[mp[i]] + ms[i]).indexOf(T.term) >= 0) hit = true;
        }
        if (!hit && (f === null || f === "name")) hit = T.str[name[i]] === 1 && name[i] !== 0;
        if (!hit && (f === null || f === "function")) hit = T.str[fn[i]] === 1 && fn[i] !== 0;
        if (!hit && (f === null || f === "status")) hit = T.st[status[i]] === 1;
        if (!hit && (f === null || f === "engine")) hit = T.eng[row[i] === noE ? nE : row[i]] === 1;
        ok = hit;
      }
      if (ok) out[count++] = i;
    }
    return out.subarray(0, count);
  };

  // ---------------------------------------------------------------- timeline drawing
  // Time ticks for [v0, v1] over plotW pixels: about one every 110 px, on 1-2-5 steps.
  C.ticks = function (v0, v1, plotW) {
    var range = v1 - v0, want = Math.max(2, plotW / 110), raw = range / want;
    var p = Math.pow(10, Math.floor(Math.log10(raw))), step = p;
    [1, 2, 5, 10].some(function (m) { step = m * p; return m * p >= raw; });
    var out = [], t = Math.ceil(v0 / step) * step;
    for (; t <= v1; t += step) out.push(t);
    return { step: step, ts: out };
  };
  C.tickLabel = function (t, step, v0, v1) {  // the unit follows the size of the numbers shown, the decimals the step
    if (Math.abs(t) < step / 2) return "0";
    var big = Math.max(Math.abs(v0), Math.abs(v1)), unit = big >= 1e6 ? 1e6 : big >= 1e3 ? 1e3 : 1;
    var digits = Math.max(0, Math.min(6, Math.ceil(-Math.log10(step / unit) - 1e-9)));
    return (t / unit).toFixed(digits) + (unit === 1e6 ? " s" : unit === 1e3 ? " ms" : " " + MU + "s");
  };

  // Scratch buffers for a plot W pixels wide: col/cov (merged bars) and busy (busy engines per column).
  C.scratch = function (W) {
    var col = new Uint8Array(W + 2);
    col.fill(EMPTY);
    return { col: col, cov: new Float32Array(W + 2), busy: new Float64Array(W + 1) };
  };

  // One engine row's bars in view: row = {s, e, mx, ord} (starts sorted, ends, prefix max of ends, task ids),
  // m bars. Bars of 1.5 px or more are drawn as they are; narrower ones are merged per pixel column, in the
  // colour of the highest priority and paler where the engine was busy for less of the column. Each bar's
  // busy time is added per column to sc.busy. V = {v0, v1, scale, W, left}. Returns [bars in view, rects].
  C.drawRowBars = function (ctx, row, m, V, y, bh, cidx, colours, prio, sc) {
    var s = row.s, e = row.e, mx = row.mx, ord = row.ord, col = sc.col, cov = sc.cov, busy = sc.busy;
    var v0 = V.v0, v1 = V.v1, scale = V.scale, W = V.W, left = V.left, k, x0, x1, c;
    var lo = lowerBound(mx, v0, 0, m), hi = upperBound(s, v1, lo, m), nmin = W + 1, nmax = -1;
    var drawn = 0, rects = 0, lastColour = -1;
    for (k = lo; k < hi; k++) {
      if (e[k] < v0) continue;
      x0 = (s[k] - v0) * scale; x1 = (e[k] - v0) * scale;
      var ci = cidx[ord[k]], w = x1 - x0;
      drawn++;
      if (w >= 1.5) {
        if (ci !== lastColour) { ctx.fillStyle = colours[ci]; lastColour = ci; }
        var cx0 = x0 < -2 ? -2 : x0, cx1 = x1 > W + 2 ? W + 2 : x1;
        ctx.fillRect(left + cx0, y, Math.max(1, cx1 - cx0 - (w >= 4 ? 1 : 0)), bh);
        rects++;
        var ca = cx0 < 0 ? 0 : Math.floor(cx0), cb = cx1 > W ? W : Math.ceil(cx1);
        for (c = ca; c < cb; c++) busy[c] += Math.min(c + 1, x1) - Math.max(c, x0);
      } else {
        c = Math.floor(x0 + w / 2);
        if (c < 0) c = 0; else if (c >= W) c = W - 1;
        var cur = col[c];
        if (cur === EMPTY || prio[ci] > prio[cur]) col[c] = ci;
        busy[c] += w;
        cov[c] += w;
        if (c < nmin) nmin = c;
        if (c > nmax) nmax = c;
      }
    }
    // merged sub-pixel bars: one rect per run of columns of one colour and one busy level
    for (c = nmin; c <= nmax; c++) {
      var v = col[c];
      if (v === EMPTY) continue;
      var level = LEVEL(cov[c]), c2 = c + 1;
      while (c2 <= nmax && col[c2] === v && LEVEL(cov[c2]) === level) { col[c2] = EMPTY; cov[c2] = 0; c2++; }
      col[c] = EMPTY; cov[c] = 0;
      if (v !== lastColour) { ctx.fillStyle = colours[v]; lastColour = v; }
      ctx.globalAlpha = ALPHAS[level];
      ctx.fillRect(left + c, y, c2 - c, bh);
      rects++;
      c = c2 - 1;
    }
    ctx.globalAlpha = 1;
    return [drawn, rects];
  };

  // The busy-engines area over columns [x0, x1) (sc.busy: engines busy per column, capped at Rn), in a
  // panel at top..top+height. Returns {peak, total, cols} of the values drawn.
  C.drawBusy = function (ctx, busy, x0, x1, left, top, height, Rn) {
    var peak = 0, total = 0, cols = 0;
    ctx.fillStyle = "rgba(31, 119, 180, 0.30)";
    ctx.strokeStyle = "#1f77b4";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(left + x0, top + height);
    for (var c = x0; c < x1; c++) {
      var val = Math.min(busy[c], Rn);
      if (val > peak) peak = val;
      total += val; cols++;
      var yy = top + height - (val / Rn) * (height - 4);
      ctx.lineTo(left + c, yy); ctx.lineTo(left + c + 1, yy);
    }
    ctx.lineTo(left + Math.max(x1, x0), top + height);
    ctx.closePath();
    ctx.fill();
    return { peak: peak, total: total, cols: cols };
  };

  // Marks ({t, text}) in view as dashed lines from y0 to y1, labelled at labelY where there is room.
  // Marks in view: a dashed line from y0 to y1 each, and its text above the rows, in the first of C.MARK_LANES
  // lanes (from baseline labelY down) where it covers no other label; with no lane free here, only its line.
  // Returns how many labels it wrote.
  C.MARK_LANES = 3;
  var MARK_LANE = 13;  // pixels between lanes
  C.drawMarks = function (ctx, marks, V, y0, y1, labelY) {
    var v0 = V.v0, v1 = V.v1, left = V.left, W = V.W, scale = V.scale;
    ctx.save();
    ctx.strokeStyle = C.C_MARK;
    ctx.fillStyle = C.C_MARK;
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 1;
    var ends = [];
    for (var l = 0; l < C.MARK_LANES; l++) ends.push(-Infinity);
    var shown = marks.filter(function (mk) { return mk.t >= v0 && mk.t <= v1; }), labels = 0;
    shown.sort(function (a, b) { return a.t - b.t; });
    shown.forEach(function (mk) {
      var x = Math.round(left + (mk.t - v0) * scale) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, y0); ctx.lineTo(x, y1); ctx.stroke();
      var whole = String(mk.text).slice(0, 200), width = ctx.measureText(whole).width, text = whole, lane;
      var at = x + 3;  // right of its line, or left of it where the plot ends first
      if (at + width > left + W && x - 3 - width >= left) at = x - 3 - width;
      lane = ends.findIndex(function (end) { return end <= at; });
      if (lane < 0) return;  // (every lane is taken here: the line shows the mark; zooming in makes room)
      if (at + width > left + W) text = fitText(ctx, whole, left + W - at);
      if (!text) return;
      ctx.fillText(text, at, labelY + lane * MARK_LANE);
      ends[lane] = Math.max(at + ctx.measureText(text).width, x) + 8;
      labels++;
    });
    ctx.restore();
    return labels;
  };

  // The names of a row's bars wide enough to hold some letters (label(i): the text), in a colour that reads on
  // the bar's; at most MAX_BAR_NAMES in a frame (sc.names counts them).
  var MAX_BAR_NAMES = 400, BAR_NAME_MIN = 36;
  C.drawBarNames = function (ctx, row, m, V, y, bh, cidx, colours, label, sc) {
    if (bh < 12) return;
    var s = row.s, e = row.e, mx = row.mx, ord = row.ord, v0 = V.v0, v1 = V.v1, scale = V.scale, W = V.W, left = V.left;
    var lo = lowerBound(mx, v0, 0, m), hi = upperBound(s, v1, lo, m);
    ctx.save();
    ctx.font = "11px system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "center";
    for (var k = lo; k < hi && sc.names < MAX_BAR_NAMES; k++) {
      if (e[k] < v0) continue;
      var x0 = Math.max(0, (s[k] - v0) * scale), x1 = Math.min(W, (e[k] - v0) * scale);
      if (x1 - x0 < BAR_NAME_MIN) continue;
      var text = fitText(ctx, label(ord[k]), x1 - x0 - 6), cut = text.slice(-1) === "\u2026";
      if (cut) text = text.slice(0, -1).trimEnd() + "\u2026";
      if (!text || (cut && text.length < 5)) continue;  // (a name cut to a few letters says nothing)
      ctx.fillStyle = textOn(colours[cidx[ord[k]]]);
      ctx.fillText(text, left + (x0 + x1) / 2, y + bh / 2);
      sc.names++;
    }
    ctx.restore();
  };
  // Dark text on a light colour, white on a dark one (#rrggbb).
  function textOn(colour) {
    var n = parseInt(colour.slice(1), 16), r = n >> 16, g = (n >> 8) & 255, b = n & 255;
    return 0.299 * r + 0.587 * g + 0.114 * b > 160 ? "#24292f" : "#ffffff";
  }

  // The task of a row nearest to time t within tol (the narrowest on a tie), or -1.
  C.hitRow = function (row, m, t, tol) {
    var k = upperBound(row.s, t + tol, 0, m) - 1, best = -1, bestD = Infinity, bestW = Infinity, steps = 0;
    for (; k >= 0 && row.mx[k] >= t - tol && steps < 50000; k--, steps++) {
      var s = row.s[k], e = row.e[k];
      var d = t < s ? s - t : t > e ? t - e : 0;
      if (d > tol) continue;
      var w = e - s;
      if (d < bestD || (d === bestD && w < bestW)) { best = row.ord[k]; bestD = d; bestW = w; }
    }
    return best;
  };

  // ---------------------------------------------------------------- legend and marks
  // A legend entry in box: a swatch of colour (thin: a narrow band) and its label.
  C.legendItem = function (box, colour, label, thin) {
    var it = h("span", "item"), sw = h("span", "swatch" + (thin ? " thin" : ""));
    sw.style.background = colour;
    it.appendChild(sw); it.appendChild(h("span", null, label));
    box.appendChild(it);
  };
  // The legend's first 12 functions (string ids; fnColour: id -> palette index), then how many more there are.
  C.legendFunctions = function (box, functions, fnColour, strings) {
    var shown = functions.slice(0, 12);
    shown.forEach(function (f) { C.legendItem(box, C.PALETTE[fnColour.get(f)], strings[f] || "(no function)"); });
    if (functions.length > shown.length) box.appendChild(h("span", "item", "+" + (functions.length - shown.length) + " more functions"));
  };
  // A row of the marks table: when (fmtAt), text, data.
  C.markRow = function (m, fmtAt) {
    var tr = h("tr");
    tr.appendChild(h("td", "num", fmtAt(m.t)));
    tr.appendChild(h("td", "wrap", m.text));
    tr.appendChild(h("td", "mono wrap", m.data));
    return tr;
  };

  // ---------------------------------------------------------------- timeline behaviour
  // Bar height in a row rowH pixels tall.
  C.barHeight = function (rowH) { return rowH >= 8 ? Math.round(rowH * 0.72) : rowH >= 4 ? rowH - 1 : rowH; };

  // What the report's and the dashboard's timelines share: each is Object.create(C.Timeline) plus its own
  // fields and hooks. They hold canvas, overlay, ctx, octx, box, tip, L, dpr, sc, v0, v1, hover, mouse, and
  // provide barRect(i), hitRowAt(j, t, tol) (the task hit in the j-th drawn row), tipFill(i, tip), panTo(a, b),
  // pause(), reset(), clicked(i) and request(); selectedIndex() defaults to this.selected.
  var T = (C.Timeline = {});

  T.selectedIndex = function () { return this.selected; };

  // Takes the page's timeline elements (#timeline, #overlay, #timeline-box, #tooltip) and sets the bar colours:
  // the palette, then error, aborted, running (priority when merged: error, running, aborted, functions).
  T.attach = function () {
    var P = C.PALETTE.length, byId = document.getElementById.bind(document);
    this.canvas = byId("timeline");
    this.overlay = byId("overlay");
    this.box = byId("timeline-box");
    this.tip = byId("tooltip");
    this.ctx = this.canvas.getContext("2d");
    this.octx = this.overlay.getContext("2d");
    this.colours = C.PALETTE.concat([C.C_ERROR, C.C_ABORTED, C.C_RUNNING]);
    this.priority = new Uint8Array(this.colours.length);
    this.priority[P] = 3; this.priority[P + 1] = 1; this.priority[P + 2] = 2;
  };
  T.pause = function () {};

  // The row height for R rows (fixed, when given, instead of the one that fits).
  T.rowHeight = function (R, fixed) {
    var rowH = fixed || Math.max(0.5, Math.min(40, Math.floor(480 / R)));  // (a few engines: rows that hold a name)
    if (R * rowH > 1400) rowH = 1400 / R;
    return rowH;
  };

  // Lays out R rows (R >= 1) labelled by names; sizes the canvases (and scratch buffers) when that changed.
  T.fitLayout = function (R, rowH, names, minLeft, right, busyH) {
    var width = Math.max(320, Math.floor(this.box.clientWidth));
    var ctx = this.ctx, label = 0;
    ctx.font = C.FONT;
    names.forEach(function (t) { label = Math.max(label, ctx.measureText(t).width); });
    var top = 9 + MARK_LANE * C.MARK_LANES;  // the marks' labels, in lanes above the rows
    var L = { width: width, rowH: rowH, left: Math.ceil(Math.max(minLeft, label + 16)), right: right, top: top, rowsH: R * rowH,
      gap: 10, busyH: busyH, axisH: 24 };
    L.plotW = Math.max(50, width - L.left - L.right);
    L.busyTop = L.top + L.rowsH + L.gap;
    L.height = Math.ceil(L.busyTop + L.busyH + L.axisH);
    var dpr = window.devicePixelRatio || 1;
    var changed = !this.L || this.L.width !== L.width || this.L.height !== L.height || this.dpr !== dpr;
    this.L = L; this.dpr = dpr;
    if (changed) {
      [this.canvas, this.overlay].forEach(function (c) {
        c.width = Math.round(L.width * dpr); c.height = Math.round(L.height * dpr);
        c.style.width = L.width + "px"; c.style.height = L.height + "px";
      });
      this.sc = C.scratch(L.plotW);
    }
    return changed;
  };

  // Starts a frame: white ground, zebra rows (R drawn), grid lines at ticks; clears sc.busy and clips to the plot
  // (the caller restores).
  T.beginFrame = function (V, R, ticks) {
    var L = this.L, ctx = this.ctx, left = V.left, W = V.W, rowH = L.rowH, top = L.top;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, L.width, L.height);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, L.width, L.height);
    ctx.font = C.FONT;
    if (rowH >= 6) {
      ctx.fillStyle = C.C_ZEBRA;
      for (var r = 1; r < R; r += 2) ctx.fillRect(left, top + r * rowH, W, rowH);
    }
    ctx.fillStyle = C.C_GRID;
    ticks.ts.forEach(function (t) {
      var x = Math.round(left + (t - V.v0) * V.scale);
      ctx.fillRect(x, top, 1, L.rowsH);
      if (L.busyH) ctx.fillRect(x, L.busyTop, 1, L.busyH);
    });
    this.sc.busy.fill(0);
    this.sc.names = 0;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, 0, W, L.height);
    ctx.clip();
  };

  // The frames of the rows and busy panels, and the labels of the R rows drawn (name(j)) and of the busy panel.
  T.drawFrame = function (V, R, name) {
    var L = this.L, ctx = this.ctx, left = V.left, W = V.W, rowH = L.rowH, top = L.top;
    ctx.fillStyle = C.C_TEXT;
    ctx.strokeStyle = "#afb8c1";
    ctx.lineWidth = 1;
    ctx.strokeRect(left + 0.5, top + 0.5, W - 1, L.rowsH);
    if (L.busyH) ctx.strokeRect(left + 0.5, L.busyTop + 0.5, W - 1, L.busyH);
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    var every = Math.max(1, Math.ceil(14 / rowH));
    for (var j = 0; j < R; j += every) ctx.fillText(name(j), left - 8, top + j * rowH + rowH / 2);
    if (L.busyH) {
      ctx.fillText("busy", left - 8, L.busyTop + L.busyH / 2 - 7);
      ctx.fillText("engines", left - 8, L.busyTop + L.busyH / 2 + 7);
    }
  };

  // The time axis' labels, and the note of the busy panel's stats (C.drawBusy's, or null) over R engines.
  T.drawAxis = function (V, ticks, stats, R) {
    var L = this.L, ctx = this.ctx, left = V.left, W = V.W, v0 = V.v0, v1 = V.v1;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    var tickY = L.busyTop + L.busyH + 6;
    ticks.ts.forEach(function (t) {
      var label = C.tickLabel(t, ticks.step, v0, v1), x = left + (t - v0) * V.scale, half = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.max(left + half - 4, Math.min(left + W + L.right - half - 1, x)), tickY);
    });
    if (stats && stats.cols) {
      ctx.textAlign = "right";
      var note = "peak " + stats.peak.toFixed(1) + ", mean " + (stats.total / stats.cols).toFixed(2) + " of " + R + " in view";
      var nw = ctx.measureText(note).width;
      ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
      ctx.fillRect(left + W - 10 - nw, L.busyTop + 2, nw + 8, 16);
      ctx.fillStyle = C.C_TEXT;
      ctx.fillText(note, left + W - 6, L.busyTop + 4);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
  };

  // CSS pixels, relative to the canvas, of a bar from s to e in the j-th drawn row.
  T.barBox = function (j, s, e) {
    var L = this.L, scale = L.plotW / (this.v1 - this.v0), rowH = L.rowH, bh = C.barHeight(rowH);
    var x0 = L.left + (s - this.v0) * scale, x1 = L.left + (e - this.v0) * scale;
    return { x: x0, y: L.top + j * rowH + (rowH - bh) / 2, w: x1 - x0, h: bh };
  };

  // The selected and hovered bars' outlines, their dependencies' links (a page's links(i): [[from, to]...],
  // from the end of the task waited on to the start of the one that waited), and the cursor line.
  T.drawOverlay = function () {
    var ctx = this.octx, L = this.L, dpr = this.dpr, self = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, L.width, L.height);
    if (this.links) {
      ctx.strokeStyle = ctx.fillStyle = C.C_DEPENDENCY;
      ctx.lineWidth = 1.5;
      [this.selectedIndex(), this.hover].forEach(function (i) {
        if (i >= 0) self.links(i).forEach(function (pair) { self.drawLink(pair[0], pair[1]); });
      });
    }
    [[this.selectedIndex(), "#0969da"], [this.hover, "#24292f"]].forEach(function (p) {
      if (p[0] < 0) return;
      var b = self.barRect(p[0]);
      if (!b) return;
      var x0 = Math.max(L.left - 2, b.x), x1 = Math.min(L.left + L.plotW + 2, b.x + Math.max(b.w, 1));
      if (x1 < L.left || x0 > L.left + L.plotW) return;
      if (x1 - x0 < 5) { var mid = (x0 + x1) / 2; x0 = mid - 2.5; x1 = mid + 2.5; }
      ctx.strokeStyle = p[1];
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 - 1, b.y - 1, x1 - x0 + 2, b.h + 2);
    });
    if (this.mouse && this.mouse.inPlot) {
      ctx.fillStyle = "rgba(36, 41, 47, 0.35)";
      ctx.fillRect(Math.round(this.mouse.x), L.top, 1, L.busyTop + L.busyH - L.top);
    }
  };

  T.drawLink = function (from, to) {
    var a = this.barRect(from), b = this.barRect(to), ctx = this.octx;
    if (!a || !b) return;
    var x0 = a.x + Math.max(a.w, 1), y0 = a.y + a.h / 2, x1 = b.x, y1 = b.y + b.h / 2;
    var angle = Math.atan2(y1 - y0, x1 - x0);
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(x1, y1);  // the arrow's head, at the task that waited
    ctx.lineTo(x1 - 7 * Math.cos(angle - 0.4), y1 - 7 * Math.sin(angle - 0.4));
    ctx.lineTo(x1 - 7 * Math.cos(angle + 0.4), y1 - 7 * Math.sin(angle + 0.4));
    ctx.closePath(); ctx.fill();
  };

  // The task under (px, py), or -1.
  T.hitTest = function (px, py) {
    var L = this.L;
    if (!L || px < L.left || px > L.left + L.plotW || py < L.top || py >= L.top + L.rowsH) return -1;
    var j = Math.floor((py - L.top) / L.rowH);
    if (j < 0) return -1;
    var scale = L.plotW / (this.v1 - this.v0), t = this.v0 + (px - L.left) / scale, tol = 3 / scale;
    return this.hitRowAt(j, t, tol);
  };

  // A definition list appended to tip; returns row(k, v), which adds a non-empty v.
  C.tipList = function (tip) {
    var dl = tip.appendChild(h("dl"));
    return function (k, v) { if (v === null || v === undefined || v === "") return; dl.appendChild(h("dt", null, k)); dl.appendChild(h("dd", null, v)); };
  };
  // A pre of text (when there is some) appended to tip.
  C.tipPre = function (tip, cls, text) { if (text) tip.appendChild(h("pre", cls, text)); };

  // The tooltip of task i (filled by tipFill) near (px, py); hidden for i < 0.
  T.showTip = function (i, px, py) {
    var tip = this.tip;
    if (i < 0) { tip.hidden = true; return; }
    clear(tip);
    this.tipFill(i, tip);
    tip.hidden = false;
    var bw = this.box.clientWidth, tw = tip.offsetWidth, th = tip.offsetHeight, x = px + 16, y = py + 16;
    if (x + tw > bw) x = Math.max(0, px - tw - 16);
    if (y + th > this.L.height && py - th - 16 >= 0) y = py - th - 16;
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  };

  // Mouse handling on the overlay: wheel zooms (horizontal wheel pans), drag pans, click selects, hover shows
  // the tooltip, double click resets.
  T.bind = function () {
    var self = this, ov = this.overlay, drag = null;
    function pos(ev) { var r = ov.getBoundingClientRect(); return { x: ev.clientX - r.left, y: ev.clientY - r.top }; }
    ov.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var p = pos(ev), dy = ev.deltaY * (ev.deltaMode === 1 ? 16 : ev.deltaMode === 2 ? 400 : 1);
      if (Math.abs(ev.deltaX) > Math.abs(dy)) {  // horizontal scroll pans
        var dt = ev.deltaX * (self.v1 - self.v0) / self.L.plotW;
        self.pause();
        self.panTo(self.v0 + dt, self.v1 + dt);
      } else {
        self.zoomAt(p.x, Math.exp(Math.max(-300, Math.min(300, dy)) * 0.002));
      }
      self.tip.hidden = true;
    }, { passive: false });
    ov.addEventListener("mousedown", function (ev) {
      if (ev.button !== 0) return;
      drag = { x: pos(ev).x, v0: self.v0, v1: self.v1, moved: false };
      ov.classList.add("dragging");
      ev.preventDefault();
    });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) return;
      var dx = pos(ev).x - drag.x;
      if (Math.abs(dx) > 3 && !drag.moved) { drag.moved = true; self.pause(); }
      if (!drag.moved) return;
      var dt = -dx * (drag.v1 - drag.v0) / self.L.plotW;
      self.panTo(drag.v0 + dt, drag.v1 + dt);
      self.tip.hidden = true;
    });
    window.addEventListener("mouseup", function (ev) {
      if (!drag) return;
      var wasDrag = drag.moved;
      drag = null;
      ov.classList.remove("dragging");
      if (!wasDrag && ev.target === ov) {
        var p = pos(ev), i = self.hitTest(p.x, p.y);
        if (i >= 0) self.clicked(i);
      }
    });
    ov.addEventListener("mousemove", function (ev) {
      if (drag) return;
      var p = pos(ev), L = self.L;
      if (!L) return;
      self.mouse = { x: p.x, y: p.y, inPlot: p.x >= L.left && p.x <= L.left + L.plotW && p.y >= L.top && p.y <= L.busyTop + L.busyH };
      var i = self.hitTest(p.x, p.y);
      self.hover = i;
      self.showTip(i, p.x, p.y);
      self.drawOverlay();
    });
    ov.addEventListener("mouseleave", function () { self.hover = -1; self.mouse = null; self.tip.hidden = true; self.drawOverlay(); });
    ov.addEventListener("dblclick", function (ev) { ev.preventDefault(); self.reset(); });
  };
})(window);
