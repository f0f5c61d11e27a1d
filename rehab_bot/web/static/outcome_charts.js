// Outcome measures by day after surgery, with the MCID mark as a dashed line: uPlot (vendored) over #outcome-data.
(function () {
  "use strict";
  var source = document.getElementById("outcome-data");
  if (!source || typeof uPlot === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  document.querySelectorAll("[data-outcome]").forEach(function (el) {
    var d = data[el.getAttribute("data-outcome")];
    if (!d || !d.x.length) {
      el.textContent = "–";
      return;
    }
    var xs = d.x.slice();
    var marks = xs.map(function () { return d.target; });
    var series = [
      // The x series' label is the legend's first entry: uPlot's own default is the English "Value".
      { label: el.getAttribute("data-label-day") },
      { label: el.getAttribute("data-label"), stroke: "#0b5cad", width: 2, points: { show: true } },
    ];
    var values = [xs, d.y];
    if (d.target !== null) {
      series.push({ label: el.getAttribute("data-label-mark"), stroke: "#1e7b34", width: 2, dash: [8, 6], points: { show: false } });
      values.push(marks);
    }
    var low = Math.min(0, d.target === null ? 0 : d.target);
    var high = Math.max(d.max, d.target === null ? 0 : d.target);
    var width = Math.max(280, Math.min(el.clientWidth || 600, 900));
    new uPlot(
      {
        width: width,
        height: 200,
        legend: { show: true },
        scales: { x: { time: false }, y: { range: [low, high] } },
        series: series,
        axes: [{ label: el.getAttribute("data-label-day") }, {}],
      },
      values,
      el
    );
  });
})();
