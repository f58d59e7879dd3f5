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
  // Drawn in SVG: one vertical axis per dimension, each scaled from its runs' min (bottom) to
  // max (top), one line per run. Plotly's own "parcoords" draws with WebGL through code it
  // compiles at run time, which the page's Content-Security-Policy (no 'unsafe-eval') refuses.
  const parallel = document.getElementById("plot-parallel");
  const colorBy = document.getElementById("color-by");

  function colorAt(fraction) {
    const stops = LINE_COLORS;
    let i = 1;
    while (i < stops.length - 1 && fraction > stops[i][0]) i += 1;
    const [f0, c0] = stops[i - 1];
    const [f1, c1] = stops[i];
    const t = f1 === f0 ? 0 : Math.min(1, Math.max(0, (fraction - f0) / (f1 - f0)));
    const channel = (c, k) => parseInt(c.slice(1 + 2 * k, 3 + 2 * k), 16);
    const mix = [0, 1, 2].map((k) => Math.round(channel(c0, k) + t * (channel(c1, k) - channel(c0, k))));
    return "rgb(" + mix.join(",") + ")";
  }

  function span(values) {
    const low = Math.min(...values);
    const high = Math.max(...values);
    return { low: low, high: high, scale: (v) => (high === low ? 0.5 : (v - low) / (high - low)) };
  }

  function drawParallel() {
    const dimensions = numericDimensions();
    if (!dimensions.length) return message(parallel, "No numeric parameter or metric has a value in every run.");
    const spans = dimensions.map((d) => span(d.values));
    const axes = dimensions.map((_, i) => i);
    const colors = colorBy.value && isNumeric(data.metrics[colorBy.value] || [null])
      ? data.metrics[colorBy.value].map(Number) : null;
    const colorSpan = colors ? span(colors) : null;
    const traces = names.map((name, run) => {
      const color = colors ? colorAt(colorSpan.scale(colors[run])) : "#1a5fd0";
      return {
        type: "scatter", mode: "lines+markers", name: name, x: axes,
        y: dimensions.map((d, i) => spans[i].scale(d.values[run])),
        text: dimensions.map((d) => d.label), customdata: dimensions.map((d) => d.values[run]),
        line: { color: color, width: 2 }, marker: { color: color, size: 7 },
        hovertemplate: name + "<br>%{text} = %{customdata}<extra></extra>",
      };
    });
    const label = (v) => (Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString());
    const layout = {
      height: 420, margin: { l: 40, r: 40, t: 70, b: 50 }, font: FONT, showlegend: false,
      hovermode: "closest",
      xaxis: { tickvals: axes, ticktext: dimensions.map((d) => d.label), side: "top",
               tickangle: -20, range: [-0.3, dimensions.length - 0.7], showgrid: false,
               zeroline: false, fixedrange: true },
      yaxis: { range: [-0.08, 1.08], showticklabels: false, showgrid: false, zeroline: false,
               fixedrange: true },
      shapes: axes.map((i) => ({ type: "line", x0: i, x1: i, y0: 0, y1: 1, layer: "below",
                                 line: { color: "#8a8f98", width: 1 } })),
      annotations: axes.flatMap((i) => [
        { x: i, y: 1, yshift: 10, text: label(spans[i].high), showarrow: false, font: { size: 11 } },
        { x: i, y: 0, yshift: -10, text: label(spans[i].low), showarrow: false, font: { size: 11 } },
      ]).concat(colors ? [{ // the key: Plotly's colour bar sets style="" attributes the CSP refuses
        xref: "paper", yref: "paper", x: 1, y: -0.02, xanchor: "right", yanchor: "top", showarrow: false,
        text: "lines coloured by " + colorBy.value + ": blue " + label(colorSpan.low) +
              ", red " + label(colorSpan.high),
      }] : []),
      meta: { dimensions: dimensions.map((d) => d.label), colorBy: colors ? colorBy.value : "" },
    };
    return Plotly.react(parallel, traces, layout, CONFIG)
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
