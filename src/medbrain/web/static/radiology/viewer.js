/* MedBrain CT viewer and radiologist review (issue 5). Hand-written, no build step, no CDN.
 *
 * Slices arrive as raw HU (int16 little-endian, [slice][row][col]) in chunks from
 * GET {api}/slices?start=&count=, nearest chunks to the current slice first, a few requests in
 * flight; the browser's HTTP cache (ETag + max-age) keeps them across visits. Window/level is a
 * 4096-entry lookup table applied here, so switching presets or scrolling never asks the
 * server. The thin-slab MIP is the maximum over the loaded neighbouring slices.
 *
 * Boxes are SVG <rect class="nodule-box"> over the canvas (viewBox in voxel units), so they
 * can be counted; the root element carries data-nodule-count (nodules not rejected),
 * data-slice (shown slice, 0-based) and data-visible-boxes.
 */
(function () {
  "use strict";

  var root = document.getElementById("ct-viewer");
  if (!root || root.dataset.ready !== "1") return;

  var API = root.dataset.api;
  var CSRF = root.dataset.csrf;
  var LANG = root.dataset.lang;
  var MAY_REVIEW = root.dataset.mayReview === "1";
  var T = JSON.parse(root.dataset.i18n || "{}");
  var CHUNK = 8;
  var PARALLEL = 3;
  var WINDOWS = { lung: [1500, -600], mediastinal: [350, 40] };
  var SVG_NS = "http://www.w3.org/2000/svg";

  var $ = function (id) { return document.getElementById(id); };
  var canvas = $("ct-canvas");
  var ctx2d = canvas.getContext("2d");
  var overlay = $("ct-overlay");
  var frame = $("ct-frame");
  var stage = $("ct-stage");
  var slider = $("ct-slice");

  var stats = { firstDrawMs: null, latencies: [], draws: 0, pendingKeyAt: null };
  window.ctViewerStats = stats;
  var t0 = performance.now();

  var S = {
    series: null, cols: 0, rows: 0, slices: 0, spacing: [1, 1, 1], huMin: -1024,
    slice: 0, window: "lung", mip: false, slabMm: 8, zoom: 1,
    data: [], chunkState: {}, inflight: 0,
    review: null, versions: [], selected: null, mode: null, measure: [], measureKey: null,
    lut: null, image: null, pixels: null,
  };

  function t(key) { return T[key] || key; }

  function showError(message) {
    var box = $("ct-error");
    box.textContent = message;
    box.hidden = !message;
  }

  /* -- window / level ---------------------------------------------------------------------- */

  function buildLut() {
    var wl = WINDOWS[S.window];
    var lo = wl[1] - wl[0] / 2;
    var lut = new Uint32Array(4096);
    for (var i = 0; i < 4096; i++) {
      var g = Math.round(((i + S.huMin) - lo) * 255 / wl[0]);
      g = g < 0 ? 0 : g > 255 ? 255 : g;
      lut[i] = 0xff000000 | (g << 16) | (g << 8) | g;
    }
    S.lut = lut;
  }

  /* -- loading ----------------------------------------------------------------------------- */

  function chunkOf(k) { return Math.floor(k / CHUNK); }

  function nextChunk() {
    var n = Math.ceil(S.slices / CHUNK);
    var c = chunkOf(S.slice);
    for (var d = 0; d < n; d++) {
      var cands = d === 0 ? [c] : [c + d, c - d];
      for (var i = 0; i < cands.length; i++) {
        var x = cands[i];
        if (x >= 0 && x < n && !S.chunkState[x]) return x;
      }
    }
    return -1;
  }

  function pump() {
    while (S.inflight < PARALLEL) {
      var c = nextChunk();
      if (c < 0) break;
      loadChunk(c);
    }
    var loaded = 0;
    for (var k = 0; k < S.slices; k++) if (S.data[k]) loaded++;
    $("ct-progress").textContent = loaded < S.slices ? loaded + "/" + S.slices : "";
  }

  function loadChunk(c) {
    S.chunkState[c] = "loading";
    S.inflight++;
    var start = c * CHUNK;
    var count = Math.min(CHUNK, S.slices - start);
    fetch(API + "/slices?start=" + start + "&count=" + count, { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.arrayBuffer();
      })
      .then(function (buf) {
        var per = S.cols * S.rows;
        for (var i = 0; i < count; i++) S.data[start + i] = new Int16Array(buf, i * per * 2, per);
        S.chunkState[c] = "done";
        var span = S.mip ? slabHalf() : 0;
        if (S.slice >= start - span && S.slice < start + count + span) draw();
      })
      .catch(function (err) {
        S.chunkState[c] = null;
        showError(t("error") + ": " + err.message);
      })
      .finally(function () { S.inflight--; pump(); });
  }

  /* -- drawing ----------------------------------------------------------------------------- */

  function slabHalf() {
    return Math.max(1, Math.round(S.slabMm / 2 / S.spacing[2]));
  }

  function sliceValues(k) {
    var base = S.data[k];
    if (!base) return null;
    if (!S.mip) return base;
    var h = slabHalf();
    var out = new Int16Array(base);
    for (var z = Math.max(0, k - h); z <= Math.min(S.slices - 1, k + h); z++) {
      var other = S.data[z];
      if (!other || z === k) continue;
      for (var i = 0; i < out.length; i++) if (other[i] > out[i]) out[i] = other[i];
    }
    return out;
  }

  function draw() {
    var k = S.slice;
    var values = sliceValues(k);
    root.dataset.slice = String(k);
    $("ct-slice-label").textContent = (k + 1) + " / " + S.slices;
    slider.value = String(k);
    drawBoxes();
    if (!values) {
      $("ct-loading").hidden = false;
      pump();
      return;
    }
    $("ct-loading").hidden = true;
    var px = S.pixels, lut = S.lut, min = S.huMin;
    for (var i = 0; i < values.length; i++) {
      var v = values[i] - min;
      px[i] = lut[v < 0 ? 0 : v > 4095 ? 4095 : v];
    }
    ctx2d.putImageData(S.image, 0, 0);
    stats.draws++;
    root.dataset.drawnSlice = String(k);
    if (stats.firstDrawMs === null) stats.firstDrawMs = performance.now() - t0;
    if (stats.pendingKeyAt !== null) {
      var at = stats.pendingKeyAt;
      stats.pendingKeyAt = null;
      requestAnimationFrame(function () { stats.latencies.push(performance.now() - at); });
    }
  }

  function visibleNodules() {
    if (!S.review) return [];
    return S.review.nodules.filter(function (n) { return n.decision !== "rejected"; });
  }

  function drawBoxes() {
    while (overlay.firstChild) overlay.removeChild(overlay.firstChild);
    var k = S.slice, shown = 0;
    visibleNodules().forEach(function (n) {
      var b = n.bbox_voxel;
      if (k < b[0][2] || k > b[1][2]) return;
      var pad = 1.5;
      var r = document.createElementNS(SVG_NS, "rect");
      r.setAttribute("x", b[0][0] - pad);
      r.setAttribute("y", b[0][1] - pad);
      r.setAttribute("width", b[1][0] - b[0][0] + 1 + 2 * pad);
      r.setAttribute("height", b[1][1] - b[0][1] + 1 + 2 * pad);
      r.setAttribute("class", "nodule-box" + (n.key === S.selected ? " selected" : "") +
        (n.source === "radiologist" ? " added" : ""));
      r.setAttribute("data-key", n.key);
      r.setAttribute("vector-effect", "non-scaling-stroke");
      overlay.appendChild(r);
      var label = document.createElementNS(SVG_NS, "text");
      label.setAttribute("x", b[0][0] - pad);
      label.setAttribute("y", b[0][1] - pad - 1);
      label.setAttribute("class", "nodule-label");
      label.setAttribute("font-size", String(Math.max(2, S.cols / 40)));
      label.textContent = n.key;
      overlay.appendChild(label);
      shown++;
    });
    S.measure.forEach(function (m) {
      var l = document.createElementNS(SVG_NS, "line");
      l.setAttribute("x1", m[0]); l.setAttribute("y1", m[1]);
      l.setAttribute("x2", m[2]); l.setAttribute("y2", m[3]);
      l.setAttribute("class", "measure-line");
      l.setAttribute("vector-effect", "non-scaling-stroke");
      overlay.appendChild(l);
    });
    root.dataset.visibleBoxes = String(shown);
  }

  function layout() {
    var availW = Math.max(200, stage.clientWidth - 4), availH = Math.max(200, stage.clientHeight - 4);
    var wmm = S.cols * S.spacing[0], hmm = S.rows * S.spacing[1];
    var fit = Math.min(availW / wmm, availH / hmm);
    var w = Math.round(wmm * fit * S.zoom), h = Math.round(hmm * fit * S.zoom);
    frame.style.width = w + "px";
    frame.style.height = h + "px";
    $("ct-zoom-label").textContent = Math.round(S.zoom * 100) + "%";
  }

  function setSlice(k, fromKey) {
    k = Math.max(0, Math.min(S.slices - 1, k));
    if (k === S.slice && root.dataset.drawnSlice === String(k)) return;
    if (fromKey) stats.pendingKeyAt = fromKey;
    S.slice = k;
    draw();
    pump();
  }

  /* -- review state ------------------------------------------------------------------------ */

  function fmt(v, digits) {
    return v === null || v === undefined ? "-" : Number(v).toFixed(digits === undefined ? 1 : digits);
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (a) { e.setAttribute(a, attrs[a]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function renderTable() {
    var body = $("ct-nodules").tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    var locked = S.review.status === "signed";
    S.review.nodules.forEach(function (n) {
      var tr = el("tr", {
        "class": "nodule-row decision-" + n.decision + (n.key === S.selected ? " selected" : ""),
        "data-key": n.key, "data-slice": String(n.center_voxel[2]), "tabindex": "0",
      });
      tr.appendChild(el("td", {}, n.key + (n.source === "radiologist" ? " *" : "")));
      tr.appendChild(el("td", {}, n.lobe || t("side_" + n.side)));
      tr.appendChild(el("td", { "class": "size" }, fmt(n.long_axis_mm) + "×" + fmt(n.short_axis_mm)));
      var typeCell = el("td", {});
      if (MAY_REVIEW) {
        var sel = el("select", { "class": "nodule-type", "aria-label": "type" });
        ["solid", "part-solid", "ground-glass", "calcified"].forEach(function (ty) {
          var o = el("option", { value: ty }, t("type_" + ty));
          if (ty === n.type) o.selected = true;
          sel.appendChild(o);
        });
        sel.addEventListener("click", function (e) { e.stopPropagation(); });
        sel.addEventListener("change", function () { changeNodule(n.key, { type: sel.value }); });
        typeCell.appendChild(sel);
      } else {
        typeCell.textContent = t("type_" + n.type);
      }
      tr.appendChild(typeCell);
      tr.appendChild(el("td", {}, n.score === null || n.score === undefined ? "-" : fmt(n.score, 2)));
      tr.appendChild(el("td", { "class": "lungrads" }, n.lung_rads || "-"));
      var act = el("td", { "class": "decision" });
      act.appendChild(el("span", { "class": "badge decision-label" }, t("decision_" + n.decision)));
      if (MAY_REVIEW) {
        [["accept", { decision: "accepted" }], ["reject", { decision: "rejected" }]].forEach(function (pair) {
          var b = el("button", { type: "button", "class": "small " + pair[0] }, t(pair[0]));
          b.addEventListener("click", function (e) { e.stopPropagation(); changeNodule(n.key, pair[1]); });
          act.appendChild(b);
        });
        var mb = el("button", { type: "button", "class": "small measure" }, t("measure"));
        mb.addEventListener("click", function (e) { e.stopPropagation(); startMeasure(n); });
        act.appendChild(mb);
      }
      tr.appendChild(act);
      tr.addEventListener("click", function () { jumpTo(n); });
      tr.addEventListener("keydown", function (e) { if (e.key === "Enter") jumpTo(n); });
      body.appendChild(tr);
    });
    root.dataset.noduleCount = String(visibleNodules().length);
    root.dataset.locked = locked ? "1" : "0";
  }

  function renderReport() {
    var r = S.review;
    $("ct-version").textContent = t("version") + " " + r.version + " · " +
      (r.status === "signed" ? t("signed") : t("draft"));
    $("ct-version").className = "badge " + (r.status === "signed" ? "ok" : "subtle");
    root.dataset.status = r.status;
    root.dataset.version = String(r.version);
    $("ct-locked").hidden = r.status !== "signed";
    var f = $("ct-findings"), i = $("ct-impression");
    if (document.activeElement !== f) f.value = r.findings || "";
    if (document.activeElement !== i) i.value = r.impression || "";
    f.readOnly = i.readOnly = !MAY_REVIEW;
    var lr = r.lung_rads || {};
    $("ct-lungrads").textContent = lr.category ? "Lung-RADS " + lr.category : "";
    renderDownloads();
    renderVersions();
  }

  function renderDownloads() {
    var box = $("ct-downloads");
    while (box.firstChild) box.removeChild(box.firstChild);
    var v = S.review.saved ? "?version=" + S.review.version : "";
    var pdf = el("a", { href: API + "/report.pdf" + v, "class": "button", id: "ct-pdf", download: "" }, t("download_pdf"));
    box.appendChild(pdf);
    box.appendChild(el("a", { href: API + "/fhir" + v, "class": "button", target: "_blank" }, t("fhir")));
    var outputs = S.review.outputs || {};
    if (outputs.sr) box.appendChild(el("a", { href: API + "/sr" + v, "class": "button", download: "" }, t("download_sr")));
    if (outputs.seg) box.appendChild(el("a", { href: API + "/seg" + v, "class": "button", download: "" }, t("download_seg")));
    if (outputs.sr && S.review.status === "signed") {
      var pacs = el("button", { type: "button", id: "ct-send" }, t("send_pacs"));
      pacs.addEventListener("click", function () {
        send("POST", "/send" + v).then(function (r) {
          $("ct-hint").textContent = t("send_pacs") + ": " + (r.ok ? "OK" : (r.error || "failed")) +
            " (" + r.ae_title + "@" + r.host + ":" + r.port + ")";
        });
      });
      box.appendChild(pacs);
    }
  }

  function renderVersions() {
    var list = $("ct-versions");
    while (list.firstChild) list.removeChild(list.firstChild);
    S.versions.forEach(function (v) {
      var li = el("li", { "data-version": String(v.version), "data-status": v.status });
      li.appendChild(el("a", { href: API + "/report.pdf?version=" + v.version }, "v" + v.version));
      li.appendChild(document.createTextNode(" · " + (v.status === "signed" ? t("signed") : t("draft")) +
        " · " + (v.signed_by || v.created_by || "") + " · " + (v.signed_at || v.created_at || "").slice(0, 16).replace("T", " ") +
        " · Lung-RADS " + (v.lung_rads || "-")));
      list.appendChild(li);
    });
  }

  function renderPrior(prior) {
    var p = $("ct-prior");
    if (!prior) { p.textContent = t("prior_none"); return; }
    var fill = { date: (prior.date || "").slice(0, 10), days: prior.interval_days === null ? "-" : prior.interval_days,
      category: prior.lung_rads || "-", nodules: prior.nodules, grown: prior.grown, "new": prior["new"] };
    var text = t("prior_summary").replace(/\{(\w+)\}/g, function (m, k) { return k in fill ? String(fill[k]) : m; });
    var changes = (prior.changes || []).map(function (c) {
      return c.status + (c.diameter_change_mm !== null ? " (" + (c.diameter_change_mm > 0 ? "+" : "") + c.diameter_change_mm + " mm)" : "") +
        (c.volume_doubling_days ? " VDT " + c.volume_doubling_days + " d" : "");
    });
    p.textContent = text + (changes.length ? " — " + changes.join("; ") : "");
    p.dataset.studyUid = prior.study_uid;
  }

  function applyAnswer(data) {
    S.review = data.review;
    if (data.versions) S.versions = data.versions;
    renderTable();
    renderReport();
    renderRisk(S.review.risk);
    drawBoxes();
  }

  /* Guideline panel (server-rendered, issue 4): keep the Chinese category and the Brock
   * probabilities in step with the reviewed nodules after each action. */
  function renderRisk(risk) {
    var china = $("ct-risk-china-text");
    if (china && risk && risk.china) china.textContent = risk.china.screening.management;
    var table = $("ct-risk-brock-table");
    if (!table || !risk || !risk.brock || !risk.brock.computable) return;
    var body = table.tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    risk.brock.nodules.forEach(function (r) {
      var tr = el("tr", { "data-key": r.key || "" });
      tr.appendChild(el("td", {}, r.key || String(r.id)));
      tr.appendChild(el("td", {}, r.probability === null ? table.dataset.none
        : (100 * r.probability).toFixed(1) + "%"));
      body.appendChild(tr);
    });
  }

  /* -- actions ----------------------------------------------------------------------------- */

  function send(method, path, body) {
    showError("");
    return fetch(API + path + (path.indexOf("?") < 0 ? "?" : "&") + "lang=" + LANG, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) throw new Error(data.detail || ("HTTP " + r.status));
        return data;
      });
    }).catch(function (err) { showError(err.message); throw err; });
  }

  function changeNodule(key, change) {
    return send("POST", "/review/nodules/" + encodeURIComponent(key), change).then(applyAnswer);
  }

  function jumpTo(n) {
    S.selected = n.key;
    setSlice(n.center_voxel[2]);
    renderTable();
    drawBoxes();
  }

  function setMode(mode) {
    S.mode = mode;
    var add = $("ct-add");
    if (add) add.setAttribute("aria-pressed", mode === "add" ? "true" : "false");
    stage.classList.toggle("crosshair", mode !== null);
    $("ct-hint").textContent = mode === "add" ? t("add_hint") : mode === "measure" ? t("measure_hint") : "";
    root.dataset.mode = mode || "";
  }

  function startMeasure(n) {
    jumpTo(n);
    S.measure = [];
    S.measureKey = n.key;
    setMode("measure");
  }

  function voxelAt(e) {
    var rect = canvas.getBoundingClientRect();
    return [
      (e.clientX - rect.left) / rect.width * S.cols,
      (e.clientY - rect.top) / rect.height * S.rows,
    ];
  }

  function lineMm(m) {
    var dx = (m[2] - m[0]) * S.spacing[0], dy = (m[3] - m[1]) * S.spacing[1];
    return Math.sqrt(dx * dx + dy * dy);
  }

  var drag = null;
  stage.addEventListener("mousedown", function (e) {
    if (S.mode !== "measure") return;
    var p = voxelAt(e);
    drag = [p[0], p[1], p[0], p[1]];
    S.measure.push(drag);
    e.preventDefault();
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) return;
    var p = voxelAt(e);
    drag[2] = p[0]; drag[3] = p[1];
    drawBoxes();
  });
  window.addEventListener("mouseup", function () {
    if (!drag) return;
    drag = null;
    if (S.measure.length >= 2) {
      var a = lineMm(S.measure[0]), b = lineMm(S.measure[1]);
      var key = S.measureKey;
      var axes = S.measure.slice(0, 2).map(function (m) {
        return m.map(function (v) { return Math.round(v * 100) / 100; });
      });
      S.measure = [];
      setMode(null);
      // the drawn axes also give the nodule's box (in plane) on this slice
      changeNodule(key, {
        long_axis_mm: Math.round(Math.max(a, b) * 10) / 10,
        short_axis_mm: Math.round(Math.min(a, b) * 10) / 10,
        axes_voxel: axes,
        slice: S.slice,
      });
    }
    drawBoxes();
  });

  stage.addEventListener("click", function (e) {
    if (S.mode !== "add") return;
    var p = voxelAt(e);
    var centre = [Math.floor(p[0]), Math.floor(p[1]), S.slice];
    setMode(null);
    send("POST", "/review/nodules", { center_voxel: centre }).then(function (data) {
      applyAnswer(data);
      S.selected = data.added;
      renderTable();
      drawBoxes();
    });
  });

  if (MAY_REVIEW) {
    $("ct-add").addEventListener("click", function () { setMode(S.mode === "add" ? null : "add"); });
    $("ct-save").addEventListener("click", function () {
      send("PUT", "/review/report", {
        findings: $("ct-findings").value, impression: $("ct-impression").value,
      }).then(applyAnswer);
    });
    $("ct-redraft").addEventListener("click", function () {
      send("POST", "/review/redraft", { language: LANG }).then(applyAnswer);
    });
    $("ct-sign").addEventListener("click", function () {
      var r = S.review;
      var changed = r.status !== "signed" &&
        ($("ct-findings").value !== (r.findings || "") || $("ct-impression").value !== (r.impression || ""));
      var before = changed
        ? send("PUT", "/review/report", { findings: $("ct-findings").value, impression: $("ct-impression").value })
        : Promise.resolve(null);
      before.then(function () { return send("POST", "/review/sign"); }).then(function (data) {
        applyAnswer(data);
        $("ct-status").textContent = "signed";
        if (data.pacs) $("ct-hint").textContent = t("send_pacs") + " → " + data.pacs.ae_title + "@" + data.pacs.host;
      });
    });
  }

  /* -- navigation -------------------------------------------------------------------------- */

  slider.addEventListener("input", function () { setSlice(parseInt(slider.value, 10)); });
  stage.addEventListener("wheel", function (e) {
    e.preventDefault();
    if (e.ctrlKey) { zoomBy(e.deltaY < 0 ? 1.25 : 0.8); return; }
    setSlice(S.slice + (e.deltaY > 0 ? 1 : -1));
  }, { passive: false });
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "TEXTAREA" || tag === "INPUT" || tag === "SELECT") return;
    var step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1, PageDown: 5, PageUp: -5 }[e.key];
    if (step === undefined) {
      if (e.key === "Escape") { S.measure = []; setMode(null); drawBoxes(); }
      return;
    }
    e.preventDefault();
    setSlice(S.slice + step, e.timeStamp || performance.now());
  });

  Array.prototype.forEach.call(document.querySelectorAll(".ct-win"), function (b) {
    b.addEventListener("click", function () {
      S.window = b.dataset.window;
      Array.prototype.forEach.call(document.querySelectorAll(".ct-win"), function (o) {
        o.classList.toggle("active", o === b);
        o.setAttribute("aria-pressed", o === b ? "true" : "false");
      });
      root.dataset.window = S.window;
      buildLut();
      draw();
    });
  });
  $("ct-mip").addEventListener("change", function () {
    S.mip = $("ct-mip").checked;
    root.dataset.mip = S.mip ? "1" : "0";
    draw();
  });
  $("ct-slab").addEventListener("change", function () {
    S.slabMm = parseFloat($("ct-slab").value);
    draw();
  });

  function zoomBy(f) {
    S.zoom = Math.max(0.5, Math.min(8, S.zoom * f));
    layout();
  }
  $("ct-zoom-in").addEventListener("click", function () { zoomBy(1.25); });
  $("ct-zoom-out").addEventListener("click", function () { zoomBy(0.8); });
  window.addEventListener("resize", layout);

  /* -- start ------------------------------------------------------------------------------- */

  fetch(API + "/viewer?lang=" + LANG, { credentials: "same-origin" })
    .then(function (r) {
      return r.json().then(function (d) { if (!r.ok) throw new Error(d.detail || r.status); return d; });
    })
    .then(function (d) {
      var s = d.series;
      S.series = s.series_uid; S.cols = s.cols; S.rows = s.rows; S.slices = s.slices;
      S.spacing = s.spacing_mm; S.huMin = s.hu_min;
      canvas.width = S.cols; canvas.height = S.rows;
      overlay.setAttribute("viewBox", "0 0 " + S.cols + " " + S.rows);
      S.image = ctx2d.createImageData(S.cols, S.rows);
      S.pixels = new Uint32Array(S.image.data.buffer);
      slider.max = String(S.slices - 1);
      buildLut();
      S.review = d.review;
      S.versions = d.versions || [];
      var first = visibleNodules()[0];
      S.slice = first ? first.center_voxel[2] : Math.floor(S.slices / 2);
      renderTable();
      renderReport();
      renderPrior(d.prior);
      layout();
      draw();
      pump();
      root.dataset.loaded = "1";
    })
    .catch(function (err) { showError(t("error") + ": " + err.message); });
})();
