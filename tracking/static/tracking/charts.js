// Metric histories as Plotly line charts: one chart per metric key (the elements with
// data-metric-key), one line per run, from one request to the page's metric-history view.
// The x axis switches between step, wall-clock time and seconds since the run started;
// zooming is Plotly's own (drag, double-click to reset). Each chart gets data-rendered="true"
// once drawn, which the browser tests wait for.
(function () {
  "use strict";

  const container = document.querySelector(".charts[data-history-url]");
  const specNode = document.getElementById("chart-data");
  if (!container || !specNode || typeof Plotly === "undefined") return;
  const spec = JSON.parse(specNode.textContent);
  const plots = Array.from(container.querySelectorAll("[data-metric-key]"));
  const AXES = {
    step: { title: { text: "step" }, type: "linear" },
    time: { title: { text: "wall time (UTC)" }, type: "date" },
    relative: { title: { text: "seconds since the run started" }, type: "linear" },
  };
  let series = [];

  function mode() {
    const checked = document.querySelector("input[name=xaxis]:checked");
    return checked ? checked.value : "step";
  }

  function xValues(s, axis) {
    if (axis === "step") return s.step;
    if (axis === "time") return s.timestamp; // a date axis reads epoch milliseconds
    const start = s.start_time === null ? s.timestamp[0] : s.start_time;
    return s.timestamp.map((t) => (t - start) / 1000);
  }

  function trace(s, axis) {
    return {
      type: "scatter",
      mode: s.step.length > 60 ? "lines" : "lines+markers",
      name: s.run_name,
      x: xValues(s, axis),
      y: s.value,
      hovertemplate: "%{y}<extra>" + s.run_name.replace(/</g, "&lt;") + "</extra>",
    };
  }

  // Steps are whole numbers: with few of them, one tick per step instead of 0.5, 1.5, ...
  function stepTicks(traces, axis) {
    if (axis !== "step") return {};
    const last = Math.max(0, ...traces.map((t) => t.x[t.x.length - 1] || 0));
    return last <= 10 ? { dtick: 1, tick0: 0 } : {};
  }

  function draw(plot) {
    const key = plot.dataset.metricKey;
    const axis = mode();
    const traces = series.filter((s) => s.key === key).map((s) => trace(s, axis));
    const layout = {
      height: 320,
      margin: { l: 60, r: 20, t: 16, b: 50 },
      xaxis: Object.assign({ automargin: true, zeroline: false }, AXES[axis], stepTicks(traces, axis)),
      yaxis: { title: { text: key }, automargin: true },
      showlegend: spec.runs.length > 1,
      legend: { orientation: "h", y: -0.3 },
      font: { family: "system-ui, 'DejaVu Sans', sans-serif", size: 12 },
    };
    if (spec.runs.length > 1) layout.height = 360;
    return Plotly.react(plot, traces, layout, { responsive: true, displaylogo: false })
      .then(() => { plot.dataset.rendered = "true"; });
  }

  function fail(message) {
    plots.forEach((plot) => {
      plot.textContent = message;
      plot.classList.add("plot-message");
      plot.dataset.rendered = "error";
    });
  }

  const query = new URLSearchParams([["runs", spec.runs.join(",")]]);
  spec.keys.forEach((key) => query.append("key", key));
  fetch(container.dataset.historyUrl + "?" + query.toString(), { credentials: "same-origin" })
    .then((response) => {
      if (!response.ok) throw new Error("The metric histories could not be loaded (" + response.status + ").");
      return response.json();
    })
    .then((body) => {
      series = body.series;
      return Promise.all(plots.map(draw));
    })
    .catch((error) => fail(error.message));

  document.querySelectorAll("input[name=xaxis]").forEach((radio) => {
    radio.addEventListener("change", () => plots.forEach(draw));
  });
})();
