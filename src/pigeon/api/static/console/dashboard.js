// The dashboard: reads its data.json at once and every few seconds, then updates the figures
// and the charts (uPlot's setData) in place, without reloading. Colours come from CSS
// variables (dashboard.css, Pico's), so both themes read well; the charts are drawn again when
// the theme changes, and resized with the window.
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  if (!root || typeof uPlot === "undefined") return;
  var source = root.getAttribute("data-source");
  var every = Math.max(2, Number(root.getAttribute("data-refresh")) || 5) * 1000;
  var status = document.getElementById("dashboard-updated");
  var problem = document.getElementById("dashboard-problem");
  var count = new Intl.NumberFormat();
  var decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  var compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 2 });
  var clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var charts = {};
  var last = null;
  var queue = [[], []]; // the queue's depth at each reading since the page opened: times, due
  var KEEP = 720; // readings of the queue kept (an hour at 5 s)

  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function palette() {
    return {
      text: css("--pico-color", "#373c44"),
      muted: css("--pico-muted-color", "#646b79"),
      grid: css("--pico-muted-border-color", "#e7eaf0"),
      delivered: css("--pigeon-chart-delivered", "#2e7d32"),
      pending: css("--pigeon-chart-pending", "#a86400"),
      failed: css("--pigeon-chart-failed", "#c62828"),
      unknown: css("--pigeon-chart-unknown", "#6d4c9f"),
      received: css("--pigeon-chart-received", "#1565c0"),
      credits: css("--pigeon-chart-credits", "#00796b"),
      creditsFill: css("--pigeon-chart-credits-fill", "rgba(0, 121, 107, 0.35)"),
      rateFill: css("--pigeon-chart-rate-fill", "rgba(46, 125, 50, 0.15)"),
      queue: css("--pigeon-chart-queue", "#ad1457")
    };
  }

  // The queue's time axis keeps its ticks a label and a margin apart ("11:55pm" is about 55 px
  // wide: uPlot's own 50 px let them touch on a phone), with a step of two minutes between one
  // and five; the value axes are as wide as their widest label.
  var MINUTES = { space: 72, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800] };
  var VALUE_SIZE = 52; // at least: the time axis's first label is centred on the plot's left edge
  var pen = document.createElement("canvas").getContext("2d");

  function fit(self, values, index, cycle) {
    var axis = self.axes[index];
    if (cycle > 1) return axis._size; // uPlot asks again while the sizes change: settle
    var widest = 0;
    pen.font = axis.font[0];
    (values || []).forEach(function (v) { widest = Math.max(widest, pen.measureText(String(v)).width); });
    var ratio = window.devicePixelRatio || 1;
    return Math.max(VALUE_SIZE, Math.ceil(widest / ratio + (axis.ticks.show ? axis.ticks.size : 0) + axis.gap + 4));
  }

  function axes(p, values, time) {
    var line = { stroke: p.grid, width: 1 };
    return [
      Object.assign({ stroke: p.muted, grid: line, ticks: line }, time),
      { stroke: p.muted, grid: line, ticks: line, size: fit, values: values }
    ];
  }

  // whole numbers only; from ten thousand on, short (12K, 1.2M) so that the axis stays narrow
  function whole(_, ticks) {
    return ticks.map(function (v) {
      if (!Number.isInteger(v)) return "";
      return Math.abs(v) >= 1e4 ? compact.format(v) : count.format(v);
    });
  }
  function percent(_, ticks) { return ticks.map(function (v) { return v + " %"; }); }

  // the hours' charts keep half an hour either side, so that the first and last points show whole
  var HOURS = { time: true, range: function (_, min, max) { return [min - 1800, max + 1800]; } };

  function big(value) { return Math.abs(value) >= 1e6 ? compact.format(value) : decimal.format(value); }

  var SPECS = {
    messages: function (p) {
      return {
        scales: { x: HOURS, y: { range: function (_, min, max) { return [0, Math.max(4, max)]; } } },
        axes: axes(p, whole),
        series: [
          {},
          { label: "Delivered", stroke: p.delivered, width: 2 },
          { label: "In progress", stroke: p.pending, width: 2 },
          { label: "Failed", stroke: p.failed, width: 2 },
          { label: "Unknown", stroke: p.unknown, width: 2 },
          { label: "Received", stroke: p.received, width: 2, dash: [6, 4] }
        ]
      };
    },
    rate: function (p) {
      return {
        scales: { x: HOURS, y: { range: [0, 100] } },
        axes: axes(p, percent),
        series: [{}, { label: "Delivery rate (%)", stroke: p.delivered, fill: p.rateFill, width: 2 }]
      };
    },
    credits: function (p) {
      return {
        scales: { x: HOURS, y: { range: function (_, min, max) { return [0, Math.max(1, max)]; } } },
        axes: axes(p),
        series: [{}, {
          label: "Credits", stroke: p.credits, fill: p.creditsFill, width: 1,
          paths: uPlot.paths.bars({ size: [0.7, 48] }), points: { show: false }
        }]
      };
    },
    queue: function (p) {
      return {
        scales: { x: { time: true }, y: { range: function (_, min, max) { return [0, Math.max(4, max)]; } } },
        axes: axes(p, whole, MINUTES),
        series: [{}, { label: "Due now", stroke: p.queue, width: 2 }]
      };
    }
  };

  function dataOf(name, d) {
    var s = d.series;
    if (name === "messages") return [d.hours, s.delivered, s.pending, s.failed, s.unknown, s.received];
    if (name === "rate") return [d.hours, d.rate];
    if (name === "credits") return [d.hours, d.credits];
    return queue;
  }

  function size(el) {
    return { width: Math.max(200, el.clientWidth), height: el.classList.contains("small") ? 120 : 220 };
  }

  // (Re)create every chart, in the colours of the theme now in force.
  function draw() {
    Object.keys(charts).forEach(function (name) { charts[name].destroy(); });
    charts = {};
    if (!last) return;
    var p = palette();
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      var options = SPECS[name](p);
      var box = size(el);
      options.width = box.width;
      options.height = box.height;
      charts[name] = new uPlot(options, dataOf(name, last), el);
    });
    widen();
  }

  // the queue's chart spans at least the last five minutes (its first reading alone is no span)
  function widen() {
    if (charts.queue && queue[0].length) {
      var end = queue[0][queue[0].length - 1];
      charts.queue.setScale("x", { min: Math.min(queue[0][0], end - 300), max: end + 5 });
    }
  }

  function show(name, text) {
    root.querySelectorAll('[data-figure="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 90) return seconds + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return Math.floor(seconds / 3600) + " h " + Math.round((seconds % 3600) / 60) + " min";
  }

  function describe(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  function update(d) {
    last = d;
    queue[0].push(d.now);
    queue[1].push(d.queue.due);
    if (queue[0].length > KEEP) { queue[0].shift(); queue[1].shift(); }
    var t = d.totals;
    show("sent", count.format(t.sent));
    show("delivered", count.format(t.delivered));
    show("rate", t.rate === null ? "–" : decimal.format(t.rate) + " %");
    show("failed", count.format(t.failed));
    show("pending", count.format(t.pending));
    show("received", count.format(t.received));
    show("credits", big(t.credits));
    show("balance", big(t.balance));
    show("queue.due", count.format(d.queue.due) + (d.queue.capped ? "+" : ""));
    show("queue.oldest", duration(d.queue.oldest_seconds));
    show("queue.later", count.format(d.queue.later) + (d.queue.capped ? "+" : ""));
    describe("chart-messages-summary", "In the last 24 hours: " + count.format(t.delivered) + " delivered, " +
      count.format(t.pending) + " in progress, " + count.format(t.failed) + " failed, " + count.format(t.unknown) +
      " unknown, " + count.format(t.received) + " received.");
    describe("chart-rate-summary", t.rate === null ? "No message is final yet." : "Overall " + decimal.format(t.rate) + " % delivered.");
    describe("chart-credits-summary", decimal.format(t.credits) + " credits used in the last 24 hours.");
    if (!Object.keys(charts).length) {
      draw();
    } else {
      Object.keys(charts).forEach(function (name) { charts[name].setData(dataOf(name, d)); });
    }
    widen();
    status.textContent = "updated " + clock.format(new Date());
    problem.hidden = true;
    root.setAttribute("data-updated", String(d.now));
  }

  var timer = null;
  function later() { clearTimeout(timer); timer = setTimeout(poll, every); }

  function poll() {
    if (document.hidden) { later(); return; }
    fetch(source, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (response.redirected || type.indexOf("application/json") !== 0) throw new Error("signed out");
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(update)
      .catch(function (error) {
        problem.textContent = error.message === "signed out"
          ? "Your session ended: reload the page to sign in again."
          : "Not updated" + (last ? " since " + clock.format(new Date(last.now * 1000)) : "") + " (" + error.message + ").";
        problem.hidden = false;
      })
      .finally(later);
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  if (window.matchMedia) {
    var scheme = window.matchMedia("(prefers-color-scheme: dark)");
    if (scheme.addEventListener) scheme.addEventListener("change", draw);
  }
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      root.querySelectorAll("[data-chart]").forEach(function (el) {
        var chart = charts[el.getAttribute("data-chart")];
        if (chart) chart.setSize(size(el));
      });
    }, 150);
  });
  poll();
})();
