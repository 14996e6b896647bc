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
  var DASH = C.DASH, TIMES = C.TIMES;
  var h = C.h, fmtInt = C.fmtInt, fmtDur = C.fmtDur, fmtBytes = C.fmtBytes, fmtTime = C.fmtTime, fmtPct = C.fmtPct;
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
      Links.init();
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
    var par = s.parallelism, path = s.critical_path;
    if (par && par.efficiency !== null) {
      cards.appendChild(card("Parallel efficiency", fmtPct(par.efficiency), fmtDur(par.idle_engine_seconds * 1e6) + " engine-time idle"));
    }
    if (path && path.tasks.length) {
      cards.appendChild(card("Critical path", fmtDur(path.run_seconds * 1e6),
        path.tasks.length === 1 ? "the longest task" : path.tasks.length + " tasks, each waiting on the one before"));
    }
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
      meta.marks.forEach(function (m) { tb.appendChild(C.markRow(m, fmtAt)); });
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

  // ---------------------------------------------------------------- dependencies (after / follow)
  var Links = {
    init: function () {  // who waits on whom, both ways, from the data's [waiter, waited on, follow] rows
      var on = (this.on = new Map()), by = (this.by = new Map());
      D.depends.forEach(function (d) {
        if (!on.has(d[0])) on.set(d[0], []);
        if (!by.has(d[1])) by.set(d[1], []);
        on.get(d[0]).push(d[1]);
        by.get(d[1]).push(d[0]);
      });
    },
    of: function (i) {  // [from, to] pairs: the tasks i waited on, then those that waited on i
      var pairs = [];
      (this.on.get(i) || []).forEach(function (j) { pairs.push([j, i]); });
      (this.by.get(i) || []).forEach(function (k) { pairs.push([i, k]); });
      return pairs;
    },
    names: function (rows) {
      if (!rows || !rows.length) return null;
      var shown = rows.slice(0, 3).map(function (j) { return taskTitle(D, j); }).join(", ");
      return rows.length > 3 ? shown + " and " + (rows.length - 3) + " more" : shown;
    },
  };

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
        { label: "msg_id", cls: "mono clip", cell: C.cellMsgId(function () { return D; }) },
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
        { label: "in", cls: "num", desc: true, key: function () { return D.bytesIn; },
          cell: cellText(function (i) { var b = D.bytesIn[i]; return b === b ? fmtBytes(b) : null; }) },
        { label: "out", cls: "num", desc: true, key: function () { return D.bytesOut; },
          cell: cellText(function (i) { var b = D.bytesOut[i]; return b === b ? fmtBytes(b) : null; }) },
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
  var EXAMPLES = 3;  // tasks and distinct messages shown for each kind of error
  function renderErrors() {
    var failed = [];
    D.errors.forEach(function (s, i) { failed.push(i); });
    failed.sort(function (a, b) { return a - b; });
    if (!failed.length) { $("no-errors").hidden = false; return; }
    // grouped by the exception's type (the text before its first ": "), the largest group first: a sweep whose
    // tasks fail with numbers in their messages is one group, with a few of its messages as examples
    var groups = new Map();
    failed.forEach(function (i) {
      var text = D.strings[D.errors.get(i)] || "", cut = text.indexOf(": "), kind = cut > 0 ? text.slice(0, cut) : text;
      var g = groups.get(kind);
      if (!g) groups.set(kind, (g = { kind: kind || "(no error message)", count: 0, tasks: [], messages: new Map() }));
      g.count++;
      if (g.tasks.length < EXAMPLES) g.tasks.push(i);
      if (!g.messages.has(text) && g.messages.size < EXAMPLES) g.messages.set(text, i);
    });
    var list = Array.from(groups.values()).sort(function (a, b) { return b.count - a.count || a.tasks[0] - b.tasks[0]; });
    var box = $("error-groups");
    box.className = "groups";
    var shown = list.slice(0, 20);
    box.appendChild(h("h3", null, fmtInt(failed.length) + " failed task" + (failed.length === 1 ? "" : "s") + ", " +
      fmtInt(list.length) + " kind" + (list.length === 1 ? "" : "s") + " of error"));
    shown.forEach(function (g) {
      var row = h("div", "group");
      row.appendChild(h("div", "count", TIMES + " " + fmtInt(g.count)));
      var right = h("div");
      right.appendChild(h("div", "msg kind", g.kind));
      g.messages.forEach(function (i, text) {  // each example message, with its first task's traceback
        if (text && text !== g.kind) right.appendChild(h("div", "msg example", text));
        var tb = C.tracebackText(D, i);
        if (tb) right.appendChild(C.tracebackDetails(tb));
      });
      var first = h("div", "first", g.count === 1 ? "task: " : "e.g. ");
      g.tasks.forEach(function (i, k) {
        if (k) first.appendChild(document.createTextNode(", "));
        var link = h("button", "link", taskTitle(D, i) + " (" + msgId(D, i) + ", engine " + engineOf(D, i) + ")");
        link.type = "button";
        link.addEventListener("click", function () { Tasks.show("id:" + msgId(D, i)); Timeline.focus(i, true); });
        first.appendChild(link);
      });
      if (g.count > g.tasks.length) first.appendChild(document.createTextNode(" and " + fmtInt(g.count - g.tasks.length) + " more"));
      right.insertBefore(first, right.children[1] || null);
      row.appendChild(right);
      box.appendChild(row);
    });
    if (list.length > shown.length) box.appendChild(h("p", "muted small", "and " + fmtInt(list.length - shown.length) + " more kinds of error (below)."));
    var table = new PagedTable($("error-list"), [
      { label: "msg_id", cls: "mono clip", cell: C.cellMsgId(function () { return D; }) },
      { label: "name", cls: "clip", cell: cellText(function (i) { return D.strings[D.name[i]]; }) },
      { label: "engine", cls: "num", cell: cellText(function (i) { return engineOf(D, i); }) },
      { label: "error", cls: "mono wrap", cell: function (i, td) {
        td.textContent = errorText(D, i) || "";
        var tb = C.tracebackText(D, i);
        if (tb) td.appendChild(C.tracebackDetails(tb));
      } },
      { label: "stderr", cls: "mono wrap", cell: cellText(function (i) { return D.stderr.get(i); }) },
    ], { pageSize: 20, onClick: function (i) { table.select(i); Timeline.focus(i, true); } });
    table.setRows(Uint32Array.from(failed));
  }

  // ---------------------------------------------------------------- timeline
  var Timeline = Object.assign(Object.create(C.Timeline), {
    init: function () {
      var n = D.n, R = D.engines.length, noE = D.noEngine;
      this.attach();
      this.R = R;
      this.hover = -1;
      this.selected = -1;

      // Colour index per task: by function (C.takeColour, as every view), else status.
      var used = new Map(), fnIdx = D.fn;
      for (var i = 0; i < n; i++) used.set(fnIdx[i], true);
      var names = Array.from(used.keys()).sort(function (a, b) {
        var x = D.strings[a], y = D.strings[b]; return x < y ? -1 : x > y ? 1 : 0;
      });
      var fnColour = new Map(), taken = new Set();
      names.forEach(function (f) { fnColour.set(f, C.takeColour(D.strings[f], taken)); });
      this.fnColour = fnColour;
      var P = PALETTE.length;
      var cidx = new Uint8Array(n), status = D.status;
      var lut = new Uint8Array(D.strings.length);
      fnColour.forEach(function (c, f) { lut[f] = c; });
      var visible = new Set();  // functions with a bar in their colour: what the legend lists, as the picture's
      for (i = 0; i < n; i++) {
        var st = status[i];
        var slot = C.statusSlot(st);
        cidx[i] = slot < 0 ? lut[fnIdx[i]] : slot;
        if (slot < 0 && D.start[i] === D.start[i] && D.row[i] !== D.noEngine) visible.add(fnIdx[i]);
      }
      this.functions = names.filter(function (f) { return visible.has(f); });
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
          if (e !== e) e = status[i] === C.ST.running ? this.dataEnd : s;
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
      var box = $("legend");
      C.legendFunctions(box, this.functions, this.fnColour, D.strings);
      C.legendItem(box, C_ERROR, "error");
      C.legendItem(box, C_ABORTED, "aborted");
      C.legendItem(box, C_RUNNING, "running at the end");
      if (this.hasQueued) C.legendItem(box, C_QUEUED, "queued (submitted \u2192 started)", true);
    },

    layout: function () {
      var R = Math.max(this.R, 1), names = D.engines.slice(0, this.R).map(function (en) { return "engine " + en.id; });
      var changed = this.fitLayout(R, this.rowHeight(R), names, 56, 14, 64);
      if (changed) this.diff = new Int32Array(this.L.plotW + 3);
      return changed;
    },

    request: function () {
      var self = this;
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(function () { self.pending = false; self.drawNow(); });
    },

    drawNow: function () {
      var t0 = performance.now();
      var L = this.L, ctx = this.ctx, R = this.R, nameOf = function (i) { return taskTitle(D, i); };
      var W = L.plotW, left = L.left, v0 = this.v0, v1 = this.v1, scale = W / (v1 - v0);
      var rowH = L.rowH, top = L.top, r;
      var V = { v0: v0, v1: v1, scale: scale, W: W, left: left }, ticks = C.ticks(v0, v1, W);
      // zebra rows and grid
      this.beginFrame(V, R, ticks);

      var bh = C.barHeight(rowH);
      var qh = Math.max(1, Math.round(bh * 0.34));
      var sc = this.sc, diff = this.diff, busy = sc.busy, cidx = this.cidx, colours = this.colours, prio = this.priority;
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
        C.drawBarNames(ctx, row, m, V, y, bh, cidx, colours, nameOf, sc);
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
      var area = C.drawBusy(ctx, busy, x0b, x1b, left, bt, bH, Rn);
      ctx.restore();

      // marks
      var marks = C.drawMarks(ctx, meta.marks, V, top - 4, bt + bH, 14);

      // axes, labels
      this.drawFrame(V, R, function (j) { return "engine " + D.engines[j].id; });
      this.drawAxis(V, ticks, area, R);

      $("view-range").textContent = "showing " + fmtAt(v0) + " to " + fmtAt(v1) + " (" + fmtDur(v1 - v0) + ")";
      API.draws++;
      API.lastDraw = { bars: drawn, rects: rects, names: sc.names, marks: marks, ms: performance.now() - t0 };
      this.drawOverlay();
    },

    barRect: function (i) {  // CSS pixels, relative to the canvas, of task i's bar (null when not drawn)
      var r = D.row[i];
      if (r === D.noEngine || D.start[i] !== D.start[i]) return null;
      var s = D.start[i], e = D.end[i];
      if (e !== e) e = D.status[i] === C.ST.running ? this.dataEnd : s;
      if (e < s) e = s;
      return this.barBox(r, s, e);
    },

    hitRowAt: function (r, t, tol) {
      if (r >= this.R) return -1;
      var row = this.rows[r], m = row.ord.length;
      return m ? C.hitRow(row, m, t, tol) : -1;
    },

    tipFill: function (i, tip) {
      tip.appendChild(h("div", "tt-title", taskTitle(D, i)));
      var row = C.tipList(tip);
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
      if (D.bytesIn[i] === D.bytesIn[i]) row("bytes in", fmtBytes(D.bytesIn[i]));
      if (D.bytesOut[i] === D.bytesOut[i]) row("bytes out", fmtBytes(D.bytesOut[i]));
      row("waited on", Links.names(Links.on.get(i)));
      row("waited on by", Links.names(Links.by.get(i)));
      C.tipPre(tip, "err", errorText(D, i));
      C.tipPre(tip, "out", D.stdout.get(i));
      C.tipPre(tip, "err", D.stderr.get(i));
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

    panTo: function (a, b) { this.setView(a, b); },

    links: function (i) { return Links.of(i); },

    clicked: function (i) { this.selected = i; this.drawOverlay(); Tasks.show("id:" + msgId(D, i)); Tasks.table.select(i); },
  });

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
