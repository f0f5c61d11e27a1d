// Pain and mood charts on the patient page: uPlot (vendored) over the JSON in #chart-data.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof uPlot === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  // The time axis as the page's language writes a day ("2. Mai", "2 May"; uPlot's own is "5/2"),
  // with the time when the chart spans less than three days.
  var lang = document.documentElement.lang || "en";
  lang = lang === "en" ? "en-GB" : lang; // "2 May", as the page's own dates ("2 May 2026, 09:00")
  var byDay = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short" });
  var byHour = new Intl.DateTimeFormat(lang, {
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  function timeLabels(splits, span) {
    var format = span < 3 * 86400 ? byHour : byDay;
    return splits.map(function (v) {
      return v == null ? null : format.format(new Date(v * 1000));
    });
  }
  // The values axis too: "7,5" on a German page.
  var decimal = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
  function numberLabels(splits) {
    return splits.map(function (v) {
      return v == null ? null : decimal.format(v);
    });
  }
  window.rehabChartTimeLabels = timeLabels; // for the browser tests
  window.rehabChartNumberLabels = numberLabels;
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
      axes: [
        {
          values: function (u, splits) {
            return timeLabels(splits, u.scales.x.max - u.scales.x.min);
          },
        },
        {
          values: function (u, splits) {
            return numberLabels(splits);
          },
        },
      ],
    };
    new uPlot(opts, [series.x, series.y], el);
  });
})();
