// Pain and mood charts on the patient page: uPlot (vendored) over the JSON in #chart-data.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof uPlot === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var series = data[el.getAttribute("data-chart")];
    if (!series || !series.x.length) {
      el.textContent = "–";
      return;
    }
    var width = Math.max(280, Math.min(el.clientWidth || 600, 900));
    var opts = {
      width: width,
      height: 200,
      legend: { show: false },
      scales: { y: { range: el.getAttribute("data-chart") === "pain" ? [0, 10] : [0, 4] } },
      series: [{}, { label: el.getAttribute("data-label"), stroke: "#0b5cad", width: 2, points: { show: series.x.length < 60 } }],
      axes: [{}, {}],
    };
    new uPlot(opts, [series.x, series.y], el);
  });
})();
