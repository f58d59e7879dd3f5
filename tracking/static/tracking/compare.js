// The compare page: "only differing rows", the parallel-coordinates plot (one axis per
// numeric param and metric, lines colored by a chosen metric) and the scatter plot of any two
// params or metrics. Data comes from the page (json_script "plot-data"); each plot re-renders
// when its <select> changes and then carries data-rendered="true" for the browser tests.
(function () {
  "use strict";

  const data = JSON.parse(document.getElementById("plot-data").textContent);
  const names = data.runs.map((run) => run.name);
  const CONFIG = { responsive: true, displaylogo: false };
  // Dark at both ends (blue to red): Viridis ends in a yellow that vanishes on white.
  const LINE_COLORS = [[0, "#1a5fd0"], [0.5, "#8a3ea8"], [1, "#c4281c"]];
  const FONT = { family: "system-ui, 'DejaVu Sans', sans-serif", size: 12 };

  // --- only differing rows ------------------------------------------------------------
  const onlyDiffering = document.getElementById("only-differing");
  function applyDiffering() {
    document.querySelectorAll("table.differing-rows tbody tr:not(.differs)").forEach((row) => {
      row.hidden = onlyDiffering.checked;
    });
  }
  onlyDiffering.addEventListener("change", applyDiffering);
  applyDiffering(); // the browser may restore the box ticked

  // --- values -------------------------------------------------------------------------
  function isNumeric(values) {
    return values.every((v) => v !== null && v !== "" && Number.isFinite(Number(v)));
  }

  function column(spec) {
    const dot = spec.indexOf(".");
    const kind = spec.slice(0, dot);
    const key = spec.slice(dot + 1);
    return (kind === "params" ? data.params : data.metrics)[key] || [];
  }

  function numericDimensions() {
    const dimensions = [];
    [["params", data.params], ["metrics", data.metrics]].forEach(([kind, table]) => {
      Object.entries(table).forEach(([key, values]) => {
        if (isNumeric(values)) dimensions.push({ label: kind + "." + key, values: values.map(Number) });
      });
    });
    return dimensions;
  }

  function message(plot, text) {
    plot.textContent = text;
    plot.classList.add("plot-message");
    plot.dataset.rendered = "true";
  }

  // --- parallel coordinates ---------------------------------------------------------
  const parallel = document.getElementById("plot-parallel");
  const colorBy = document.getElementById("color-by");

  function drawParallel() {
    const dimensions = numericDimensions();
    if (!dimensions.length) return message(parallel, "No numeric parameter or metric has a value in every run.");
    const colors = colorBy.value ? data.metrics[colorBy.value] : null;
    const line = colors && isNumeric(colors)
      ? { color: colors.map(Number), colorscale: LINE_COLORS, showscale: true,
          colorbar: { title: { text: colorBy.value, side: "right" }, thickness: 14 } }
      : { color: "#1a5fd0" };
    const trace = { type: "parcoords", line: line, dimensions: dimensions, labelangle: -20,
                    labelfont: { size: 12 }, tickfont: { size: 11 } };
    const layout = { height: 420, margin: { l: 70, r: 90, t: 70, b: 30 }, font: FONT };
    return Plotly.react(parallel, [trace], layout, CONFIG)
      .then(() => { parallel.dataset.rendered = "true"; });
  }

  // --- scatter ------------------------------------------------------------------------
  const scatter = document.getElementById("plot-scatter");
  const xSelect = document.getElementById("scatter-x");
  const ySelect = document.getElementById("scatter-y");

  function axisValues(spec) {
    const values = column(spec);
    return isNumeric(values.filter((v) => v !== null)) ? values.map((v) => (v === null ? null : Number(v))) : values;
  }

  function drawScatter() {
    if (!xSelect.value || !ySelect.value) return message(scatter, "Nothing to plot: these runs have no params or metrics.");
    const trace = {
      type: "scatter", mode: "markers+text", x: axisValues(xSelect.value), y: axisValues(ySelect.value),
      text: names, textposition: "top center", marker: { size: 12, color: "#1a5fd0" },
      hovertemplate: "%{text}<br>" + xSelect.value + " = %{x}<br>" + ySelect.value + " = %{y}<extra></extra>",
    };
    const layout = {
      height: 420, margin: { l: 70, r: 30, t: 30, b: 60 }, font: FONT,
      xaxis: { title: { text: xSelect.value }, automargin: true },
      yaxis: { title: { text: ySelect.value }, automargin: true },
    };
    return Plotly.react(scatter, [trace], layout, CONFIG)
      .then(() => { scatter.dataset.rendered = "true"; });
  }

  function chooseDefaults() {
    const options = Array.from(xSelect.options).map((o) => o.value);
    const numeric = options.filter((spec) => isNumeric(column(spec)));
    const param = numeric.find((spec) => spec.startsWith("params.")) || options[0];
    const metric = numeric.find((spec) => spec.startsWith("metrics.")) || options[options.length - 1];
    if (param) xSelect.value = param;
    if (metric) ySelect.value = metric;
  }

  chooseDefaults();
  drawParallel();
  drawScatter();
  colorBy.addEventListener("change", drawParallel);
  xSelect.addEventListener("change", drawScatter);
  ySelect.addEventListener("change", drawScatter);
})();
