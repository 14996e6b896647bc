/* ipyrecorder html report: vanilla JS, no network, no framework.
 *
 * All text that comes from a log (names, functions, msg_ids, errors, output,
 * marks, the title) reaches the page through textContent or canvas fillText,
 * never through innerHTML. The tasks are columns of typed arrays; the timeline
 * draws per engine row only the bars in view, merging bars narrower than a
 * pixel, and hit-tests by binary search in each row.
 */
(function () {
  "use strict";

  var API = (window.ipyrecorderReport = { ready: false, error: null, draws: 0, lastDraw: null });

  // Shared with the live dashboard: common.js (inlined ahead of this file) defines window.ipyrecorderCommon.
  var C = window.ipyrecorderCommon;
  var PALETTE = C.PALETTE, C_ERROR = C.C_ERROR, C_ABORTED = C.C_ABORTED, C_RUNNING = C.C_RUNNING, C_QUEUED = C.C_QUEUED;
  var C_GRID = C.C_GRID, C_ZEBRA = C.C_ZEBRA, C_TEXT = C.C_TEXT, FONT = C.FONT, DASH = C.DASH, TIMES = C.TIMES;
  var h = C.h, clear = C.clear, fmtInt = C.fmtInt, fmtDur = C.fmtDur, fmtTime = C.fmtTime, fmtPct = C.fmtPct;
  var lowerBound = C.lowerBound, upperBound = C.upperBound;
  var msgId = C.msgId, engineOf = C.engineOf, taskTitle = C.taskTitle, runUs = C.runUs, queueUs = C.queueUs;
  var errorText = C.errorText, PagedTable = C.PagedTable, cellText = C.cellText;

  // ---------------------------------------------------------------- helpers
  function $(id) { return document.getElementById(id); }
  var atUnit = 1e6;  // offsets are shown in seconds, or in ms for runs shorter than a second
  function fmtAt(us) {  // an offset from the run's start
    if (us === null || us === undefined || us !== us) return DASH;
    var s = us < 0 ? "-" : "+", a = Math.abs(us);
    return atUnit === 1e6 ? s + (a / 1e6).toFixed(3) + " s" : s + (a / 1e3).toFixed(3) + " ms";
  }

  // ---------------------------------------------------------------- data
  function loadBytes(meta) {
    var bytes = C.b64ToBytes($("ipyr-blob").textContent.trim());
    return C.inflate(bytes, meta.compression, " Regenerate the report with -O compress=false.");
  }
  var decode = C.decode;

  // ---------------------------------------------------------------- page
  var meta, D;

  function fatal(message) {
    var box = $("fatal");
    box.textContent = message;
    box.hidden = false;
    API.error = message;
  }

  function start() {
    try {
      meta = JSON.parse($("ipyr-meta").textContent);
    } catch (exc) {
      fatal("The report's data is unreadable: " + exc);
      return;
    }
    if (meta.span_us !== null && meta.span_us < 1e6) atUnit = 1e3;
    $("title").textContent = meta.title;
    document.title = meta.title;
    loadBytes(meta).then(function (bytes) {
      D = decode(meta, bytes);
      renderSummary();
      renderEngines();
      Timeline.init();
      renderErrors();
      Tasks.init();
      API.ready = true;
    }).catch(function (exc) {
      fatal(String(exc && exc.message ? exc.message : exc));
      if (window.console) console.warn(exc);
    });
  }

  function card(label, value, sub, cls) {
    var c = h("div", "card" + (cls ? " " + cls : ""));
    c.appendChild(h("div", "label", label));
    c.appendChild(h("div", "value", value));
    if (sub) c.appendChild(h("div", "sub", sub));
    return c;
  }

  function renderSummary() {
    var s = meta.summary, by = s.by_status || {}, rec = meta.recording || {};
    var engines = meta.engines, busy = 0, util = 0, utilN = 0;
    engines.forEach(function (e) {
      busy += e.busy_seconds || 0;
      if (e.utilisation !== null && e.utilisation !== undefined) { util += e.utilisation; utilN++; }
    });
    var span = meta.span_us === null ? null : meta.span_us;
    var parts = [fmtInt(meta.tasks) + " tasks", fmtInt(engines.length) + " engine" + (engines.length === 1 ? "" : "s")];
    if (span !== null) parts.push(fmtDur(span));
    var sub = parts.join(" \u00b7 ");
    if (rec.host) sub += " \u00b7 recorded on " + rec.host;
    if (s.start) sub += " \u00b7 " + fmtTime(s.start).replace(/\.\d+/, "");
    $("subtitle").textContent = sub;

    var cards = $("cards");
    cards.appendChild(card("Tasks", fmtInt(meta.tasks), s.segments > 1 ? s.segments + " recording segments" : null));
    cards.appendChild(card("Succeeded", fmtInt(by.ok || 0), meta.tasks ? fmtPct((by.ok || 0) / meta.tasks) : null, "good"));
    cards.appendChild(card("Failed", fmtInt(by.error || 0), meta.tasks ? fmtPct((by.error || 0) / meta.tasks) : null, by.error ? "bad" : ""));
    ["aborted", "running", "pending"].forEach(function (st) {
      if (by[st]) cards.appendChild(card(st.charAt(0).toUpperCase() + st.slice(1), fmtInt(by[st]), null, "warn"));
    });
    cards.appendChild(card("Span", span === null ? DASH : fmtDur(span), "first submission to last reply"));
    cards.appendChild(card("Engines", fmtInt(engines.length), utilN ? "mean utilisation " + fmtPct(util / utilN) : null));
    cards.appendChild(card("Busy time", fmtDur(busy * 1e6), "summed over engines"));
    cards.appendChild(card("Marks", fmtInt(meta.marks.length)));

    var dl = $("recording");
    function fact(k, v) { if (v === null || v === undefined || v === "") return; dl.appendChild(h("dt", null, k)); dl.appendChild(h("dd", null, v)); }
    fact("Log", meta.log);
    fact("Start", fmtTime(s.start));
    fact("End", fmtTime(s.end));
    fact("Host", rec.host);
    fact("PID", rec.pid);
    fact("Python", rec.python);
    fact("ipyparallel", rec.ipyparallel);
    fact("Recorder", rec.recorder);
    fact("Segments", s.segments);
    fact("Closed cleanly", s.closed ? "yes" : "no (the recording did not close the log)");
    if (s.damage && s.damage.length) fact("Damage", s.damage.join("\n"));
    fact("Times", "relative to " + fmtTime(meta.origin));

    if (meta.marks.length) {
      $("marks-box").hidden = false;
      var tb = $("marks-table").tBodies[0];
      meta.marks.forEach(function (m) {
        var tr = h("tr");
        tr.appendChild(h("td", "num", fmtAt(m.t)));
        tr.appendChild(h("td", "wrap", m.text));
        tr.appendChild(h("td", "mono wrap", m.data));
        tb.appendChild(tr);
      });
    }
    $("footer").textContent = "Generated by " + meta.generator + (meta.log ? " from " + meta.log : "") + ".";
  }

  function renderEngines() {
    var tb = $("engines-table").tBodies[0];
    if (!meta.engines.length) {
      var tr = h("tr"), td = h("td", "empty", "No engine appears in this log.");
      td.colSpan = 6; tr.appendChild(td); tb.appendChild(tr);
      return;
    }
    meta.engines.forEach(function (e) {
      var tr = h("tr");
      tr.appendChild(h("td", "num", e.id));
      tr.appendChild(h("td", "num", fmtInt(e.tasks)));
      tr.appendChild(h("td", "num", fmtDur(e.busy_seconds * 1e6)));
      var td = h("td"), bar = h("span", "bar"), fill = h("span");
      fill.style.width = Math.max(0, Math.min(100, 100 * (e.utilisation || 0))) + "%";
      bar.appendChild(fill); td.appendChild(bar); td.appendChild(document.createTextNode(fmtPct(e.utilisation)));
      tr.appendChild(td);
      var err = h("td", "num", fmtInt(e.errors));
      if (e.errors) err.style.color = C_ERROR;
      tr.appendChild(err);
      var life = [];
      if (e.registered !== null && !e.present_at_start) life.push("joined " + fmtAt(e.registered));
      if (e.unregistered !== null) life.push("left " + fmtAt(e.unregistered));
      tr.appendChild(h("td", "muted", life.length ? life.join(", ") : "whole run"));
      tb.appendChild(tr);
    });
  }

  function cellStatus(i, td) { td.appendChild(C.statusBadge(D.statuses[D.status[i]])); }

  // ---------------------------------------------------------------- tasks + search
  var Tasks = {
    init: function () {
      var all = new Uint32Array(D.n);
      for (var i = 0; i < D.n; i++) all[i] = i;
      this.all = all;
      var keys = {};
      function lazy(name, f) {
        return function () {
          if (!keys[name]) { var a = new Float64Array(D.n); for (var i = 0; i < D.n; i++) a[i] = f(i); keys[name] = a; }
          return keys[name];
        };
      }
      this.table = new PagedTable($("task-list"), [
        { label: "msg_id", cls: "mono clip", cell: cellText(function (i) { return msgId(D, i); }) },
        { label: "name", cls: "clip", cell: cellText(function (i) { return D.strings[D.name[i]]; }) },
        { label: "function", cls: "mono clip", cell: cellText(function (i) { return D.strings[D.fn[i]]; }) },
        { label: "engine", cls: "num", key: lazy("engine", function (i) { var e = engineOf(D, i); return e === null ? NaN : e; }),
          cell: cellText(function (i) { return engineOf(D, i); }) },
        { label: "status", cell: cellStatus },
        { label: "started", cls: "num", key: lazy("start", function (i) { return D.start[i]; }),
          cell: cellText(function (i) { return D.start[i] === D.start[i] ? fmtAt(D.start[i]) : null; }) },
        { label: "duration", cls: "num", desc: true, key: lazy("run", function (i) { return runUs(D, i); }),
          cell: cellText(function (i) { var d = runUs(D, i); return d === d ? fmtDur(d) : null; }) },
        { label: "queued", cls: "num", desc: true, key: lazy("queue", function (i) { return queueUs(D, i); }),
          cell: cellText(function (i) { var d = queueUs(D, i); return d === d ? fmtDur(d) : null; }) },
        { label: "output / error", cls: "mono clip", cell: cellText(function (i) {
          return errorText(D, i) || D.stdout.get(i) || D.stderr.get(i) || null; }, 90) },
      ], { pageSize: 50, empty: "No task matches.", onClick: function (i) { Tasks.table.select(i); Timeline.focus(i, true); } });
      this.table.setRows(all);
      var input = $("search"), timer = null, self = this;
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { self.search(input.value); }, D.n > 100000 ? 200 : 60);
      });
      input.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") { clearTimeout(timer); self.search(input.value); }
      });
    },

    show: function (query) {
      var input = $("search");
      input.value = query;
      this.search(query);
      $("tasks-section").scrollIntoView({ block: "start" });
    },

    cache: {},
    search: function (query) {
      this.query = query;
      if (!String(query).trim()) { this.table.setRows(this.all); API.lastSearch = { query: query, count: D.n }; return; }
      var rows = C.search(D, query, this.cache), count = rows.length, n = D.n;
      this.table.setRows(rows, count === n ? "" : " (filtered from " + fmtInt(n) + ")");
      API.lastSearch = { query: query, count: count };
    },
  };

  // ---------------------------------------------------------------- errors
  function renderErrors() {
    var failed = [];
    D.errors.forEach(function (s, i) { failed.push(i); });
    failed.sort(function (a, b) { return a - b; });
    if (!failed.length) { $("no-errors").hidden = false; return; }
    var groups = new Map();
    failed.forEach(function (i) {
      var key = D.errors.get(i), g = groups.get(key);
      if (g) g.count++; else groups.set(key, { text: D.strings[key], count: 1, first: i });
    });
    var list = Array.from(groups.values()).sort(function (a, b) { return b.count - a.count || a.first - b.first; });
    var box = $("error-groups");
    box.className = "groups";
    var shown = list.slice(0, 20);
    box.appendChild(h("h3", null, fmtInt(failed.length) + " failed task" + (failed.length === 1 ? "" : "s") + ", " +
      fmtInt(list.length) + " distinct message" + (list.length === 1 ? "" : "s")));
    shown.forEach(function (g) {
      var row = h("div", "group");
      row.appendChild(h("div", "count", TIMES + " " + fmtInt(g.count)));
      var right = h("div");
      right.appendChild(h("div", "msg", g.text));
      var first = h("div", "first", "first: ");
      var link = h("button", "link", taskTitle(D, g.first) + " (" + msgId(D, g.first) + ")");
      link.type = "button";
      link.addEventListener("click", function () { Tasks.show("id:" + msgId(D, g.first)); Timeline.focus(g.first, true); });
      first.appendChild(link);
      right.appendChild(first);
      row.appendChild(right);
      box.appendChild(row);
    });
    if (list.length > shown.length) box.appendChild(h("p", "muted small", "and " + fmtInt(list.length - shown.length) + " more distinct messages (below)."));
    var table = new PagedTable($("error-list"), [
      { label: "msg_id", cls: "mono clip", cell: cellText(function (i) { return msgId(D, i); }) },
      { label: "name", cls: "clip", cell: cellText(function (i) { return D.strings[D.name[i]]; }) },
      { label: "engine", cls: "num", cell: cellText(function (i) { return engineOf(D, i); }) },
      { label: "error", cls: "mono wrap", cell: cellText(function (i) { return errorText(D, i); }) },
      { label: "stderr", cls: "mono wrap", cell: cellText(function (i) { return D.stderr.get(i); }) },
    ], { pageSize: 20, onClick: function (i) { table.select(i); Timeline.focus(i, true); } });
    table.setRows(Uint32Array.from(failed));
  }

  // ---------------------------------------------------------------- timeline
  var Timeline = {
    init: function () {
      var n = D.n, R = D.engines.length, noE = D.noEngine;
      this.canvas = $("timeline");
      this.overlay = $("overlay");
      this.box = $("timeline-box");
      this.tip = $("tooltip");
      this.ctx = this.canvas.getContext("2d");
      this.octx = this.overlay.getContext("2d");
      this.R = R;
      this.hover = -1;
      this.selected = -1;

      // Colour index per task: palette by function (sorted names, as the matplotlib sink), else status.
      var used = new Map(), fnIdx = D.fn;
      for (var i = 0; i < n; i++) used.set(fnIdx[i], true);
      var names = Array.from(used.keys()).sort(function (a, b) {
        var x = D.strings[a], y = D.strings[b]; return x < y ? -1 : x > y ? 1 : 0;
      });
      var fnColour = new Map();
      names.forEach(function (f, k) { fnColour.set(f, k % PALETTE.length); });
      this.functions = names;
      this.fnColour = fnColour;
      var P = PALETTE.length;
      this.colours = PALETTE.concat([C_ERROR, C_ABORTED, C_RUNNING]);
      this.priority = new Uint8Array(this.colours.length);
      this.priority[P] = 3; this.priority[P + 1] = 1; this.priority[P + 2] = 2;
      var cidx = new Uint8Array(n), status = D.status;
      var lut = new Uint8Array(D.strings.length);
      fnColour.forEach(function (c, f) { lut[f] = c; });
      for (i = 0; i < n; i++) {
        var st = status[i];
        cidx[i] = st === 1 ? P : st === 2 ? P + 1 : st === 3 ? P + 2 : lut[fnIdx[i]];
      }
      this.cidx = cidx;

      // Full extent of the data.
      var lo = Infinity, hi = -Infinity, s, e;
      var start = D.start, end = D.end, sub = D.sub, recv = D.recv;
      for (i = 0; i < n; i++) {
        s = start[i]; if (s < lo) lo = s; if (s > hi) hi = s;
        e = end[i]; if (e > hi) hi = e;
        e = sub[i]; if (e < lo) lo = e;
        e = recv[i]; if (e > hi) hi = e;
      }
      meta.marks.forEach(function (m) { if (m.t < lo) lo = m.t; if (m.t > hi) hi = m.t; });
      if (!(lo <= hi)) { lo = 0; hi = 1e6; }
      if (lo > 0) lo = 0;
      if (hi - lo < 1) hi = lo + 1e3;
      this.full0 = lo; this.full1 = hi;
      this.dataEnd = hi;

      // Rows: per engine, the drawn tasks sorted by start, with prefix max of ends and suffix min of submissions.
      var counts = new Uint32Array(R + 1), row = D.row;
      for (i = 0; i < n; i++) { var r = row[i]; if (r !== noE && start[i] === start[i]) counts[r]++; }
      var rows = [];
      for (r = 0; r < R; r++) rows.push({ ord: new Uint32Array(counts[r]), fill: 0 });
      for (i = 0; i < n; i++) {
        r = row[i];
        if (r !== noE && start[i] === start[i]) { var rr = rows[r]; rr.ord[rr.fill++] = i; }
      }
      this.hasQueued = false;
      for (r = 0; r < R; r++) {
        var o = rows[r].ord, m = o.length, sorted = true;
        for (var k = 1; k < m; k++) if (start[o[k]] < start[o[k - 1]]) { sorted = false; break; }
        if (!sorted) o.sort(function (a, b) { return start[a] - start[b] || a - b; });
        var rs = new Float64Array(m), re = new Float64Array(m), mx = new Float64Array(m);
        var rsub = new Float64Array(m), smin = new Float64Array(m), top = -Infinity;
        for (k = 0; k < m; k++) {
          i = o[k]; s = start[i]; e = end[i];
          if (e !== e) e = status[i] === 3 ? this.dataEnd : s;
          if (e < s) e = s;
          rs[k] = s; re[k] = e; if (e > top) top = e; mx[k] = top;
          var q = sub[i];
          rsub[k] = q < s ? q : NaN;
          if (q < s) this.hasQueued = true;
        }
        var low = Infinity;
        for (k = m - 1; k >= 0; k--) { if (rsub[k] < low) low = rsub[k]; smin[k] = low; }
        rows[r] = { ord: o, s: rs, e: re, mx: mx, sub: rsub, smin: smin };
      }
      this.rows = rows;
      this.v0 = this.full0; this.v1 = this.full1;
      this.buildLegend();
      this.bind();
      this.layout();
      var self = this;
      if (window.ResizeObserver) {
        new ResizeObserver(function () { if (self.layout()) self.request(); }).observe(this.box);
      }
      $("reset-zoom").addEventListener("click", function () { self.reset(); });
      this.drawNow();
    },

    buildLegend: function () {
      var box = $("legend"), self = this, shown = this.functions.slice(0, 12);
      function item(colour, label, thin) {
        var it = h("span", "item"), sw = h("span", "swatch" + (thin ? " thin" : ""));
        sw.style.background = colour;
        it.appendChild(sw); it.appendChild(h("span", null, label));
        box.appendChild(it);
      }
      shown.forEach(function (f) { item(PALETTE[self.fnColour.get(f)], D.strings[f] || "(no function)"); });
      if (this.functions.length > shown.length) box.appendChild(h("span", "item", "+" + (this.functions.length - shown.length) + " more functions"));
      item(C_ERROR, "error");
      item(C_ABORTED, "aborted");
      item(C_RUNNING, "running at the end");
      if (this.hasQueued) item(C_QUEUED, "queued (submitted \u2192 started)", true);
    },

    layout: function () {
      var width = Math.max(320, Math.floor(this.box.clientWidth));
      var R = Math.max(this.R, 1), rowH = Math.max(0.5, Math.min(26, Math.floor(440 / R)));
      if (R * rowH > 1400) rowH = 1400 / R;
      var ctx = this.ctx;
      ctx.font = FONT;
      var label = 0;
      for (var r = 0; r < this.R; r++) label = Math.max(label, ctx.measureText("engine " + D.engines[r].id).width);
      var L = {
        width: width, rowH: rowH, left: Math.ceil(Math.max(56, label + 16)), right: 14,
        top: 22, rowsH: R * rowH, gap: 10, busyH: 64, axisH: 24,
      };
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
        this.diff = new Int32Array(L.plotW + 3);
      }
      return changed;
    },

    request: function () {
      var self = this;
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(function () { self.pending = false; self.drawNow(); });
    },

    ticks: function () { return C.ticks(this.v0, this.v1, this.L.plotW); },

    tickLabel: function (t, step) { return C.tickLabel(t, step, this.v0, this.v1); },

    drawNow: function () {
      var t0 = performance.now();
      var L = this.L, ctx = this.ctx, dpr = this.dpr, R = this.R;
      var W = L.plotW, left = L.left, v0 = this.v0, v1 = this.v1, scale = W / (v1 - v0);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, L.width, L.height);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, L.width, L.height);
      ctx.font = FONT;

      // zebra rows and grid
      var rowH = L.rowH, top = L.top;
      if (rowH >= 6) {
        ctx.fillStyle = C_ZEBRA;
        for (var r = 1; r < R; r += 2) ctx.fillRect(left, top + r * rowH, W, rowH);
      }
      var ticks = this.ticks();
      ctx.fillStyle = C_GRID;
      ticks.ts.forEach(function (t) {
        var x = Math.round(left + (t - v0) * scale);
        ctx.fillRect(x, top, 1, L.rowsH);
        ctx.fillRect(x, L.busyTop, 1, L.busyH);
      });

      var bh = rowH >= 8 ? Math.round(rowH * 0.72) : rowH >= 4 ? rowH - 1 : rowH;
      var qh = Math.max(1, Math.round(bh * 0.34));
      var sc = this.sc, diff = this.diff, busy = sc.busy, cidx = this.cidx, colours = this.colours, prio = this.priority;
      var V = { v0: v0, v1: v1, scale: scale, W: W, left: left };
      busy.fill(0);
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, 0, W, L.height);
      ctx.clip();
      var drawn = 0, rects = 0;
      for (r = 0; r < R; r++) {
        var row = this.rows[r], m = row.ord.length;
        if (!m) continue;
        var y = top + r * rowH + (rowH - bh) / 2;
        var s = row.s, k, x0, x1, c;
        // queued time: the union of [submitted, started), as pixel coverage
        if (this.hasQueued) {
          var qlo = lowerBound(s, v0, 0, m), qhi = upperBound(row.smin, v1, qlo, m), cmin = W + 1, cmax = -1;
          for (k = qlo; k < qhi; k++) {
            var q = row.sub[k];
            if (!(q <= v1)) continue;
            x0 = (q - v0) * scale; x1 = (s[k] - v0) * scale;
            var a = x0 < 0 ? 0 : Math.floor(x0), b = x1 > W ? W : Math.ceil(x1);
            if (b <= a) b = a + 1;
            diff[a]++; diff[b]--;
            if (a < cmin) cmin = a;
            if (b > cmax) cmax = b;
          }
          if (cmax >= 0) {
            ctx.fillStyle = C_QUEUED;
            var acc = 0, runStart = -1, qy = y + (bh - qh) / 2;
            for (c = cmin; c <= cmax; c++) {
              acc += diff[c]; diff[c] = 0;
              if (acc > 0 && runStart < 0) runStart = c;
              else if (acc <= 0 && runStart >= 0) { ctx.fillRect(left + runStart, qy, c - runStart, qh); rects++; runStart = -1; }
            }
            if (runStart >= 0) { ctx.fillRect(left + runStart, qy, cmax - runStart, qh); rects++; }
            diff[cmax + 1] = 0;
          }
        }
        // bars: tasks with start <= v1 and end >= v0
        var done = C.drawRowBars(ctx, row, m, V, y, bh, cidx, colours, prio, sc);
        drawn += done[0]; rects += done[1];
      }

      // engines joining (triangle) and leaving (cross)
      var self = this;
      ctx.lineWidth = 1.5;
      D.engines.forEach(function (en, r) {
        var yc = top + r * rowH + rowH / 2, z = Math.max(2, Math.min(5, rowH / 2 - 1));
        if (en.registered !== null && !en.present_at_start && en.registered >= v0 && en.registered <= v1) {
          var x = left + (en.registered - v0) * scale;
          ctx.fillStyle = "#1a7f37";
          ctx.beginPath(); ctx.moveTo(x, yc - z); ctx.lineTo(x + z * 1.6, yc); ctx.lineTo(x, yc + z); ctx.closePath(); ctx.fill();
        }
        if (en.unregistered !== null && en.unregistered >= v0 && en.unregistered <= v1) {
          var xu = left + (en.unregistered - v0) * scale;
          ctx.strokeStyle = "#24292f";
          ctx.beginPath(); ctx.moveTo(xu - z, yc - z); ctx.lineTo(xu + z, yc + z); ctx.moveTo(xu - z, yc + z); ctx.lineTo(xu + z, yc - z); ctx.stroke();
        }
      });

      // busy engines: time-weighted mean per pixel column
      var bt = L.busyTop, bH = L.busyH, Rn = Math.max(R, 1);
      var x0b = Math.max(0, Math.floor((this.full0 - v0) * scale)), x1b = Math.min(W, Math.ceil((this.dataEnd - v0) * scale));
      var area = C.drawBusy(ctx, busy, x0b, x1b, left, bt, bH, Rn), peak = area.peak, total = area.total, cols = area.cols;
      ctx.restore();

      // marks
      C.drawMarks(ctx, meta.marks, V, top - 4, bt + bH, 14);

      // axes, labels
      ctx.fillStyle = C_TEXT;
      ctx.strokeStyle = "#afb8c1";
      ctx.lineWidth = 1;
      ctx.strokeRect(left + 0.5, top + 0.5, W - 1, L.rowsH);
      ctx.strokeRect(left + 0.5, bt + 0.5, W - 1, bH);
      ctx.textBaseline = "middle";
      ctx.textAlign = "right";
      var every = Math.max(1, Math.ceil(14 / rowH));
      for (r = 0; r < R; r += every) ctx.fillText("engine " + D.engines[r].id, left - 8, top + r * rowH + rowH / 2);
      ctx.fillText("busy", left - 8, bt + bH / 2 - 7);
      ctx.fillText("engines", left - 8, bt + bH / 2 + 7);
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      var tickY = bt + bH + 6, self2 = this;
      ticks.ts.forEach(function (t) {
        var label = self2.tickLabel(t, ticks.step), x = left + (t - v0) * scale, half = ctx.measureText(label).width / 2;
        ctx.fillText(label, Math.max(left + half - 4, Math.min(left + W + L.right - half - 1, x)), tickY);
      });
      ctx.textAlign = "right";
      ctx.textBaseline = "top";
      if (cols) {
        var note = "peak " + peak.toFixed(1) + ", mean " + (total / cols).toFixed(2) + " of " + R + " in view";
        ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
        ctx.fillRect(left + W - 10 - ctx.measureText(note).width, bt + 2, ctx.measureText(note).width + 8, 16);
        ctx.fillStyle = C_TEXT;
        ctx.fillText(note, left + W - 6, bt + 4);
      }
      ctx.textAlign = "left";
      ctx.textBaseline = "alphabetic";

      $("view-range").textContent = "showing " + fmtAt(v0) + " to " + fmtAt(v1) + " (" + fmtDur(v1 - v0) + ")";
      API.draws++;
      API.lastDraw = { bars: drawn, rects: rects, ms: performance.now() - t0 };
      this.drawOverlay();
    },

    barRect: function (i) {  // CSS pixels, relative to the canvas, of task i's bar (null when not drawn)
      var r = D.row[i];
      if (r === D.noEngine || D.start[i] !== D.start[i]) return null;
      var L = this.L, scale = L.plotW / (this.v1 - this.v0), rowH = L.rowH;
      var bh = rowH >= 8 ? Math.round(rowH * 0.72) : rowH >= 4 ? rowH - 1 : rowH;
      var s = D.start[i], e = D.end[i];
      if (e !== e) e = D.status[i] === 3 ? this.dataEnd : s;
      if (e < s) e = s;
      var x0 = L.left + (s - this.v0) * scale, x1 = L.left + (e - this.v0) * scale;
      return { x: x0, y: L.top + r * rowH + (rowH - bh) / 2, w: x1 - x0, h: bh };
    },

    drawOverlay: function () {
      var ctx = this.octx, L = this.L, dpr = this.dpr;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, L.width, L.height);
      var self = this;
      [[this.selected, "#0969da"], [this.hover, "#24292f"]].forEach(function (p) {
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
    },

    hitTest: function (px, py) {
      var L = this.L;
      if (px < L.left || px > L.left + L.plotW || py < L.top || py >= L.top + L.rowsH) return -1;
      var r = Math.floor((py - L.top) / L.rowH);
      if (r < 0 || r >= this.R) return -1;
      var row = this.rows[r], m = row.ord.length;
      if (!m) return -1;
      var scale = L.plotW / (this.v1 - this.v0), t = this.v0 + (px - L.left) / scale, tol = 3 / scale;
      return C.hitRow(row, m, t, tol);
    },

    showTip: function (i, px, py) {
      var tip = this.tip;
      if (i < 0) { tip.hidden = true; return; }
      clear(tip);
      tip.appendChild(h("div", "tt-title", taskTitle(D, i)));
      var dl = h("dl");
      function row(k, v) { if (v === null || v === undefined || v === "") return; dl.appendChild(h("dt", null, k)); dl.appendChild(h("dd", null, v)); }
      var name = D.strings[D.name[i]];
      if (name && name !== taskTitle(D, i)) row("name", name);
      row("function", D.strings[D.fn[i]] || DASH);
      row("msg_id", msgId(D, i));
      row("engine", engineOf(D, i));
      row("status", D.statuses[D.status[i]]);
      row("duration", fmtDur(runUs(D, i)));
      var q = queueUs(D, i);
      if (q === q) row("queued", fmtDur(q));
      row("started", fmtAt(D.start[i]));
      if (D.end[i] === D.end[i]) row("completed", fmtAt(D.end[i]));
      if (D.recv[i] === D.recv[i] && D.end[i] === D.end[i]) row("reply latency", fmtDur(D.recv[i] - D.end[i]));
      tip.appendChild(dl);
      var err = errorText(D, i), out = D.stdout.get(i), errOut = D.stderr.get(i);
      if (err) tip.appendChild(h("pre", "err", err));
      if (out) tip.appendChild(h("pre", "out", out));
      if (errOut) tip.appendChild(h("pre", "err", errOut));
      tip.hidden = false;
      var bw = this.box.clientWidth, tw = tip.offsetWidth, th = tip.offsetHeight;
      var x = px + 16, y = py + 16;
      if (x + tw > bw) x = Math.max(0, px - tw - 16);
      if (y + th > this.L.height && py - th - 16 >= 0) y = py - th - 16;
      tip.style.left = x + "px";
      tip.style.top = y + "px";
    },

    zoomAt: function (px, factor) {
      var L = this.L, range = this.v1 - this.v0, full = this.full1 - this.full0;
      var frac = Math.max(0, Math.min(1, (px - L.left) / L.plotW));
      var t = this.v0 + frac * range;
      var next = Math.max(Math.min(range * factor, full * 1.02), Math.max(5, L.plotW * 0.01));
      this.setView(t - frac * next, t - frac * next + next);
    },

    setView: function (a, b) {
      var range = b - a, full = this.full1 - this.full0, pad = Math.max(range * 0.5, full * 0.01);
      if (a < this.full0 - pad) { a = this.full0 - pad; b = a + range; }
      if (b > this.full1 + pad) { b = this.full1 + pad; a = b - range; }
      this.v0 = a; this.v1 = b;
      this.request();
    },

    reset: function () { this.v0 = this.full0; this.v1 = this.full1; this.request(); },

    focus: function (i, scroll) {
      this.selected = i;
      var s = D.start[i];
      if (s === s && D.row[i] !== D.noEngine) {
        var b = this.barRect(i), L = this.L;
        var visible = b && b.x >= L.left && b.x + b.w <= L.left + L.plotW && b.w >= 4;
        if (!visible) {
          var e = D.end[i] === D.end[i] ? D.end[i] : s, d = Math.max(e - s, (this.full1 - this.full0) / 2000, 10);
          this.setView(s - 3 * d, e + 3 * d);
        }
      }
      this.request();
      if (scroll) this.box.scrollIntoView({ block: "nearest" });
    },

    bind: function () {
      var self = this, ov = this.overlay, drag = null;
      function pos(ev) { var r = ov.getBoundingClientRect(); return { x: ev.clientX - r.left, y: ev.clientY - r.top }; }
      ov.addEventListener("wheel", function (ev) {
        ev.preventDefault();
        var p = pos(ev), dy = ev.deltaY * (ev.deltaMode === 1 ? 16 : ev.deltaMode === 2 ? 400 : 1);
        if (Math.abs(ev.deltaX) > Math.abs(dy)) {  // horizontal scroll pans
          var range = self.v1 - self.v0, dt = ev.deltaX * range / self.L.plotW;
          self.setView(self.v0 + dt, self.v1 + dt);
        } else {
          self.zoomAt(p.x, Math.exp(Math.max(-300, Math.min(300, dy)) * 0.002));
        }
        self.tip.hidden = true;
      }, { passive: false });
      ov.addEventListener("mousedown", function (ev) {
        if (ev.button !== 0) return;
        var p = pos(ev);
        drag = { x: p.x, v0: self.v0, v1: self.v1, moved: false };
        ov.classList.add("dragging");
        ev.preventDefault();
      });
      window.addEventListener("mousemove", function (ev) {
        if (!drag) return;
        var p = pos(ev), dx = p.x - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (!drag.moved) return;
        var dt = -dx * (drag.v1 - drag.v0) / self.L.plotW;
        self.setView(drag.v0 + dt, drag.v1 + dt);
        self.tip.hidden = true;
      });
      window.addEventListener("mouseup", function (ev) {
        if (!drag) return;
        var wasDrag = drag.moved;
        drag = null;
        ov.classList.remove("dragging");
        if (!wasDrag && ev.target === ov) {
          var p = pos(ev), i = self.hitTest(p.x, p.y);
          if (i >= 0) { self.selected = i; self.drawOverlay(); Tasks.show("id:" + msgId(D, i)); Tasks.table.select(i); }
        }
      });
      ov.addEventListener("mousemove", function (ev) {
        if (drag) return;
        var p = pos(ev), L = self.L;
        self.mouse = { x: p.x, y: p.y, inPlot: p.x >= L.left && p.x <= L.left + L.plotW && p.y >= L.top && p.y <= L.busyTop + L.busyH };
        var i = self.hitTest(p.x, p.y);
        self.hover = i;
        self.showTip(i, p.x, p.y);
        self.drawOverlay();
      });
      ov.addEventListener("mouseleave", function () {
        self.hover = -1; self.mouse = null; self.tip.hidden = true; self.drawOverlay();
      });
      ov.addEventListener("dblclick", function (ev) { ev.preventDefault(); self.reset(); });
    },
  };

  // ---------------------------------------------------------------- API for tests and scripting
  API.taskIndex = function (id) {
    for (var i = 0; i < D.n; i++) if (msgId(D, i) === id) return i;
    return -1;
  };
  API.barRect = function (id) { var i = API.taskIndex(id); return i < 0 ? null : Timeline.barRect(i); };
  API.view = function () { return { v0: Timeline.v0, v1: Timeline.v1, full0: Timeline.full0, full1: Timeline.full1 }; };
  API.setView = function (a, b) { Timeline.setView(a, b); Timeline.drawNow(); };
  API.reset = function () { Timeline.reset(); Timeline.drawNow(); };
  API.layout = function () { return Timeline.L; };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
