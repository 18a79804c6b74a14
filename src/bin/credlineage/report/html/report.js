"use strict";
// credlineage report page: draws the JSON block #data. Record strings go
// into the document only as text (textContent), never as markup.
(function () {
  window.onerror = function (m) { document.body.setAttribute("data-error", String(m)); };
  var D = JSON.parse(document.getElementById("data").textContent);
  // What the browser draws stays bounded whatever the trail: roots per page,
  // children / table rows shown per "more", search paths opened, timeline
  // lanes, credentials opened by default.
  var PAGE = 25, KIDS = 100, ROWS = 100, HITS = 50, LANES = 40, AUTO = 300;
  var C = D.creds, R = D.roots;
  var HOT = { offhost: 16, ancestor: 8, collision: 4, deep: 2 };
  var tops = R.map(function () { return []; });
  var first = R.map(function () { return -1; }), last = R.map(function () { return -1; });
  var byFp = new Map(), offByFp = new Map();
  var collKeys = new Set(D.collisions.map(function (c) { return c.access_key_id; }));
  var liveFp = new Set(D.live.map(function (l) { return l.session_fingerprint; }));
  D.offhost.forEach(function (o) {
    o.session_fingerprints.forEach(function (f) {
      if (!offByFp.has(f)) offByFp.set(f, []);
      offByFp.get(f).push(o);
    });
  });
  function marks(c) {
    var m = [];
    if (c.o > 0) m.push(["offhost", "off-host ×" + c.o]);
    if (c.an) m.push(["ancestor", "off-host descendant"]);
    if (c.k != null && collKeys.has(c.k)) m.push(["collision", "key-ID collision"]);
    if (c.d >= 3) m.push(["deep", "chain depth " + c.d]);
    if (liveFp.has(c.f)) m.push(["live", "live"]);
    if (c.c === false) m.push(["incomplete", "lineage incomplete"]);
    return m;
  }
  var rootScore = R.map(function (r) { return r.t === "unresolved" ? 1 : 0; });
  var rootCount = R.map(function () { return {}; });
  C.forEach(function (c, i) {
    c.kids = [];
    if (c.p >= 0) C[c.p].kids.push(i); else tops[c.r].push(i);
    if (first[c.r] < 0) first[c.r] = i;
    last[c.r] = i;
    byFp.set(c.f, i);
    c.m = marks(c);
    c.hot = 0;
    c.m.forEach(function (m) {
      var s = HOT[m[0]] || 0;
      c.hot |= s;
      rootScore[c.r] |= s;
      rootCount[c.r][m[0]] = (rootCount[c.r][m[0]] || 0) + 1;
    });
  });
  // Pre-order: children come after their issuer, so one backward pass marks
  // every credential with a finding below it.
  for (var j = C.length - 1; j >= 0; j--) {
    if (C[j].p >= 0 && (C[j].hot || C[j].below)) C[C[j].p].below = true;
  }
  // Roots with findings first (off-host, descendants, collisions, deep chains, unresolved), else as found.
  var order = R.map(function (_, i) { return i; });
  order.sort(function (a, b) { return rootScore[b] - rootScore[a] || a - b; });
  var pos = [];
  order.forEach(function (ri, p) { pos[ri] = p; });

  var open = new Set(), ropen = new Set(), shown = new Map(), hits = new Set(), rhits = new Set();
  var page = 0, hitList = [], hitAt = -1;
  function openPath(i) {
    ropen.add(C[i].r);
    var child = i;
    for (var p = C[i].p; p >= 0; child = p, p = C[p].p) {
      open.add(p);
      widen("c" + p, C[p].kids.indexOf(child));
    }
    widen("r" + C[i].r, tops[C[i].r].indexOf(child));
  }
  function widen(key, idx) {
    var n = shown.get(key) || KIDS;
    if (idx >= n) shown.set(key, Math.ceil((idx + 1) / KIDS) * KIDS);
  }
  // By default: roots with findings open, and the path to each marked credential.
  (function () {
    var budget = AUTO;
    order.forEach(function (ri) {
      if (!rootScore[ri] || pos[ri] >= PAGE) return;
      ropen.add(ri);
      for (var i = first[ri]; i >= 0 && i <= last[ri] && budget > 0; i++) {
        if (C[i].hot) { openPath(i); budget--; }
      }
    });
  })();

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function badge(cls, text) { return el("span", "b b-" + cls, text); }
  function fmt(s) { return s == null ? "?" : String(s).replace("T", " ").replace("Z", ""); }
  function short(f) { return f.length > 14 ? f.slice(0, 12) + "…" : f; }

  function renderList(ul, list, key) {
    var n = shown.get(key) || KIDS;
    list.slice(0, n).forEach(function (i) { ul.appendChild(renderNode(i)); });
    if (list.length > n) {
      var b = el("button", "more", "show " + Math.min(KIDS, list.length - n) + " more (" + n + " of " + list.length + " shown)");
      b.onclick = function () { shown.set(key, n + KIDS); ul.textContent = ""; renderList(ul, list, key); };
      ul.appendChild(b);
    }
  }
  function renderNode(i) {
    var c = C[i], li = el("li", "node");
    li.id = "c" + i;
    c.m.forEach(function (m) { li.classList.add("m-" + m[0]); });
    if (hits.has(i)) li.classList.add("hit");
    var line = el("div", "line");
    var tg = el("button", "tg", c.kids.length ? (open.has(i) ? "▾" : "▸") : "·");
    if (c.kids.length) {
      tg.title = c.kids.length + " issued";
      tg.onclick = function () {
        if (open.has(i)) open.delete(i); else open.add(i);
        li.replaceWith(renderNode(i));
      };
    }
    line.appendChild(tg);
    line.appendChild(el("span", "key", c.k == null ? "(no key ID)" : c.k));
    c.m.forEach(function (m) { line.appendChild(badge(m[0], m[1])); });
    line.appendChild(el("span", "fp", c.f));
    line.appendChild(el("span", "muted", "depth " + (c.d == null ? "?" : c.d) + (c.kids.length ? ", issued " + c.kids.length : "")));
    li.appendChild(line);
    var meta = el("div", "meta");
    if (c.a != null) meta.appendChild(el("span", null, c.a));
    if (c.by != null) meta.appendChild(el("span", null, c.by + " " + fmt(c.it) + " → " + (c.x == null ? "?" : fmt(c.x))));
    meta.appendChild(el("span", null, c.n ? c.n + " call(s) " + fmt(c.fs) + " .. " + fmt(c.ls) : "no call seen"));
    if (c.ip.length) meta.appendChild(el("span", null, "from " + c.ip.join(", ") + (c.ipn > c.ip.length ? " (+" + (c.ipn - c.ip.length) + " more)" : "")));
    li.appendChild(meta);
    if (open.has(i) && c.kids.length) {
      var ul = el("ul", "kids");
      renderList(ul, c.kids, "c" + i);
      li.appendChild(ul);
    }
    return li;
  }
  function renderRoot(ri) {
    var r = R[ri], sec = el("section", "root");
    sec.id = "r" + ri;
    var head = el("div", "rhead");
    head.appendChild(el("span", "tg", ropen.has(ri) ? "▾" : "▸"));
    var name = el("span", "rname", r.n);
    if (rhits.has(ri)) name.classList.add("hit");
    head.appendChild(name);
    head.appendChild(el("span", "muted", r.t == null ? "" : "[" + r.t + "]"));
    if (r.t === "unresolved") head.appendChild(badge("unresolved", "unresolved root"));
    var rc = rootCount[ri];
    [["offhost", "off-host"], ["ancestor", "off-host descendant"], ["collision", "collision"], ["deep", "deep chain"], ["live", "live"]].forEach(function (m) {
      if (rc[m[0]]) head.appendChild(badge(m[0], rc[m[0]] + " " + m[1]));
    });
    var n = first[ri] < 0 ? 0 : last[ri] - first[ri] + 1;
    head.appendChild(el("span", "muted", n + " credential(s), " + r.e + " event(s), " + fmt(r.fs) + " .. " + fmt(r.ls)));
    head.onclick = function () {
      if (ropen.has(ri)) ropen.delete(ri); else ropen.add(ri);
      sec.replaceWith(renderRoot(ri));
    };
    sec.appendChild(head);
    if (ropen.has(ri)) {
      if (n > 1 || rc.offhost) sec.appendChild(timeline(ri));
      var ul = el("ul", "kids top");
      renderList(ul, tops[ri], "r" + ri);
      sec.appendChild(ul);
    }
    return sec;
  }

  var SVG = "http://www.w3.org/2000/svg";
  function sv(tag, attrs, parent) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function tip(e, text) { sv("title", {}, e).textContent = text; return e; }
  // A lane per credential of the root: its calls (bar), its issuance
  // (diamond), its lifetime to expiration (dashed), its off-host uses (red dots).
  function timeline(ri) {
    var lanes = [];
    for (var i = first[ri]; i <= last[ri] && lanes.length < LANES; i++) lanes.push(C[i]);
    var t = function (s) { var v = s == null ? NaN : Date.parse(s); return isNaN(v) ? null : v; };
    var end = t(D.live_at), lo = Infinity, hi = -Infinity;
    function see(v) { if (v != null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
    lanes.forEach(function (c) {
      see(t(c.fs)); see(t(c.ls)); see(t(c.it));
      (offByFp.get(c.f) || []).forEach(function (o) { see(t(o.first_seen)); see(t(o.last_seen)); });
    });
    lanes.forEach(function (c) { var x = t(c.x); if (x != null && x > lo && end != null && x <= end) see(x); });
    if (lo === Infinity) return el("div");
    if (hi - lo < 60000) hi = lo + 60000;
    var W = 800, L = 190, H = 14, top = 14, h = top + lanes.length * H + 4;
    var X = function (v) { return L + (W - L - 8) * (v - lo) / (hi - lo); };
    var s = sv("svg", { "class": "tl", viewBox: "0 0 " + W + " " + h, height: h });
    sv("text", { x: L, y: 10 }, s).textContent = fmt(new Date(lo).toISOString().slice(0, 19) + "Z");
    sv("text", { x: W - 8, y: 10, "text-anchor": "end" }, s).textContent = fmt(new Date(hi).toISOString().slice(0, 19) + "Z");
    lanes.forEach(function (c, k) {
      var y = top + k * H, mid = y + H / 2, hot = c.o ? "#ef9a9a" : c.an ? "#ffb74d" : collKeys.has(c.k) ? "#ab47bc" : "#5b8def";
      var lab = sv("text", { x: 4 + Math.min(c.d || 0, 8) * 6, y: mid + 3 }, s);
      lab.textContent = (c.k || short(c.f)).slice(0, 22);
      var a = t(c.fs), b = t(c.ls);
      if (a != null && c.n) {
        var x1 = X(a), x2 = Math.max(X(b == null ? a : b), x1 + 2);
        tip(sv("rect", { x: x1, y: y + 3, width: x2 - x1, height: H - 6, fill: hot, rx: 2 }, s), (c.k || c.f) + ": " + c.n + " call(s) " + fmt(c.fs) + " .. " + fmt(c.ls));
      }
      var it = t(c.it), x = t(c.x);
      if (x != null && it != null && x > it) {
        var from = X(b != null && c.n ? b : it), to = X(Math.min(x, hi));
        if (to > from) tip(sv("line", { x1: from, x2: to, y1: mid, y2: mid, stroke: hot, "stroke-dasharray": "3 2" }, s), "expires " + fmt(c.x));
      }
      if (it != null) {
        var d = X(it);
        tip(sv("polygon", { points: [d, y + 2, d + 4, mid, d, y + H - 2, d - 4, mid].join(" "), fill: "#1d2330" }, s), (c.by || "issued") + " " + fmt(c.it));
      }
      (offByFp.get(c.f) || []).forEach(function (o) {
        [o.first_seen, o.last_seen].forEach(function (v) {
          var tv = t(v);
          if (tv != null) tip(sv("circle", { cx: X(tv), cy: mid, r: 4.5, fill: "#b71c1c", stroke: "#1d2330" }, s), "off-host from " + o.source_ip + " (" + o.offhost_reason + ") " + fmt(v));
        });
      });
    });
    var wrap = el("div");
    wrap.appendChild(s);
    if (last[ri] - first[ri] + 1 > lanes.length) wrap.appendChild(el("div", "muted", "timeline: first " + lanes.length + " of " + (last[ri] - first[ri] + 1) + " credentials"));
    return wrap;
  }

  var forest = el("div"), pager = el("div", "pager");
  function renderForest() {
    forest.textContent = "";
    order.slice(page * PAGE, (page + 1) * PAGE).forEach(function (ri) { forest.appendChild(renderRoot(ri)); });
    if (!R.length) forest.appendChild(el("p", "empty", "No credential lineage in this trail."));
    pager.textContent = "";
    if (R.length > PAGE) {
      var pages = Math.ceil(R.length / PAGE);
      var prev = el("button", null, "‹ previous"), next = el("button", null, "next ›");
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
      prev.onclick = function () { page--; renderForest(); };
      next.onclick = function () { page++; renderForest(); };
      pager.appendChild(prev);
      pager.appendChild(el("span", "muted", "roots " + (page * PAGE + 1) + "–" + Math.min(R.length, (page + 1) * PAGE) + " of " + R.length + " (findings first)"));
      pager.appendChild(next);
    }
  }
  function reveal(i, quiet) {
    openPath(i);
    page = Math.floor(pos[C[i].r] / PAGE);
    renderForest();
    var e = document.getElementById("c" + i);
    if (e && !quiet) {
      e.scrollIntoView({ block: "center" });
      e.classList.remove("flash");
      void e.offsetWidth;
      e.classList.add("flash");
    }
  }
  function link(fp, text) {
    var i = byFp.get(fp);
    if (i == null) return el("span", null, text);
    var a = el("a", null, text);
    a.href = "#c" + i;
    a.title = fp;
    a.onclick = function (ev) { ev.preventDefault(); reveal(i); };
    return a;
  }

  function table(title, cols, rows, empty) {
    var box = el("div", "panel"), h = el("h2", null, title + " ");
    h.appendChild(el("small", null, "(" + rows.length + ")"));
    box.appendChild(h);
    if (!rows.length) { box.appendChild(el("p", "empty", empty)); return box; }
    var tb = el("table"), thead = el("thead"), tr = el("tr"), body = el("tbody"), n = ROWS, sortBy = -1, dir = 1;
    var more = el("button", "more");
    cols.forEach(function (c, k) {
      var th = el("th", null, c.h);
      th.onclick = function () {
        dir = sortBy === k ? -dir : 1;
        sortBy = k;
        rows.sort(function (a, b) {
          var x = c.v(a), y = c.v(b);
          return (x < y ? -1 : x > y ? 1 : 0) * dir;
        });
        Array.prototype.forEach.call(tr.children, function (o) { o.className = ""; });
        th.className = dir > 0 ? "asc" : "desc";
        fill();
      };
      tr.appendChild(th);
    });
    function fill() {
      body.textContent = "";
      rows.slice(0, n).forEach(function (row) {
        var r = el("tr");
        cols.forEach(function (c) {
          var td = el("td");
          if (c.cell) c.cell(row, td); else td.textContent = String(c.v(row));
          r.appendChild(td);
        });
        body.appendChild(r);
      });
      more.hidden = rows.length <= n;
      more.textContent = rows.length > n ? "show " + Math.min(ROWS, rows.length - n) + " more (" + n + " of " + rows.length + " shown)" : "";
    }
    more.onclick = function () { n += ROWS; fill(); };
    thead.appendChild(tr);
    tb.appendChild(thead);
    tb.appendChild(body);
    var scroll = el("div", "scroll");
    scroll.appendChild(tb);
    scroll.appendChild(more);
    box.appendChild(scroll);
    fill();
    return box;
  }
  var str = function (k) { return function (r) { return r[k] == null ? "" : r[k]; }; };
  var fpCell = function (k) { return function (r, td) { td.appendChild(link(r[k], short(r[k]))); }; };

  function search(q) {
    hits.clear(); rhits.clear(); hitList = []; hitAt = -1;
    q = q.trim().toLowerCase();
    var status = document.getElementById("hits");
    status.textContent = "";
    if (q.length < 2) { renderForest(); return; }
    var has = function (s) { return s != null && String(s).toLowerCase().indexOf(q) >= 0; };
    C.forEach(function (c, i) {
      if (has(c.k) || has(c.f) || has(c.a) || has(c.by) || c.ip.some(has)) { hits.add(i); hitList.push(i); }
    });
    R.forEach(function (r, ri) { if (has(r.n)) { rhits.add(ri); ropen.add(ri); } });
    hitList.sort(function (a, b) { return pos[C[a].r] - pos[C[b].r] || a - b; });
    hitList.slice(0, HITS).forEach(function (i) { openPath(i); });
    var total = hitList.length + rhits.size;
    status.appendChild(el("span", null, total ? hitList.length + " credential(s)" + (rhits.size ? ", " + rhits.size + " root(s)" : "") + " match" + (hitList.length > HITS ? "; paths opened for the first " + HITS : "") : "no match"));
    if (hitList.length) {
      var prev = el("button", null, "‹"), next = el("button", null, "›");
      prev.onclick = function () { step(-1); };
      next.onclick = function () { step(1); };
      status.appendChild(prev);
      status.appendChild(next);
      hitAt = 0;
      reveal(hitList[0], true);
    } else {
      var ri = rhits.values().next().value;
      if (ri != null) page = Math.floor(pos[ri] / PAGE);
      renderForest();
    }
  }
  function step(d) {
    hitAt = (hitAt + d + hitList.length) % hitList.length;
    reveal(hitList[hitAt]);
  }

  // The page.
  var header = document.querySelector("header");
  var box = el("input");
  box.id = "search";
  box.type = "search";
  box.placeholder = "Search key ID, ARN, fingerprint, IP…";
  header.appendChild(box);
  header.appendChild(el("span", null, "")).id = "hits";
  var legend = el("div", "legend");
  [["offhost", "off-host EC2 use"], ["ancestor", "off-host descendant"], ["collision", "key-ID collision"], ["deep", "chain depth ≥ 3"], ["unresolved", "unresolved root"], ["live", "live at end"]].forEach(function (m) { legend.appendChild(badge(m[0], m[1])); });
  header.appendChild(legend);
  var main = el("main"), left = el("div"), right = el("div");
  var lp = el("div", "panel");
  var lh = el("h2", null, "Lineage ");
  lh.appendChild(el("small", null, "(" + R.length + " root(s), " + C.length + " credential(s); roots with findings first and opened)"));
  lp.appendChild(lh);
  lp.appendChild(pager);
  lp.appendChild(forest);
  left.appendChild(lp);
  var offRows = D.offhost.map(function (o) { return o; });
  right.appendChild(table("Off-host EC2 credential use", [
    { h: "Instance", v: str("ec2_instance_id") },
    { h: "Source IP", v: str("source_ip") },
    { h: "Reason", v: str("offhost_reason") },
    { h: "Events", v: str("events") },
    { h: "First", v: str("first_seen"), cell: function (r, td) { td.textContent = fmt(r.first_seen); } },
    { h: "Calls", v: function (r) { return r.event_names.join(", "); } },
    { h: "Credential", v: function (r) { return r.session_fingerprints.join(" "); }, cell: function (r, td) {
      r.session_fingerprints.forEach(function (f) { td.appendChild(link(f, short(f))); td.appendChild(document.createTextNode(" ")); });
    } }
  ], offRows, "No instance credentials used off their instance."));
  // Where a chain ends: the deepest credential of a role chain three or more
  // hops long, and the last descendant of an off-host use.
  var chainRows = [];
  C.forEach(function (c, i) {
    var deep = c.d >= 3 && !c.kids.some(function (k) { return C[k].d >= 3; });
    var anc = c.an && !c.kids.some(function (k) { return C[k].an; });
    if (deep || anc) {
      var path = [];
      for (var q = i; q >= 0; q = C[q].p) path.unshift(q);
      chainRows.push({ i: i, d: c.d == null ? 0 : c.d, path: path, anc: c.an, root: R[c.r].n });
    }
  });
  var chainCell = function (r, td) {
    r.path.forEach(function (q, k) {
      if (k) td.appendChild(el("span", "muted", " → "));
      td.appendChild(link(C[q].f, C[q].k == null ? short(C[q].f) : C[q].k));
    });
  };
  right.appendChild(table("Role chains (depth ≥ 3) and off-host descendants", [
    { h: "Depth", v: str("d") },
    { h: "Chain, from its root's first credential", v: function (r) { return r.path.length; }, cell: chainCell },
    { h: "Kind", v: function (r) { return r.anc ? "off-host descendant" : "deep chain"; }, cell: function (r, td) { td.appendChild(r.anc ? badge("ancestor", "off-host descendant") : badge("deep", "deep chain")); } },
    { h: "Root", v: str("root") }
  ], chainRows, "No role chain of three or more hops, and nothing issued by an off-host use."));
  var collRows = [];
  D.collisions.forEach(function (c) {
    c.credentials.forEach(function (s) { collRows.push({ key: c.access_key_id, max: c.max_collision_count, fp: s.session_fingerprint, arn: s.principal_arn, root: s.lineage_root, fs: s.first_seen, ls: s.last_seen }); });
  });
  right.appendChild(table("Key-ID collisions", [
    { h: "Key ID", v: str("key") },
    { h: "Credential", v: str("fp"), cell: fpCell("fp") },
    { h: "Principal", v: str("arn") },
    { h: "Root", v: str("root") },
    { h: "First", v: str("fs"), cell: function (r, td) { td.textContent = fmt(r.fs); } },
    { h: "At once", v: str("max") }
  ], collRows, "No access key ID shared by live credential sets."));
  right.appendChild(table("Live at " + fmt(D.live_at), [
    { h: "Key ID", v: str("access_key_id") },
    { h: "Credential", v: str("session_fingerprint"), cell: fpCell("session_fingerprint") },
    { h: "Expires", v: str("expires"), cell: function (r, td) { td.textContent = fmt(r.expires) + (r.expiration_observed ? "" : " (assumed)"); } },
    { h: "Root", v: str("lineage_root") },
    { h: "Depth", v: str("lineage_depth") },
    { h: "Principal", v: str("principal_arn") }
  ], D.live.slice(), "No temporary credential live at the end of the trail."));
  main.appendChild(left);
  main.appendChild(right);
  document.body.appendChild(main);

  var timer;
  box.oninput = function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      search(box.value);
      try { history.replaceState(null, "", box.value ? "#q=" + encodeURIComponent(box.value) : "#"); } catch (e) { /* file: URLs may refuse */ }
    }, 150);
  };
  var m = /^#q=(.*)$/.exec(location.hash);
  if (m) {
    box.value = decodeURIComponent(m[1]);
    search(box.value);
  } else {
    renderForest();
  }
  document.body.setAttribute("data-ready", "1");
})();
