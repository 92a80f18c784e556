/* Director cockpit: sparklines, drill-down by department, department trend, forecast chart.
 * Data comes from the page's JSON islands (#ops-data, #ops-i18n) and the /api/v1/ops API
 * (same-origin cookie session). No inline script: the page's CSP is script-src 'self'. */
(function () {
  "use strict";
  var dataEl = document.getElementById("ops-data");
  if (!dataEl || typeof echarts === "undefined") { return; }
  var data = JSON.parse(dataEl.textContent);
  var msg = JSON.parse(document.getElementById("ops-i18n").textContent);
  var charts = [];
  var current = null;

  function fmt(template, params) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return params[k] != null ? params[k] : ""; });
  }
  function chart(el) {
    var c = echarts.init(el, null, { renderer: "canvas" });
    charts.push(c);
    return c;
  }
  function api(path, params) {
    var q = new URLSearchParams(params);
    q.set("lang", msg.lang);
    return fetch("/api/v1/ops" + path + "?" + q.toString(), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.json();
    });
  }
  var tooltip = { trigger: "axis", renderMode: "richText" };

  // Sparklines on every tile.
  data.indicators.forEach(function (ind) {
    var el = document.querySelector('[data-spark="' + ind.key + '"]');
    if (!el || ind.key === "forecast_accuracy") { return; }
    var points = ind.trend || [];
    chart(el).setOption({
      animation: false,
      grid: { left: 2, right: 2, top: 4, bottom: 2 },
      xAxis: { type: "category", show: false, data: points.map(function (p) { return p.period; }) },
      yAxis: { type: "value", show: false, scale: true },
      tooltip: tooltip,
      series: [{ type: "line", symbol: "none", smooth: true, areaStyle: { opacity: 0.15 },
        data: points.map(function (p) { return p.value; }) }]
    });
  });

  // Forecast vs actual with the 80 % interval, and the next 14 days (fetched after the page
  // renders: fitting the model is the one slow part of the cockpit).
  var fcEl = document.getElementById("ops-forecast-chart");
  function drawForecast(f) {
    if (!f) { fcEl.textContent = msg["ops.forecast.none"]; return; }
    var days = f.days.concat(f.ahead_days);
    var pad = function (arr, before, after) {
      return new Array(before).fill(null).concat(arr).concat(new Array(after).fill(null));
    };
    var nPast = f.days.length, nAhead = f.ahead_days.length;
    var lo = f.lo80.concat(f.ahead_lo80);
    var width = f.hi80.map(function (h, i) { return h - f.lo80[i]; })
      .concat(f.ahead_hi80.map(function (h, i) { return h - f.ahead_lo80[i]; }));
    chart(fcEl).setOption({
      animation: false,
      tooltip: tooltip,
      legend: { data: [msg["ops.forecast.actual"], msg["ops.forecast.predicted"], msg["ops.forecast.ahead"], msg["ops.forecast.interval"]] },
      grid: { left: 60, right: 20, top: 40, bottom: 30 },
      xAxis: { type: "category", data: days },
      yAxis: { type: "value", scale: true },
      series: [
        { name: "lo", type: "line", stack: "band", symbol: "none", lineStyle: { opacity: 0 }, data: lo, tooltip: { show: false } },
        { name: msg["ops.forecast.interval"], type: "line", stack: "band", symbol: "none", lineStyle: { opacity: 0 }, areaStyle: { opacity: 0.2 }, data: width },
        { name: msg["ops.forecast.actual"], type: "line", data: pad(f.actual, 0, nAhead) },
        { name: msg["ops.forecast.predicted"], type: "line", lineStyle: { type: "dashed" }, data: pad(f.forecast, 0, nAhead) },
        { name: msg["ops.forecast.ahead"], type: "line", lineStyle: { type: "dotted" }, data: pad(f.ahead, nPast, 0) }
      ]
    });
  }
  function fillForecastTile(res) {
    var tile = document.querySelector('.ops-tile[data-indicator="forecast_accuracy"]');
    if (!tile) { return; }
    tile.querySelector(".ops-tile-value strong").textContent = res.value == null ? "—" : res.value.toLocaleString();
    tile.classList.remove("status-none", "status-ok", "status-warning");
    tile.classList.add("status-" + res.status);
    tile.setAttribute("data-loaded", "true");
    var el = tile.querySelector(".ops-spark");
    if (el && res.forecast) {
      chart(el).setOption({
        animation: false,
        grid: { left: 2, right: 2, top: 4, bottom: 2 },
        xAxis: { type: "category", show: false, data: res.forecast.days },
        yAxis: { type: "value", show: false, scale: true },
        tooltip: tooltip,
        series: [
          { type: "line", symbol: "none", data: res.forecast.actual },
          { type: "line", symbol: "none", lineStyle: { type: "dashed" }, data: res.forecast.forecast }
        ]
      });
    }
  }
  if (fcEl) {
    fcEl.textContent = msg["ops.loading"];
    var fcParams = { end: msg.end };
    if (msg.department) { fcParams.department = msg.department; }
    api("/forecast/compare", fcParams)
      .then(function (res) { fcEl.textContent = ""; fillForecastTile(res); drawForecast(res.forecast); })
      .catch(function () { fcEl.textContent = msg["ops.load_error"]; });
  }

  var drill = document.getElementById("ops-drill");
  var drillChart = null, deptChart = null;

  function showDeptTrend(key, name, code, deptName) {
    var title = document.getElementById("ops-dept-title");
    var el = document.getElementById("ops-dept-chart");
    title.textContent = msg["ops.loading"];
    api("/indicators/" + encodeURIComponent(key) + "/trend",
        { department: code, end: msg.end, days: msg.days, granularity: "week" })
      .then(function (res) {
        title.textContent = fmt(msg["ops.dept_trend"], { dept: deptName, name: name });
        el.hidden = false;
        if (!deptChart) { deptChart = chart(el); }
        deptChart.resize();
        var series = [{ name: name, type: "line", data: res.points.map(function (p) { return p.value; }) }];
        if (res.points.length && res.points[0].forecast !== undefined) {
          series.push({ name: msg["ops.forecast.predicted"], type: "line", lineStyle: { type: "dashed" },
            data: res.points.map(function (p) { return p.forecast; }) });
        }
        deptChart.setOption({
          animation: false, tooltip: tooltip,
          grid: { left: 60, right: 20, top: 20, bottom: 30 },
          xAxis: { type: "category", data: res.points.map(function (p) { return p.period; }) },
          yAxis: { type: "value", scale: true },
          series: series
        }, true);
      })
      .catch(function () { title.textContent = msg["ops.load_error"]; });
  }

  function openDrill(key) {
    current = key;
    drill.hidden = false;
    var title = document.getElementById("ops-drill-title");
    var tbody = document.querySelector("#ops-drill-table tbody");
    title.textContent = msg["ops.loading"];
    tbody.textContent = "";
    document.getElementById("ops-dept-title").textContent = "";
    document.getElementById("ops-dept-chart").hidden = true;
    document.querySelectorAll(".ops-tile").forEach(function (t) {
      t.classList.toggle("selected", t.getAttribute("data-indicator") === key);
    });
    api("/indicators/" + encodeURIComponent(key) + "/departments", { end: msg.end, days: msg.days })
      .then(function (res) {
        if (current !== key) { return; }
        title.textContent = fmt(msg["ops.drill.title"], { name: res.name }) + (res.unit ? " (" + res.unit + ")" : "");
        res.departments.forEach(function (d) {
          var tr = document.createElement("tr");
          tr.className = "ops-dept-row status-" + d.status;
          tr.setAttribute("data-dept", d.code);
          tr.tabIndex = 0;
          [d.name, d.value, d.previous, msg["ops.status." + d.status]].forEach(function (v) {
            var td = document.createElement("td");
            td.textContent = v == null ? "—" : (typeof v === "number" ? v.toLocaleString() : v);
            tr.appendChild(td);
          });
          var open = function () { showDeptTrend(key, res.name, d.code, d.name); };
          tr.addEventListener("click", open);
          tr.addEventListener("keydown", function (e) { if (e.key === "Enter") { open(); } });
          tbody.appendChild(tr);
        });
        var el = document.getElementById("ops-drill-chart");
        if (!drillChart) { drillChart = chart(el); }
        drillChart.resize();
        drillChart.setOption({
          animation: false, tooltip: tooltip,
          grid: { left: 60, right: 20, top: 20, bottom: 80 },
          xAxis: { type: "category", data: res.departments.map(function (d) { return d.name; }), axisLabel: { rotate: 40 } },
          yAxis: { type: "value", scale: false },
          series: [{ type: "bar", name: res.name, data: res.departments.map(function (d) { return d.value; }) }]
        }, true);
        drillChart.off("click");
        drillChart.on("click", function (p) {
          var d = res.departments[p.dataIndex];
          if (d) { showDeptTrend(key, res.name, d.code, d.name); }
        });
        drill.scrollIntoView({ behavior: "smooth", block: "start" });
      })
      .catch(function () { title.textContent = msg["ops.load_error"]; });
  }

  document.querySelectorAll(".ops-tile").forEach(function (tile) {
    var key = tile.getAttribute("data-indicator");
    tile.addEventListener("click", function () { openDrill(key); });
    tile.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openDrill(key); }
    });
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
