/* ipyrecorder live dashboard: vanilla JS, served by `ipyrecorder serve` (viewers/web.py), no network beyond it.
 *
 * The page fetches a compact snapshot of the state (/api/snapshot: the html report's columnar encoding, decoded
 * by common.js), then follows /api/stream (Server-Sent Events) from the snapshot's cursor: each batch carries the
 * tasks, engines, marks and notices that changed. The tasks live in growable typed columns shaped like the report's
 * (so common.js's search, table and timeline drawing work on them); each engine's finished tasks are kept sorted by
 * start for the timeline. A reset event (the log was replaced, or the cursor is too old) loads a new snapshot.
 *
 * Every text from the log reaches the page through textContent or canvas fillText, never innerHTML.
 */
(function () {
  "use strict";

  var C = window.ipyrecorderCommon;
  var h = C.h, clear = C.clear, fmtInt = C.fmtInt, fmtDur = C.fmtDur, fmtPct = C.fmtPct, DASH = C.DASH;
  var fmtBytes = C.fmtBytes, SERIES = 240;  // resource samples kept per engine (as the snapshot carries)
  var PALETTE = C.PALETTE, P = PALETTE.length;
  var STATUSES = C.STATUSES, ST = C.ST, isDone = C.isDone;
  var NONE = 4294967295;  // no engine / no numeric msg_id suffix, as in the report's columns
  var TWO32 = 4294967296;
  var API = (window.ipyrecorderLive = {
    ready: false, error: null, epoch: null, seq: 0, snapshots: 0, batches: 0, resets: 0, draws: 0, lastDraw: null,
    lastBatch: null, connected: false, arrivals: [],
  });
  var PAGE = document.body.dataset.page;
  var TOKEN = (document.querySelector('meta[name="ipyrecorder-token"]') || {}).content || "";
  var ENGINE = PAGE === "engine" ? decodeURIComponent(location.pathname.split("/")[2] || "") : null;

  function $(id) { return document.getElementById(id); }
  function url(path, params) {
    var q = [];
    if (params) Object.keys(params).forEach(function (k) {
      if (params[k] !== null && params[k] !== undefined) q.push(encodeURIComponent(k) + "=" + encodeURIComponent(params[k]));
    });
    if (TOKEN) q.push("token=" + encodeURIComponent(TOKEN));
    return path + (q.length ? "?" + q.join("&") : "");
  }
  function engineUrl(id) { return url("/engine/" + encodeURIComponent(String(id))); }
  function finite(x) { return x === x && x !== null && x !== undefined; }
  function fmtAt(us) {  // an offset from the run's origin (its first submission)
    if (!finite(us)) return DASH;
    var a = Math.abs(us), s = us < 0 ? "-" : "+";
    return a < 1e9 ? s + (a / 1e6).toFixed(3) + " s" : s + fmtDur(a);
  }
  function isoUs(us) {  // absolute microseconds -> "2026-01-02 03:04:05.678901 UTC"
    if (!finite(us)) return null;
    var ms = Math.floor(us / 1000), rest = Math.round(us - ms * 1000);
    return new Date(ms).toISOString().replace("T", " ").replace("Z", "") + String(rest).padStart(3, "0") + " UTC";
  }

  // ---------------------------------------------------------------- the store
  var COLUMNS = [["sub", Float64Array], ["start", Float64Array], ["end", Float64Array], ["recv", Float64Array],
    ["row", Uint32Array], ["status", Uint8Array], ["fn", Uint32Array], ["name", Uint32Array], ["mp", Uint32Array],
    ["ms", Uint32Array]];
  var EXTRA = [["cidx", Uint8Array], ["inRow", Uint8Array], ["inS", Float64Array]];  // colour, in a timeline row, its start there
  var D, S;

  function emptyStore() {
    D = { n: 0, cap: 0, strings: [""], statuses: STATUSES, noEngine: NONE, noSuffix: NONE, engines: [],
      stdout: new Map(), stderr: new Map(), errors: new Map() };
    S = { index: new Map(), strIndex: new Map([["", 0]]), origin: 0, originKnown: false, offset: 0,
      byStatus: STATUSES.map(function () { return 0; }), marks: [], notices: [], damage: [], closed: false, exists: true, progress: {},
      log: "", rowOf: new Map(), running: new Set(), fnColour: new Map(), taken: new Set(), functions: [], rows: [], dataStart: 0,
      dataEnd: 0, failed: [], version: "", segments: 0, outputChars: 200 };
    grow(1024);
  }

  function grow(need) {
    if (need <= D.cap) return;
    var cap = Math.max(need, D.cap * 2, 1024);
    COLUMNS.forEach(function (c) { var a = new c[1](cap); if (D[c[0]]) a.set(D[c[0]].subarray(0, D.n)); D[c[0]] = a; });
    EXTRA.forEach(function (c) { var a = new c[1](cap); if (S[c[0]]) a.set(S[c[0]].subarray(0, D.n)); S[c[0]] = a; });
    D.cap = cap;
  }

  function intern(text) {
    if (text === null || text === undefined || text === "") return 0;
    var k = S.strIndex.get(text);
    if (k === undefined) { k = D.strings.length; D.strings.push(text); S.strIndex.set(text, k); }
    return k;
  }
  function rel(us) { return us === null || us === undefined ? NaN : us - S.origin; }
  function nowRel() { return (Date.now() + S.offset) * 1000 - S.origin; }
  function edge() {  // the live end of the data: now, or the end of the log once it is closed
    return S.closed ? Math.max(S.dataEnd, 0) : Math.max(nowRel(), S.dataEnd);
  }
  function see(t) { if (t === t) { if (t > S.dataEnd) S.dataEnd = t; if (t < S.dataStart) S.dataStart = t; } }

  function findTask(id) {
    var p = C.splitMsgId(String(id), NONE), mp = S.strIndex.get(p[0]);
    if (mp === undefined) return -1;
    var i = S.index.get(mp * TWO32 + p[1]);
    return i === undefined ? -1 : i;
  }

  function rowFor(id) {
    var r = S.rowOf.get(id);
    if (r !== undefined) return r;
    r = D.engines.length;
    D.engines.push({ id: id, registered: NaN, unregistered: NaN, present: false, done: 0, errors: 0, busyUs: 0,
      current: null, currentStart: NaN, uuid: null, host: null, rss: null, cpu: null, series: [] });
    S.rowOf.set(id, r);
    S.rows.push(newRow(64));
    Timeline.changed = true;
    return r;
  }

  function colourOf(i) {
    var slot = C.statusSlot(D.status[i]);
    if (slot >= 0) return slot;
    var f = D.fn[i], c = S.fnColour.get(f);
    if (c === undefined) {
      c = C.takeColour(D.strings[f], S.taken);  // (a function that comes later: the next free colour)
      S.fnColour.set(f, c);
      S.functions.push(f);
      Legend.dirty = true;
    }
    return c;
  }

  // -- timeline rows: per engine, its finished tasks sorted by start, with the prefix max of their ends
  function newRow(cap) {
    return { s: new Float64Array(cap), e: new Float64Array(cap), mx: new Float64Array(cap), ord: new Uint32Array(cap), m: 0 };
  }
  function rowGrow(R, need) {
    if (need <= R.s.length) return;
    var cap = Math.max(need, R.s.length * 2);
    ["s", "e", "mx", "ord"].forEach(function (k) { var a = new R[k].constructor(cap); a.set(R[k].subarray(0, R.m)); R[k] = a; });
  }
  function rowFix(R, from) {  // prefix max of ends from position `from`
    var top = from > 0 ? R.mx[from - 1] : -Infinity;
    for (var k = from; k < R.m; k++) { if (R.e[k] > top) top = R.e[k]; R.mx[k] = top; }
  }
  function rowInsert(R, i, s, e) {
    rowGrow(R, R.m + 1);
    var k = R.m;
    if (k && s < R.s[k - 1]) {  // out of order (rare): make room
      k = C.upperBound(R.s, s, 0, R.m);
      ["s", "e", "ord"].forEach(function (f) { R[f].copyWithin(k + 1, k, R.m); });
    }
    R.s[k] = s; R.e[k] = e; R.ord[k] = i; R.m++;
    rowFix(R, k);
  }
  function rowRemove(R, i, s) {
    var k = C.lowerBound(R.s, s, 0, R.m);
    while (k < R.m && R.ord[k] !== i) k++;
    if (k >= R.m) return;
    ["s", "e", "ord"].forEach(function (f) { R[f].copyWithin(k, k + 1, R.m); });
    R.m--;
    rowFix(R, k);
  }
  function barEnd(i) { var s = D.start[i], e = D.end[i]; return e === e && e >= s ? e : s; }
  function place(i) {  // keep task i's place in the timeline rows and the running set in step with its fields
    var st = D.status[i], r = D.row[i], s = D.start[i], drawn = isDone(st) && s === s && r !== NONE;
    if (S.inRow[i]) {
      var R0 = S.inRow[i] - 1, e0;
      if (drawn && R0 === r && S.inS[i] === s) {
        var R = S.rows[r], k = C.lowerBound(R.s, s, 0, R.m);
        while (k < R.m && R.ord[k] !== i) k++;
        e0 = barEnd(i);
        if (k < R.m && R.e[k] !== e0) { R.e[k] = e0; rowFix(R, k); }
        return;
      }
      rowRemove(S.rows[R0], i, S.inS[i]);
      S.inRow[i] = 0;
    }
    if (drawn) {
      rowInsert(S.rows[r], i, s, barEnd(i));
      S.inRow[i] = r + 1;
      S.inS[i] = s;
    }
    if (st === ST.running && s === s && r !== NONE) S.running.add(i); else S.running.delete(i);
  }

  function setText(map, i, text) { if (text === null || text === undefined || text === "") map.delete(i); else map.set(i, text); }

  // The positions of a batch row's fields, by name (the snapshot's task_fields and engine_fields).
  var TF = {}, EF = {};
  function positions(names, into) { names.forEach(function (name, k) { into[name] = k; }); }

  // A changed task (a row of TASK_FIELDS: the report's column names, times in µs since the epoch).
  function upsert(t) {
    var mp = intern(t[TF.mp]), ms = t[TF.ms] === null ? NONE : t[TF.ms], key = mp * TWO32 + ms, i = S.index.get(key), old = -1;
    if (i === undefined) {
      i = D.n;
      grow(i + 1);
      D.n++;
      S.index.set(key, i);
      D.mp[i] = mp; D.ms[i] = ms;
      if (ms !== NONE) { if (ms < S.newMin) S.newMin = ms; if (ms > S.newMax) S.newMax = ms; }
    } else {
      old = D.status[i];
      S.byStatus[old]--;
    }
    D.name[i] = intern(t[TF.name]);
    D.fn[i] = intern(t[TF.fn]);
    var engine = t[TF.engine];
    D.row[i] = engine === null || engine === undefined ? NONE : rowFor(engine);
    var st = t[TF.status];
    D.status[i] = st;
    S.byStatus[st]++;
    D.sub[i] = rel(t[TF.sub]); D.start[i] = rel(t[TF.start]); D.end[i] = rel(t[TF.end]); D.recv[i] = rel(t[TF.recv]);
    see(D.sub[i]); see(D.start[i]); see(D.end[i]); see(D.recv[i]);
    var error = t[TF.error];
    if (error === null || error === undefined) D.errors.delete(i); else D.errors.set(i, intern(error));
    setText(D.stdout, i, t[TF.stdout]);
    setText(D.stderr, i, t[TF.stderr]);
    S.cidx[i] = colourOf(i);
    place(i);
    if (st === ST.error && old !== ST.error) S.failed.push(i);
    if (i === Details.index) Details.touched = true;
  }

  // A changed engine (a row of ENGINE_FIELDS; ``current`` is the msg_id it runs).
  function applyEngine(r) {
    var e = D.engines[rowFor(r[EF.id])];
    e.registered = rel(r[EF.registered]); e.unregistered = rel(r[EF.unregistered]); e.present = !!r[EF.present];
    e.done = r[EF.done]; e.errors = r[EF.errors]; e.busyUs = r[EF.busy_us];
    e.current = r[EF.current]; e.currentStart = rel(r[EF.current_start]);
    e.host = r[EF.host]; e.rss = r[EF.rss]; e.cpu = r[EF.cpu];
    var t = rel(r[EF.sampled]), last = e.series[e.series.length - 1];
    if (t === t && e.rss !== null && (!last || last[0] !== t)) {  // a new sample: the series grows
      e.series.push([t, e.rss]);
      if (e.series.length > SERIES) e.series.shift();
    }
  }

  // An engine's memory over time as a small SVG line (built from numbers only: nothing from the log).
  function sparkline(series) {
    var NS = "http://www.w3.org/2000/svg", svg = document.createElementNS(NS, "svg"), w = 60, hgt = 14;
    svg.setAttribute("class", "spark");
    svg.setAttribute("width", w);
    svg.setAttribute("height", hgt);
    if (series.length > 1) {
      var t0 = series[0][0], t1 = series[series.length - 1][0], top = 0;
      series.forEach(function (p) { top = Math.max(top, p[1]); });
      var points = series.map(function (p) {
        return ((t1 > t0 ? (p[0] - t0) / (t1 - t0) : 0) * w).toFixed(1) + "," + (hgt - 1 - (top ? p[1] / top : 0) * (hgt - 2)).toFixed(1);
      });
      var line = document.createElementNS(NS, "polyline");
      line.setAttribute("points", points.join(" "));
      svg.appendChild(line);
    }
    return svg;
  }

  function applyLive(live) {
    S.offset = live.now / 1000 - Date.now();
    S.progress = live.progress || {};
    if (live.closed && !S.closed && API.ready) { Timeline.all = true; Timeline.controls(); }  // it ended: show all of it
    S.closed = !!live.closed;
    S.exists = live.exists !== false;
    S.segments = live.segments || 0;
    if (!S.originKnown && live.t0) { S.origin = live.t0; S.originKnown = true; }
  }

  function install(meta, d) {
    emptyStore();
    var live = meta.live, n = d.n;
    positions(live.task_fields, TF);
    positions(live.engine_fields, EF);
    S.origin = live.origin_us || live.t0 || 0;
    S.originKnown = !!S.origin;
    applyLive(live);
    S.log = live.log; S.version = live.version; S.outputChars = live.output_chars;
    grow(n + 1024);
    D.n = n;
    COLUMNS.forEach(function (c) { D[c[0]].set(d[c[0]]); });
    D.strings = d.strings;
    D.stdout = d.stdout; D.stderr = d.stderr; D.errors = d.errors;
    S.strIndex = new Map();
    for (var k = 0; k < D.strings.length; k++) if (!S.strIndex.has(D.strings[k])) S.strIndex.set(D.strings[k], k);
    meta.engines.forEach(function (e, r) {
      D.engines.push({ id: e.id, registered: finite(e.registered) ? e.registered : NaN,
        unregistered: finite(e.unregistered) ? e.unregistered : NaN, present: e.present_at_start, done: e.tasks,
        errors: e.errors, busyUs: e.busy_seconds * 1e6, current: null, currentStart: NaN,
        host: null, rss: null, cpu: null, series: [] });
      S.rowOf.set(e.id, r);
    });
    (live.engine_samples || []).forEach(function (found) {  // each engine's recent resource samples
      var r = S.rowOf.get(found[0]);
      if (r !== undefined) D.engines[r].series = found[1].map(function (s) { return [rel(s[0]), s[1]]; });
    });
    live.engines.forEach(applyEngine);
    // function colours: C.takeColour of each name, in sorted order, as every view colours them (and the legend)
    var used = new Set();
    for (var i = 0; i < n; i++) used.add(D.fn[i]);
    Array.from(used).sort(function (a, b) { var x = D.strings[a], y = D.strings[b]; return x < y ? -1 : x > y ? 1 : 0; })
      .forEach(function (f) { S.fnColour.set(f, C.takeColour(D.strings[f], S.taken)); S.functions.push(f); });
    var R = D.engines.length, counts = new Uint32Array(R);
    for (i = 0; i < n; i++) {
      S.index.set(D.mp[i] * TWO32 + D.ms[i], i);
      var st = D.status[i];
      S.byStatus[st]++;
      S.cidx[i] = colourOf(i);
      see(D.sub[i]); see(D.start[i]); see(D.end[i]); see(D.recv[i]);
      if (st === ST.error) S.failed.push(i);
      var r = D.row[i];
      if (r !== NONE && isDone(st) && D.start[i] === D.start[i]) counts[r]++;
      else if (r !== NONE && st === ST.running && D.start[i] === D.start[i]) S.running.add(i);
    }
    S.rows = [];
    for (r = 0; r < R; r++) S.rows.push(newRow(Math.max(64, counts[r])));
    for (i = 0; i < n; i++) {  // appended in task order, sorted below where needed
      r = D.row[i];
      if (r === NONE || !isDone(D.status[i]) || D.start[i] !== D.start[i]) continue;
      var row = S.rows[r], m = row.m++;
      row.ord[m] = i; S.inRow[i] = r + 1; S.inS[i] = D.start[i];
    }
    var start = D.start;
    S.rows.forEach(function (row) {
      var o = row.ord.subarray(0, row.m), sorted = true;
      for (var k = 1; k < o.length; k++) if (start[o[k]] < start[o[k - 1]]) { sorted = false; break; }
      if (!sorted) o.sort(function (a, b) { return start[a] - start[b] || a - b; });
      for (k = 0; k < o.length; k++) { row.s[k] = start[o[k]]; row.e[k] = barEnd(o[k]); }
      rowFix(row, 0);
    });
    S.marks = live.marks.map(function (m) { return { t: rel(m[0]), text: m[1], data: m[2] }; });
    S.marks.forEach(function (m) { see(m.t); });
    S.notices = live.notices.slice();
    S.damage = live.damage.slice();
    Legend.dirty = true;
    Marks.dirty = true;
    Errors.shown = -1;
    Timeline.changed = true;
    Tasks.cache = {};
    Tasks.stale = true;
    Tasks.last = -Infinity;
  }

  function applyBatch(b) {
    if (!S.originKnown && b.t0) { S.origin = b.t0; S.originKnown = true; }
    applyLive(b);
    S.newMin = Infinity; S.newMax = -1;
    b.tasks.forEach(upsert);
    b.engines.forEach(applyEngine);
    if (b.marks) {
      S.marks.length = Math.min(S.marks.length, b.marks[0]);
      b.marks[1].forEach(function (m) { var mk = { t: rel(m[0]), text: m[1], data: m[2] }; S.marks.push(mk); see(mk.t); });
      Marks.dirty = true;
    }
    if (b.notices) { S.notices.length = Math.min(S.notices.length, b.notices[0]); S.notices.push.apply(S.notices, b.notices[1]); }
    if (b.damage) S.damage = b.damage;
    API.seq = b.seq;
    API.batches++;
    API.lastBatch = { seq: b.seq, tasks: b.tasks.length, at: Date.now() };
    if (S.newMax >= 0) {  // [when the page had the batch, smallest and largest msg_id suffix new in it]
      API.arrivals.push([Date.now(), S.newMin, S.newMax]);
      if (API.arrivals.length > 5000) API.arrivals.splice(0, 1000);
    }
    Tasks.stale = true;
    schedule();
  }

  // ---------------------------------------------------------------- connection
  var Conn = {
    es: null, cursor: null, retry: null,

    start: function () {
      var self = this;
      if (this.retry) { clearTimeout(this.retry); this.retry = null; }
      this.state("connecting", "loading");
      fetch(url("/api/snapshot"), { cache: "no-store" }).then(function (resp) {
        if (resp.status === 403) throw new Error("Access denied: open the URL with its token (?token=...) that `ipyrecorder serve` printed.");
        if (!resp.ok) throw new Error("The snapshot failed: HTTP " + resp.status);
        return resp.arrayBuffer();
      }).then(function (buf) {
        var bytes = new Uint8Array(buf), len = new DataView(buf).getUint32(0, true);
        var meta = JSON.parse(new TextDecoder("utf-8").decode(bytes.subarray(4, 4 + len)));
        var t0 = performance.now();
        install(meta, C.decode(meta, bytes.subarray(4 + len)));
        API.snapshots++;
        API.snapshotBytes = buf.byteLength;
        API.installMs = performance.now() - t0;
        self.cursor = meta.live.cursor;
        API.epoch = self.cursor.split(":")[0];
        API.seq = Number(self.cursor.split(":")[1]);
        if (!API.ready && S.closed) { Timeline.all = true; Timeline.controls(); }  // a finished run: all of it
        renderAll();
        Timeline.drawNow();
        if (!API.ready) {
          API.ready = true;
          API.readyAt = performance.now();
          Details.fromHash();
        }
        self.connect();
      }).catch(function (exc) {
        var message = String(exc && exc.message ? exc.message : exc);
        if (/Access denied/.test(message)) { fatal(message); self.state("offline", "no access"); return; }
        self.state("offline", "offline, retrying");
        self.retry = setTimeout(function () { self.start(); }, 2000);
      });
    },

    connect: function () {
      var self = this;
      if (this.es) this.es.close();
      var es = (this.es = new EventSource(url("/api/stream", { after: this.cursor })));
      es.addEventListener("open", function () { API.connected = true; self.state(); });
      es.addEventListener("batch", function (ev) {
        self.cursor = ev.lastEventId;
        applyBatch(JSON.parse(ev.data));
        self.state();
      });
      es.addEventListener("reset", function () {
        es.close();
        self.es = null;
        API.resets++;
        self.start();
      });
      es.onerror = function () {
        API.connected = false;
        if (es.readyState === EventSource.CLOSED) {  // refused (not a stream): start over in a while
          self.es = null;
          self.state("offline", "offline, retrying");
          self.retry = setTimeout(function () { self.start(); }, 2000);
        } else {
          self.state("offline", "reconnecting");  // the browser reconnects with Last-Event-ID
        }
      };
    },

    state: function (cls, text) {
      if (!cls) {
        if (!S.exists) { cls = "waiting"; text = "waiting for the log"; }
        else if (S.closed) { cls = "closed"; text = "recording closed"; }
        else { cls = "live"; text = "live"; }
      }
      $("conn").className = "conn " + cls;
      $("conn-text").textContent = text;
    },
  };

  function fatal(message) {
    var box = $("fatal");
    box.textContent = message;
    box.hidden = false;
    API.error = message;
  }

  // ---------------------------------------------------------------- rendering
  var scheduled = false;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(function () {
      scheduled = false;
      renderAll();
    });
  }

  function renderAll() {
    renderNotices();
    if (PAGE === "cluster") { renderCards(); Engines.render(); Errors.render(); }
    else EnginePage.render();
    Marks.render();
    Legend.render();
    Tasks.refresh(false);
    Details.refresh();
    Timeline.request();
    Conn.state();
  }

  function renderNotices() {
    var box = $("notices"), items = [];
    if (!S.exists) {
      var waiting = S.notices.filter(function (t) { return /waiting for|deleted/.test(t); });
      items.push(["", waiting.length ? waiting[waiting.length - 1] : "waiting for the log to be created"]);
    }
    S.notices.filter(function (t) { return !/waiting for .* to be created/.test(t); }).slice(-3).forEach(function (t) {
      if (!S.exists && /deleted/.test(t)) return;
      items.push(["info", t]);
    });
    S.damage.slice(-3).forEach(function (t) { items.push(["bad", "damage: " + t]); });
    var key = JSON.stringify(items);
    if (key === box.dataset.key) return;
    box.dataset.key = key;
    clear(box);
    items.forEach(function (it) { box.appendChild(h("div", "notice " + it[0], it[1])); });
  }

  function card(label, value, sub, cls, small) {
    var c = h("div", "card" + (cls ? " " + cls : ""));
    c.appendChild(h("div", "label", label));
    c.appendChild(h("div", "value" + (small ? " small" : ""), value));
    c.appendChild(h("div", "sub", sub || "\u00a0"));
    return c;
  }

  function engineStats(e, now) {
    var gone = finite(e.unregistered), busy = !gone && e.current !== null;
    var running = busy && finite(e.currentStart) ? Math.max(0, now - e.currentStart) : NaN;
    var from = !e.present && finite(e.registered) ? Math.max(e.registered, Math.min(0, S.dataStart)) : Math.min(0, S.dataStart);
    var to = gone ? e.unregistered : now, life = to - from;
    var util = life > 0 ? Math.min(1, (e.busyUs + (running === running ? running : 0)) / life) : NaN;
    return { gone: gone, busy: busy, running: running, util: util, mean: e.done ? e.busyUs / e.done : NaN,
      state: gone ? "gone" : busy ? "busy" : "idle" };
  }

  function taskLabel(i) { return C.taskTitle(D, i); }
  function currentTitle(e) {
    if (e.current === null) return "";
    var i = findTask(e.current);
    return i >= 0 ? taskLabel(i) : e.current;
  }

  function renderCards() {
    var p = S.progress, now = edge(), box = $("cards");
    var alive = 0, busy = 0;
    D.engines.forEach(function (e) { var st = engineStats(e, now); if (!st.gone) { alive++; if (st.busy) busy++; } });
    var submitted = p.submitted || 0, done = p.done || 0, failed = p.failed || 0;
    clear(box);
    box.appendChild(card("Tasks", fmtInt(p.tasks || D.n), fmtInt(submitted) + " submitted"));
    box.appendChild(card("Completed", fmtInt(done), submitted ? fmtPct(done / submitted) : null, "good"));
    box.appendChild(card("Failed", fmtInt(failed), done ? fmtPct(failed / done) : null, failed ? "bad" : ""));
    box.appendChild(card("Running", fmtInt(S.byStatus[ST.running]), fmtInt(S.byStatus[ST.pending]) + " queued", S.byStatus[ST.running] ? "warn" : ""));
    box.appendChild(card("Engines busy", fmtInt(busy) + " / " + fmtInt(alive), D.engines.length > alive ? fmtInt(D.engines.length - alive) + " gone" : "alive engines"));
    // the rate: over the last 30 s while the run goes on; once it is closed, over the whole run
    var rate = S.closed ? (now > 0 ? done / (now / 1e6) : null) : p.rate;
    box.appendChild(card("Rate", rate === null || rate === undefined ? DASH : (rate < 10 ? rate.toFixed(2) : rate.toFixed(0)) + "/s",
      S.closed ? "over the run" : p.eta === null || p.eta === undefined ? "last 30 s" : "ETA " + fmtDur(p.eta * 1e6)));
    box.appendChild(card("Elapsed", S.originKnown && (D.n || S.marks.length) ? fmtDur(Math.max(0, now)) : DASH, S.closed ? "closed" : "since the start"));
    box.appendChild(card("Marks", fmtInt(S.marks.length), S.segments > 1 ? S.segments + " segments" : null));
    $("progress-ok").style.width = submitted ? (100 * (done - failed) / submitted) + "%" : "0";
    $("progress-err").style.width = submitted ? (100 * failed / submitted) + "%" : "0";
    $("progress-text").textContent = fmtInt(done) + " of " + fmtInt(submitted) + " done" +
      (failed ? " \u00b7 " + fmtInt(failed) + " failed" : "") + (p.eta ? " \u00b7 ETA " + fmtDur(p.eta * 1e6) : "");
    $("subtitle").textContent = S.log + (S.closed ? " \u00b7 closed" : "");
  }

  // -- engines table (cluster page)
  var Engines = {
    sortKey: "id", dir: 1, bound: false,
    bind: function () {
      var self = this;
      Array.prototype.forEach.call(document.querySelectorAll("#engines-table th.sortable"), function (th) {
        th.title = "Sort by " + th.textContent;
        th.addEventListener("click", function () {
          var k = th.dataset.key;
          if (self.sortKey === k) self.dir = -self.dir; else { self.sortKey = k; self.dir = k === "id" || k === "task" ? 1 : -1; }
          self.render();
        });
      });
      $("engines-table").addEventListener("click", function (ev) {
        var tr = ev.target.closest("tbody tr");
        if (tr && tr.dataset.engine !== undefined) location.href = engineUrl(tr.dataset.engine);
      });
      this.bound = true;
    },
    render: function () {
      if (!this.bound) this.bind();
      var now = edge(), self = this, tb = h("tbody"), rows = [];
      D.engines.forEach(function (e) { rows.push({ e: e, st: engineStats(e, now), task: currentTitle(e) }); });
      var ORDER = { busy: 0, idle: 1, gone: 2 };
      var key = {
        id: function (r) { return r.e.id; }, state: function (r) { return ORDER[r.st.state]; },
        task: function (r) { return r.task; }, running: function (r) { return r.st.running; },
        done: function (r) { return r.e.done; }, errors: function (r) { return r.e.errors; },
        busy: function (r) { return r.e.busyUs; }, mean: function (r) { return r.st.mean; }, util: function (r) { return r.st.util; },
        host: function (r) { return r.e.host || ""; }, rss: function (r) { return r.e.rss === null ? NaN : r.e.rss; },
        cpu: function (r) { return r.e.cpu === null ? NaN : r.e.cpu; },
      }[this.sortKey];
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x !== x || x === "") return y !== y || y === "" ? 0 : 1;
        if (y !== y || y === "") return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * self.dir || (a.e.id < b.e.id ? -1 : 1);
      });
      var tot = { done: 0, errors: 0, busy: 0, utilSum: 0, utilN: 0, busyN: 0, alive: 0 };
      rows.forEach(function (r) {
        var e = r.e, st = r.st, tr = h("tr");
        tr.dataset.engine = String(e.id);
        tr.title = "Open engine " + e.id;
        tr.appendChild(h("td", "num", e.id));
        var td = h("td");
        td.appendChild(h("span", "state " + st.state, st.state));
        tr.appendChild(td);
        var task = h("td", "task" + (r.task ? "" : " muted"), r.task || DASH);
        if (r.task) task.title = r.task;
        tr.appendChild(task);
        tr.appendChild(h("td", "num", st.running === st.running ? fmtDur(st.running) : DASH));
        tr.appendChild(h("td", "num", fmtInt(e.done)));
        var err = h("td", "num", fmtInt(e.errors));
        if (e.errors) err.style.color = C.C_ERROR;
        tr.appendChild(err);
        tr.appendChild(h("td", "num", fmtDur(e.busyUs)));
        tr.appendChild(h("td", "num", fmtDur(st.mean)));
        var u = h("td"), bar = h("span", "bar"), fill = h("span");
        fill.style.width = Math.max(0, Math.min(100, 100 * (st.util || 0))) + "%";
        bar.appendChild(fill); u.appendChild(bar); u.appendChild(document.createTextNode(fmtPct(st.util)));
        tr.appendChild(u);
        tr.appendChild(h("td", "host" + (e.host ? "" : " muted"), e.host || DASH));
        var mem = h("td", "num memory");
        if (e.series.length > 1) mem.appendChild(sparkline(e.series));
        mem.appendChild(document.createTextNode(e.rss === null ? DASH : fmtBytes(e.rss)));
        tr.appendChild(mem);
        tr.appendChild(h("td", "num", e.cpu === null ? DASH : e.cpu.toFixed(0) + "%"));
        tb.appendChild(tr);
        tot.done += e.done; tot.errors += e.errors; tot.busy += e.busyUs;
        if (!st.gone) { tot.alive++; if (st.busy) tot.busyN++; }
        if (st.util === st.util) { tot.utilSum += st.util; tot.utilN++; }
      });
      if (!rows.length) {
        var tr0 = h("tr"), td0 = h("td", "empty", S.exists ? "No engine has appeared in the log yet." : "Waiting for the log.");
        td0.colSpan = 12; tr0.appendChild(td0); tb.appendChild(tr0);
      }
      var table = $("engines-table");
      table.replaceChild(tb, table.tBodies[0]);
      var foot = table.tFoot;
      clear(foot);
      if (rows.length) {
        var f = h("tr");
        f.appendChild(h("td", "num", "total"));
        f.appendChild(h("td", null, tot.busyN + " busy of " + tot.alive));
        f.appendChild(h("td"));
        f.appendChild(h("td"));
        f.appendChild(h("td", "num", fmtInt(tot.done)));
        f.appendChild(h("td", "num", fmtInt(tot.errors)));
        f.appendChild(h("td", "num", fmtDur(tot.busy)));
        f.appendChild(h("td", "num", tot.done ? fmtDur(tot.busy / tot.done) : DASH));
        f.appendChild(h("td", null, tot.utilN ? "mean " + fmtPct(tot.utilSum / tot.utilN) : DASH));
        f.appendChild(h("td"));
        f.appendChild(h("td"));
        f.appendChild(h("td"));
        foot.appendChild(f);
      }
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        var on = th.dataset.key === self.sortKey;
        th.classList.toggle("sorted", on);
        th.querySelector(".arrow").textContent = on ? (self.dir > 0 ? "\u2191" : "\u2193") : "";
      });
    },
  };

  // -- recent errors (cluster page)
  var Errors = {
    shown: -1,
    render: function () {
      var box = $("recent-errors");
      if (this.shown === S.failed.length && box.firstChild) return;
      this.shown = S.failed.length;
      clear(box);
      if (!S.failed.length) { box.appendChild(h("p", "empty", "No task has failed.")); return; }
      var list = h("div", "errlist");
      S.failed.slice(-30).reverse().forEach(function (i) {
        var it = h("div", "erritem");
        it.appendChild(h("div", "e-msg", C.firstLine(C.errorText(D, i) || "(no error message)", 200)));
        var e = C.engineOf(D, i);
        it.appendChild(h("div", "e-who", taskLabel(i) + (e !== null ? " \u00b7 engine " + e : "") + " \u00b7 " + C.msgId(D, i)));
        it.addEventListener("click", function () { Details.show(i, true); });
        list.appendChild(it);
      });
      box.appendChild(list);
    },
  };

  // -- marks
  var Marks = {
    dirty: true, shown: -1,
    render: function () {
      var table = $("marks-table");
      if (!table || (!this.dirty && this.shown === S.marks.length)) return;
      this.dirty = false;
      this.shown = S.marks.length;
      var tb = h("tbody");
      S.marks.forEach(function (m) { tb.appendChild(C.markRow(m, fmtAt)); });
      if (!S.marks.length) {
        var tr0 = h("tr"), td0 = h("td", "empty", "No marks yet (rec.mark(...) adds them)."); td0.colSpan = 3; tr0.appendChild(td0); tb.appendChild(tr0);
      }
      table.replaceChild(tb, table.tBodies[0]);
    },
  };

  // -- legend
  var Legend = {
    dirty: true,
    render: function () {
      if (!this.dirty) return;
      this.dirty = false;
      var box = $("legend");
      clear(box);
      C.legendFunctions(box, S.functions, S.fnColour, D.strings);
      C.legendItem(box, C.C_ERROR, "error");
      C.legendItem(box, C.C_ABORTED, "aborted");
      C.legendItem(box, C.C_RUNNING, "running");
    },
  };

  // -- engine page
  var EnginePage = {
    render: function () {
      var r = S.rowOf.get(this.key()), now = edge(), box = $("cards");
      $("engine-h").textContent = "Engine " + ENGINE;
      document.title = "Engine " + ENGINE + " \u00b7 " + S.log.split("/").pop() + " \u00b7 ipyrecorder live";
      $("subtitle").textContent = S.log + (S.closed ? " \u00b7 closed" : "");
      clear(box);
      var stateBox = $("engine-state");
      clear(stateBox);
      if (r === undefined) {
        box.appendChild(card("Engine " + ENGINE, DASH, "has not appeared in the log (yet)"));
        return;
      }
      var e = D.engines[r], st = engineStats(e, now), title = currentTitle(e);
      stateBox.appendChild(h("span", "state " + st.state, st.state));
      box.appendChild(card("Current task", title || DASH, st.busy ? "running " + fmtDur(st.running) : "none", st.busy ? "warn" : "", true));
      box.appendChild(card("Tasks done", fmtInt(e.done)));
      box.appendChild(card("Errors", fmtInt(e.errors), null, e.errors ? "bad" : ""));
      box.appendChild(card("Busy", fmtDur(e.busyUs), "finished tasks"));
      box.appendChild(card("Mean per task", fmtDur(st.mean)));
      box.appendChild(card("Utilisation", fmtPct(st.util), st.gone ? "until it left" : "busy / alive"));
      var dl = $("engine-facts");
      clear(dl);
      function fact(k, v) { if (v === null || v === undefined || v === "") return; dl.appendChild(h("dt", null, k)); dl.appendChild(h("dd", null, v)); }
      fact("Joined", e.present ? "present when the recording started" : finite(e.registered) ? fmtAt(e.registered) + "  (" + isoUs(e.registered + S.origin) + ")" : DASH);
      if (st.gone) fact("Left", fmtAt(e.unregistered) + "  (" + isoUs(e.unregistered + S.origin) + ")");
      if (e.current !== null) fact("Running", e.current);
    },
    key: function () {  // the engine's id as the log has it (ids are numbers)
      var found = ENGINE;
      S.rowOf.forEach(function (r, id) { if (String(id) === ENGINE) found = id; });
      return found;
    },
  };

  // -- tasks: search and table
  var Tasks = {
    cache: {}, query: "", stale: true, last: 0, timer: null,
    init: function () {
      var self = this;
      function lazy(f) { return function () { var a = new Float64Array(D.n); for (var i = 0; i < D.n; i++) a[i] = f(i); return a; }; }
      var cols = [
        { label: "msg_id", cls: "mono clip", cell: C.cellMsgId(function () { return D; }) },
        { label: "name", cls: "clip", cell: C.cellText(function (i) { return D.strings[D.name[i]]; }) },
        { label: "function", cls: "mono clip", cell: C.cellText(function (i) { return D.strings[D.fn[i]]; }) },
      ];
      if (PAGE === "cluster") {
        cols.push({ label: "engine", cls: "num", key: lazy(function (i) { var e = C.engineOf(D, i); return e === null ? NaN : e; }),
          cell: C.cellText(function (i) { return C.engineOf(D, i); }) });
      }
      cols.push(
        { label: "status", cell: function (i, td) { td.appendChild(C.statusBadge(STATUSES[D.status[i]])); } },
        { label: "started", cls: "num", key: lazy(function (i) { return D.start[i]; }),
          cell: C.cellText(function (i) { return finite(D.start[i]) ? fmtAt(D.start[i]) : null; }) },
        { label: "duration", cls: "num", desc: true, key: lazy(function (i) { return D.status[i] === ST.running ? edge() - D.start[i] : C.runUs(D, i); }),
          cell: C.cellText(function (i) {
            if (D.status[i] === ST.running && finite(D.start[i])) return fmtDur(edge() - D.start[i]) + " so far";
            var d = C.runUs(D, i); return d === d ? fmtDur(d) : null;
          }) },
        { label: "output / error", cls: "mono clip", cell: C.cellText(function (i) {
          return C.errorText(D, i) || D.stdout.get(i) || D.stderr.get(i) || null; }, 80) });
      this.table = new C.PagedTable($("task-list"), cols, {
        pageSize: 25, empty: "No task matches.", onClick: function (i) { Details.show(i, false); } });
      var input = $("search");
      input.addEventListener("input", function () {
        clearTimeout(self.timer);
        self.timer = setTimeout(function () { self.search(input.value); }, D.n > 100000 ? 200 : 80);
      });
      input.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { clearTimeout(self.timer); self.search(input.value); } });
      this.search("");
    },
    fullQuery: function () { return PAGE === "engine" ? this.query + " engine:" + ENGINE : this.query; },
    rows: function () {
      var found = C.search(D, this.fullQuery(), this.cache), n = found.length, out = new Uint32Array(n);
      for (var k = 0; k < n; k++) out[k] = found[n - 1 - k];  // newest first
      return out;
    },
    note: function (count) { return PAGE === "cluster" && this.query.trim() && count !== D.n ? " (filtered from " + fmtInt(D.n) + ")" : ""; },
    search: function (query) {
      this.query = query;
      var rows = this.rows();
      this.table.setRows(rows, this.note(rows.length));
      this.last = performance.now();
      this.stale = false;
      API.lastSearch = { query: query, count: rows.length };
    },
    refresh: function (force) {  // the results follow the log: at most once a second (every 3 s for big logs)
      if (!this.table) return;
      var wait = D.n > 200000 ? 3000 : D.n > 20000 ? 1000 : 250, self = this;
      if (!force && (!this.stale || performance.now() - this.last < wait)) {
        if (this.stale && !this.pending) {
          this.pending = setTimeout(function () { self.pending = null; self.refresh(false); }, wait);
        }
        return;
      }
      var rows = this.rows();
      this.table.refresh(rows, this.note(rows.length));
      this.last = performance.now();
      this.stale = false;
      API.lastSearch = { query: this.query, count: rows.length };
    },
  };

  // -- task details: what the store has at once, then the full record (stdout, stderr) from /api/task/ID
  var Details = {
    index: -1, record: null, touched: false, fetching: false, lastFetch: 0,
    show: function (i, scroll) {
      this.index = i;
      this.record = null;
      this.touched = false;
      Tasks.table.selected = i;
      Tasks.table.render();
      try { history.replaceState(null, "", "#task=" + encodeURIComponent(C.msgId(D, i))); } catch (e) { /* file: */ }
      this.render();
      this.fetch();
      if (scroll) $("tasks-section").scrollIntoView({ block: "start" });
    },
    fromHash: function () {
      var m = /^#task=(.+)$/.exec(location.hash);
      if (!m) return;
      var i = findTask(decodeURIComponent(m[1]));
      if (i >= 0) this.show(i, true);
    },
    close: function () {
      this.index = -1;
      $("details").hidden = true;
      $("details").parentNode.classList.remove("open");
      Tasks.table.selected = -1;
      Tasks.table.render();
      try { history.replaceState(null, "", location.pathname + location.search); } catch (e) { /* file: */ }
    },
    fetch: function () {
      var i = this.index, self = this;
      if (i < 0 || this.fetching) return;
      this.fetching = true;
      this.lastFetch = performance.now();
      this.touched = false;
      fetch(url("/api/task/" + encodeURIComponent(C.msgId(D, i))), { cache: "no-store" }).then(function (resp) {
        return resp.ok ? resp.json() : null;
      }).then(function (rec) {
        self.fetching = false;
        if (self.index === i && rec) { self.record = rec; self.render(); }
        API.detailsLoaded = (API.detailsLoaded || 0) + 1;
      }).catch(function () { self.fetching = false; });
    },
    refresh: function () {  // a shown task that changed: fetch it again (at most once a second)
      if (this.index < 0) return;
      if (this.touched && performance.now() - this.lastFetch > 1000) this.fetch();
      else if (this.touched) this.render();
    },
    render: function () {
      var i = this.index, box = $("details"), rec = this.record, self = this;
      if (i < 0) return;
      box.hidden = false;
      box.parentNode.classList.add("open");
      clear(box);
      var head = h("div", "d-head");
      head.appendChild(h("div", "d-title", taskLabel(i)));
      var close = h("button", "d-close", "\u00d7");
      close.type = "button"; close.title = "Close";
      close.addEventListener("click", function () { self.close(); });
      head.appendChild(close);
      box.appendChild(head);
      var dl = h("dl");
      function row(k, v, title) {
        if (v === null || v === undefined || v === "") return;
        dl.appendChild(h("dt", null, k));
        var dd = v instanceof Node ? h("dd") : h("dd", null, v);
        if (v instanceof Node) dd.appendChild(v);
        if (title) dd.title = title;
        dl.appendChild(dd);
      }
      var st = STATUSES[D.status[i]], eng = C.engineOf(D, i);
      row("status", C.statusBadge(st));
      row("msg_id", C.msgId(D, i));
      row("name", D.strings[D.name[i]]);
      row("function", D.strings[D.fn[i]]);
      if (eng !== null) {
        if (PAGE === "engine" && String(eng) === ENGINE) row("engine", String(eng));
        else { var a = h("a", "link", "engine " + eng); a.href = engineUrl(eng); row("engine", a); }
      }
      function at(k, t) { if (finite(t)) row(k, fmtAt(t), isoUs(t + S.origin)); }
      at("submitted", D.sub[i]);
      at("started", D.start[i]);
      at("completed", D.end[i]);
      at("received", D.recv[i]);
      if (st === "running" && finite(D.start[i])) row("running for", fmtDur(edge() - D.start[i]));
      var run = C.runUs(D, i), q = C.queueUs(D, i);
      if (run === run) row("duration", fmtDur(run));
      if (q === q) row("queued", fmtDur(q));
      if (finite(D.recv[i]) && finite(D.end[i])) row("reply latency", fmtDur(D.recv[i] - D.end[i]));
      if (rec && rec.attempts) row("attempts", rec.attempts.map(function (a) { return "engine " + a[0]; }).join(", "));
      if (rec && rec.resubmitted) row("resubmitted as", rec.resubmitted);
      if (rec && rec.resubmit_of) row("resubmit of", rec.resubmit_of);
      box.appendChild(dl);
      function block(title, text, cls, more) {
        box.appendChild(h("h4", null, title));
        if (text === null || text === undefined || text === "") { box.appendChild(h("div", "none", "none")); return; }
        var pre = h("pre", cls || null, text);
        pre.dataset.stream = title;
        box.appendChild(pre);
        if (more) box.appendChild(h("div", "none", more));
      }
      var err = rec ? rec.error : C.errorText(D, i);
      if (err || st === "error") block("error", err || "(no error message)", "err");
      if (rec && rec.traceback) {
        block("traceback", rec.traceback, "err");
        box.lastChild.scrollTop = box.lastChild.scrollHeight;  // read from its end, where the exception is
      }
      if (rec && rec.attempt_errors && (rec.attempt_errors.length > 1 || st === "ok")) {
        block("failed attempts", rec.attempt_errors.map(function (a) {
          return "engine " + a.engine_id + ": " + a.ename + (a.evalue ? ": " + a.evalue : "") + (a.traceback ? "\n" + a.traceback + "\n" : "");
        }).join("\n"), "err");
      }
      function cut(key) {
        return rec && rec[key + "_chars"] > rec[key].length ? "showing the first " + fmtInt(rec[key].length) + " of " + fmtInt(rec[key + "_chars"]) + " characters" : null;
      }
      if (rec) {
        block("stdout", rec.stdout, "out", cut("stdout"));
        block("stderr", rec.stderr, "err", cut("stderr"));
      } else {
        block("stdout", D.stdout.get(i), "out");
        block("stderr", D.stderr.get(i), "err");
        box.appendChild(h("div", "none", "loading the full output\u2026"));
      }
    },
  };

  // ---------------------------------------------------------------- timeline
  var Timeline = Object.assign(Object.create(C.Timeline), {
    live: true, span: 60e6, all: false, v0: 0, v1: 60e6, hover: -1, selected: -1, changed: true, pending: false,
    lastDraw: 0,

    init: function () {
      this.attach();
      var self = this;
      Array.prototype.forEach.call(document.querySelectorAll(".segmented button"), function (b) {
        b.addEventListener("click", function () {
          self.all = b.dataset.span === "all";
          if (!self.all) self.span = Number(b.dataset.span) * 1e6;
          self.setLive(true);
        });
      });
      $("live-toggle").addEventListener("click", function () { self.setLive(!self.live); });
      this.bind();
      if (window.ResizeObserver) new ResizeObserver(function () { self.changed = true; self.request(); }).observe(this.box);
      this.controls();
      var loop = function (ts) {
        // live, the view moves a pixel every (window / width): redraw as often as that, 30 ms to 1 s apart
        var every = self.L ? Math.min(1000, Math.max(30, (self.v1 - self.v0) / self.L.plotW / 1000)) : 30;
        if (API.ready && (self.pending || (self.live && !S.closed && ts - self.lastDraw >= every))) self.drawNow();
        requestAnimationFrame(loop);
      };
      requestAnimationFrame(loop);
    },

    controls: function () {
      var self = this;
      Array.prototype.forEach.call(document.querySelectorAll(".segmented button"), function (b) {
        var on = self.live && (b.dataset.span === "all" ? self.all : !self.all && Number(b.dataset.span) * 1e6 === self.span);
        b.classList.toggle("on", on);
      });
      var t = $("live-toggle");
      t.textContent = this.live ? "Pause" : "\u25b6 Live";
      t.classList.toggle("paused", !this.live);
      t.title = this.live ? "Freeze the view (the data keeps coming)" : "Follow the present again";
    },

    setLive: function (on) {
      this.live = on;
      this.controls();
      this.request();
    },

    shown: function () {  // rows to draw: every engine by id (cluster page), or the page's engine
      if (PAGE === "engine") {
        var r = S.rowOf.get(EnginePage.key());
        return r === undefined ? [] : [r];
      }
      var rows = D.engines.map(function (e, r) { return r; });
      rows.sort(function (a, b) { var x = D.engines[a].id, y = D.engines[b].id; return x < y ? -1 : x > y ? 1 : 0; });
      return rows;
    },

    layout: function () {
      var shown = this.shown(), R = Math.max(shown.length, 1);
      var names = shown.map(function (r) { return "engine " + D.engines[r].id; });
      this.fitLayout(R, this.rowHeight(R, PAGE === "engine" ? 40 : 0), names, 64, 40, PAGE === "engine" ? 0 : 64);
      this.rowsShown = shown;
      this.slot = new Map();
      var self = this;
      shown.forEach(function (r, j) { self.slot.set(r, j); });
    },

    request: function () { this.pending = true; },

    view: function () {
      var end = edge();
      if (this.live) {
        if (this.all) {
          var a = Math.min(0, S.dataStart), range = Math.max(end - a, 1e6);
          this.v0 = a; this.v1 = a + range * 1.02;
        } else {  // the last `span`; while the run is younger than that, a window that grows from its start
          var first = Math.min(0, S.dataStart), pad = this.span * 0.02;
          this.young = end + pad - first < this.span;
          if (this.young) {
            var width = Math.min(this.span, Math.max((end - first) * 1.2, 5e6));
            this.v0 = first - width * 0.01;
            this.v1 = this.v0 + width;
          } else {
            this.v1 = end + pad;
            this.v0 = this.v1 - this.span;
          }
        }
      }
      return end;
    },

    drawNow: function () {
      var t0 = performance.now();
      this.pending = false;
      this.lastDraw = t0;
      if (this.changed || !this.L || this.rowsShown.length !== this.shown().length) { this.layout(); this.changed = false; }
      var end = this.view();
      var L = this.L, ctx = this.ctx, shown = this.rowsShown, R = shown.length;
      var W = L.plotW, left = L.left, v0 = this.v0, v1 = this.v1, scale = W / (v1 - v0), rowH = L.rowH, top = L.top;
      // (before the log has a start, there is no time to count from: no ticks)
      var V = { v0: v0, v1: v1, scale: scale, W: W, left: left }, j;
      var ticks = S.originKnown ? C.ticks(v0, v1, W) : { ts: [], step: 1 };
      this.beginFrame(V, R, ticks);
      var bh = C.barHeight(rowH);
      var sc = this.sc, busy = sc.busy, drawn = 0, rects = 0, running = 0;
      var nameOf = function (i) { return C.taskTitle(D, i); };
      for (j = 0; j < R; j++) {
        var row = S.rows[shown[j]];
        if (!row.m) continue;
        var y = top + j * rowH + (rowH - bh) / 2;
        var done = C.drawRowBars(ctx, row, row.m, V, y, bh, S.cidx, this.colours, this.priority, sc);
        drawn += done[0]; rects += done[1];
        C.drawBarNames(ctx, row, row.m, V, y, bh, S.cidx, this.colours, nameOf, sc);
      }
      // running tasks: from their start to now
      ctx.fillStyle = C.C_RUNNING;
      var slot = this.slot;
      S.running.forEach(function (i) {
        var k = slot.get(D.row[i]);
        if (k === undefined) return;
        var s = D.start[i];
        if (s > v1 || end < v0) return;
        var x0 = (s - v0) * scale, x1 = (end - v0) * scale;
        var cx0 = Math.max(-2, x0), cx1 = Math.min(W + 2, x1);
        ctx.fillRect(left + cx0, top + k * rowH + (rowH - bh) / 2, Math.max(1, cx1 - cx0), bh);
        var ca = Math.max(0, Math.floor(cx0)), cb = Math.min(W, Math.ceil(cx1));
        for (var c = ca; c < cb; c++) busy[c] += Math.min(c + 1, x1) - Math.max(c, x0);
        running++;
      });
      var stats = null;
      if (L.busyH) {
        var x0b = Math.max(0, Math.floor((Math.min(0, S.dataStart) - v0) * scale)), x1b = Math.min(W, Math.ceil((end - v0) * scale));
        stats = C.drawBusy(ctx, busy, x0b, x1b, left, L.busyTop, L.busyH, Math.max(R, 1));
      }
      // now
      if (!S.closed && end >= v0 && end <= v1) {
        var xn = Math.round(left + (end - v0) * scale) + 0.5;
        ctx.strokeStyle = "#2da44e";
        ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(xn, top - 2); ctx.lineTo(xn, L.busyTop + L.busyH); ctx.stroke();
      }
      ctx.restore();
      var marks = C.drawMarks(ctx, S.marks, V, top - 4, L.busyTop + L.busyH, 14);
      // frame, labels, axis
      this.drawFrame(V, R, function (k) { return "engine " + D.engines[shown[k]].id; });
      if (!R) { ctx.textAlign = "center"; ctx.fillText(S.exists ? "no engine yet" : "waiting for the log", left + W / 2, top + rowH / 2); ctx.textAlign = "right"; }
      if (!S.closed && end >= v0 && end <= v1) {
        ctx.textAlign = "left";
        ctx.fillStyle = "#1a7f37";
        ctx.fillText("now", Math.min(left + (end - v0) * scale + 4, L.width - 26), top - 10);
        ctx.fillStyle = C.C_TEXT;
      }
      this.drawAxis(V, ticks, R ? stats : null, R);
      var quiet = this.live && !this.all && D.n && S.dataEnd < v0 ? " \u00b7 nothing in view: the last event was " + fmtDur(end - S.dataEnd) + " ago" : "";
      var mode = S.closed ? "closed" : "live";  // (a closed log does not move: what it shows is all there is)
      $("view-range").textContent = (this.live ? (this.all ? mode + " \u00b7 whole run" : this.young ? mode + " \u00b7 since the start (up to " +
        fmtDur(this.span) + ")" : mode + " \u00b7 last " + fmtDur(this.span)) :
        "paused \u00b7 " + fmtAt(v0) + " to " + fmtAt(v1) + " (" + fmtDur(v1 - v0) + ")") + quiet;
      var ms = performance.now() - t0;
      API.draws++;
      API.lastDraw = { bars: drawn, running: running, rects: rects, names: sc.names, marks: marks, ms: ms, at: Date.now() };
      this.drawOverlay();
    },

    barRect: function (i) {
      var k = this.slot && this.slot.get(D.row[i]);
      if (k === undefined || D.start[i] !== D.start[i]) return null;
      return this.barBox(k, D.start[i], D.status[i] === ST.running ? edge() : barEnd(i));
    },

    selectedIndex: function () { return Details.index; },

    hitRowAt: function (j, t, tol) {
      var r = this.rowsShown[j];
      if (r === undefined) return -1;
      var end = edge(), hit = -1;
      S.running.forEach(function (i) { if (D.row[i] === r && t >= D.start[i] - tol && t <= end + tol) hit = i; });
      if (hit >= 0) return hit;
      var row = S.rows[r];
      return row.m ? C.hitRow(row, row.m, t, tol) : -1;
    },

    tipFill: function (i, tip) {
      tip.appendChild(h("div", "tt-title", taskLabel(i)));
      var row = C.tipList(tip);
      row("function", D.strings[D.fn[i]] || DASH);
      row("msg_id", C.msgId(D, i));
      row("engine", C.engineOf(D, i));
      row("status", STATUSES[D.status[i]]);
      row("duration", D.status[i] === ST.running ? fmtDur(edge() - D.start[i]) + " so far" : fmtDur(C.runUs(D, i)));
      row("started", fmtAt(D.start[i]));
      C.tipPre(tip, "err", C.errorText(D, i));
      C.tipPre(tip, null, D.stdout.get(i));
      C.tipPre(tip, "err", D.stderr.get(i));
    },

    zoomAt: function (px, factor) {
      var L = this.L, range = this.v1 - this.v0;
      var next = Math.max(Math.min(range * factor, 1e12), Math.max(50, L.plotW * 0.01));
      if (this.live) { this.all = false; this.span = next; this.controls(); this.request(); return; }
      var frac = Math.max(0, Math.min(1, (px - L.left) / L.plotW)), t = this.v0 + frac * range;
      this.v0 = t - frac * next; this.v1 = this.v0 + next;
      this.request();
    },

    pause: function () { this.live = false; this.controls(); },

    panTo: function (a, b) { this.v0 = a; this.v1 = b; this.request(); },

    reset: function () { this.setLive(true); },

    clicked: function (i) { Details.show(i, false); },
  });

  // ---------------------------------------------------------------- API for tests, benchmarks and scripting
  API.tasks = function () { return D.n; };
  API.msgIds = function () { var out = []; for (var i = 0; i < D.n; i++) out.push(C.msgId(D, i)); return out; };
  API.task = function (id) {
    var i = findTask(id);
    if (i < 0) return null;
    return { name: D.strings[D.name[i]], function: D.strings[D.fn[i]], status: STATUSES[D.status[i]], engine: C.engineOf(D, i),
      stdout: D.stdout.get(i) || "", error: C.errorText(D, i) };
  };
  API.counts = function () { var o = {}; STATUSES.forEach(function (s, k) { o[s] = S.byStatus[k]; }); return o; };
  API.engines = function () {
    return D.engines.map(function (e) {
      return { id: e.id, done: e.done, errors: e.errors, current: e.current, host: e.host, rss: e.rss, samples: e.series.length };
    });
  };
  API.view = function () { return { v0: Timeline.v0, v1: Timeline.v1, live: Timeline.live, span: Timeline.span }; };
  API.layout = function () { return Timeline.L; };
  API.barRect = function (id) { var i = findTask(id); return i < 0 ? null : Timeline.barRect(i); };
  API.setLive = function (on) { Timeline.setLive(on); Timeline.drawNow(); };
  API.setSpan = function (seconds) { Timeline.all = false; Timeline.span = seconds * 1e6; Timeline.setLive(true); Timeline.drawNow(); };

  // ---------------------------------------------------------------- start
  function start() {
    emptyStore();
    Timeline.init();
    Tasks.init();
    if (PAGE === "cluster") Engines.bind();
    window.addEventListener("hashchange", function () { if (API.ready) Details.fromHash(); });
    setInterval(function () {  // running times tick
      if (!API.ready) return;
      if (PAGE === "cluster") { renderCards(); Engines.render(); } else EnginePage.render();
      if (Details.index >= 0 && D.status[Details.index] === ST.running) Details.render();
    }, 1000);
    Conn.start();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
