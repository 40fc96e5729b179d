/**
 * The script `report.html` runs in the browser: it reads the embedded run data and draws the
 * accuracy and loss charts with uPlot (inlined before it). Plain ES2017, no modules.
 * `window.esperCharts` holds the uPlot instances, for tests.
 */
export const CHART_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('esper-report-data').textContent);
  var palette = { grown: '#1f77b4', baseline: '#ff7f0e' };
  var charts = [];
  window.esperCharts = charts;
  if (data.arms.length === 0) return;
  var epochs = [];
  data.arms.forEach(function (arm) {
    arm.epochs.forEach(function (e) { if (epochs.indexOf(e.epoch) < 0) epochs.push(e.epoch); });
  });
  epochs.sort(function (a, b) { return a - b; });
  function column(arm, key, scale) {
    return epochs.map(function (x) {
      for (var i = 0; i < arm.epochs.length; i++) if (arm.epochs[i].epoch === x) return arm.epochs[i][key] * scale;
      return null;
    });
  }
  function width(el) { return Math.max(320, Math.min(960, el.clientWidth || 960)); }
  function draw(id, title, yLabel, lines) {
    var el = document.getElementById(id);
    var series = [{ label: 'epoch' }];
    var columns = [epochs];
    lines.forEach(function (line) {
      data.arms.forEach(function (arm) {
        series.push({
          label: arm.label + (line.suffix ? ' ' + line.suffix : ''),
          stroke: palette[arm.name] || '#555',
          width: 2,
          dash: line.dash,
          points: { show: true, size: 5 },
          value: function (u, v) { return v == null ? '—' : v.toFixed(line.digits); },
        });
        columns.push(column(arm, line.key, line.scale));
      });
    });
    var chart = new uPlot({
      title: title,
      width: width(el),
      height: 300,
      scales: { x: { time: false } },
      axes: [{ label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100] }, { label: yLabel }],
      series: series,
    }, columns, el);
    charts.push(chart);
  }
  draw('chart-accuracy', 'Validation accuracy', '%', [{ key: 'validationAccuracy', scale: 100, digits: 2 }]);
  draw('chart-loss', 'Loss', 'loss', [
    { key: 'validationLoss', scale: 1, digits: 4, suffix: 'validation' },
    { key: 'trainLoss', scale: 1, digits: 4, suffix: 'train', dash: [6, 4] },
  ]);
})();
`;
