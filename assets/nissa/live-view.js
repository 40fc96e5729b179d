/* global document, window, location, history, EventSource, uPlot, requestAnimationFrame */
// Esper live view ("mission control"): follows Nissa's /api/stream (Server-Sent Events) and
// draws the fleet's runs, the selected run's curves (uPlot), its seed swimlane (SVG), its
// decisions, commands and events, the alerts firing and Weatherlight's mode. No framework,
// no network beyond the serving Nissa.
(function liveView() {
  'use strict';

  var MAX_EVENTS = 300;
  var STAGE_COLORS = {
    DORMANT: '#c7c7c7',
    GERMINATED: '#9ecae1',
    TRAINING: '#4292c6',
    BLENDING: '#f6b73c',
    SHADOWING: '#c994c7',
    PROBATIONARY: '#e7855e',
    FOSSILIZED: '#41ab5d',
    CULLED: '#d6404e',
    EMBARGOED: '#8c6d31',
    RESETTING: '#969696',
    TERMINATED: '#636363',
    UNKNOWN: '#dddddd',
  };
  var CURVES = {
    stepLoss: { label: 'training loss (steps)', stroke: '#9ecae1', width: 1 },
    trainingLoss: { label: 'training loss (epochs)', stroke: '#08519c', width: 2 },
    validationLoss: { label: 'validation loss', stroke: '#e6550d', width: 2 },
    validationAccuracy: { label: 'validation accuracy', stroke: '#31a354', width: 2 },
  };

  var fleet = { runs: new Map(), alerts: [], mode: { mode: 'unknown', sinceMs: 0 } };
  var run = emptyRun();
  var selected = runFromHash();
  var source = null;
  var charts = { loss: null, accuracy: null };
  var renderPending = false;

  function emptyRun() {
    return { summary: null, curves: {}, seeds: new Map(), commands: new Map(), events: [], lastEventId: 0 };
  }

  function $(id) {
    return document.getElementById(id);
  }

  function esc(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function fmt(value, digits) {
    return typeof value === 'number' && isFinite(value) ? value.toFixed(digits) : '–';
  }

  function pct(value) {
    return typeof value === 'number' && isFinite(value) ? (value * 100).toFixed(1) + '%' : '–';
  }

  function runFromHash() {
    var match = /^#run=(.+)$/.exec(location.hash);
    return match ? decodeURIComponent(match[1]) : null;
  }

  // ---- stream --------------------------------------------------------------------------

  function connect() {
    if (source) source.close();
    run = emptyRun();
    var url = '/api/stream' + (selected ? '?run=' + encodeURIComponent(selected) : '');
    source = new EventSource(url);
    setConnection('connecting', 'connecting…');
    source.onopen = function () {
      setConnection('live', 'live');
    };
    source.onerror = function () {
      setConnection('reconnecting', 'reconnecting…');
    };
    source.addEventListener('snapshot', onMessage);
    source.addEventListener('delta', onMessage);
  }

  function setConnection(state, text) {
    var badge = $('connection');
    badge.dataset.state = state;
    badge.textContent = text;
  }

  function onMessage(event) {
    var message = JSON.parse(event.data);
    applyFleet(message.fleet);
    // A stream opened without a run follows the one the server picked: adopt it, no reconnect.
    if (!selected && message.run) {
      selected = message.run.runId;
      history.replaceState(null, '', '#run=' + encodeURIComponent(selected));
    }
    if (message.run && message.run.runId === selected) applyRun(message.run);
    scheduleRender();
  }

  function applyFleet(delta) {
    if (delta.full) fleet.runs.clear();
    delta.removed.forEach(function (id) {
      fleet.runs.delete(id);
    });
    var merged = new Map();
    delta.runs.forEach(function (summary) {
      merged.set(summary.runId, summary);
    });
    fleet.runs.forEach(function (summary, id) {
      if (!merged.has(id)) merged.set(id, summary);
    });
    // Most recently seen first, as the server orders them.
    fleet.runs = new Map(
      Array.from(merged.values())
        .sort(function (a, b) {
          return b.lastSeenMs - a.lastSeenMs || (a.runId < b.runId ? -1 : 1);
        })
        .map(function (s) {
          return [s.runId, s];
        }),
    );
    if (delta.alerts) fleet.alerts = delta.alerts;
    if (delta.mode) fleet.mode = delta.mode;
  }

  function applyRun(delta) {
    if (delta.full) run = emptyRun();
    if (delta.summary) run.summary = delta.summary;
    Object.keys(delta.curves).forEach(function (name) {
      var curve = delta.curves[name];
      run.curves[name] = curve.reset ? curve.points.slice() : (run.curves[name] || []).concat(curve.points);
    });
    if (delta.seedsReset) run.seeds = new Map();
    delta.seeds.forEach(function (lane) {
      run.seeds.set(lane.seedId, lane);
    });
    if (delta.commandsReset) run.commands = new Map();
    delta.commands.forEach(function (command) {
      run.commands.set(command.commandId, command);
    });
    delta.events.forEach(function (e) {
      if (e.id > run.lastEventId) {
        run.events.push(e);
        run.lastEventId = e.id;
      }
    });
    if (run.events.length > MAX_EVENTS) run.events.splice(0, run.events.length - MAX_EVENTS);
  }

  function select(runId) {
    if (runId === selected) return;
    selected = runId;
    if (runFromHash() !== runId) history.replaceState(null, '', '#run=' + encodeURIComponent(runId));
    connect();
    scheduleRender();
  }

  // ---- render --------------------------------------------------------------------------

  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    requestAnimationFrame(function () {
      renderPending = false;
      render();
    });
  }

  function render() {
    renderMode();
    renderRuns();
    renderAlerts();
    var hasRun = Boolean(selected && run.summary);
    $('run').hidden = !hasRun;
    $('empty').hidden = hasRun;
    if (!hasRun) return;
    renderRunHeader();
    renderCharts();
    renderSwimlane();
    renderCommands();
    renderEvents();
  }

  function renderMode() {
    var badge = $('mode');
    badge.dataset.mode = fleet.mode.mode;
    badge.textContent = 'mode: ' + fleet.mode.mode;
  }

  function renderRuns() {
    var list = $('runs');
    if (fleet.runs.size === 0) {
      list.innerHTML = '<li class="dim">No runs yet.</li>';
      return;
    }
    var html = '';
    fleet.runs.forEach(function (s) {
      html +=
        '<li data-run-id="' +
        esc(s.runId) +
        '" data-phase="' +
        esc(s.phase) +
        '" class="' +
        (s.runId === selected ? 'selected' : '') +
        '"><a href="#run=' +
        encodeURIComponent(s.runId) +
        '"><strong>' +
        esc(s.runId) +
        '</strong> <span class="phase">' +
        esc(s.phase) +
        '</span><br><span class="dim">epoch ' +
        s.epoch +
        (s.epochsPlanned ? '/' + s.epochsPlanned : '') +
        ' · step ' +
        s.globalStep +
        ' · acc ' +
        pct(s.validationAccuracy) +
        ' · seeds ' +
        s.seedsActive +
        ' live, ' +
        s.seedsFossilized +
        ' fossilized</span></a></li>';
    });
    list.innerHTML = html;
  }

  function renderAlerts() {
    var list = $('alerts');
    if (fleet.alerts.length === 0) {
      list.innerHTML = '<li class="dim">None firing.</li>';
      return;
    }
    list.innerHTML = fleet.alerts
      .map(function (a) {
        var state = a.resolvedAtMs === undefined ? 'firing' : 'resolved';
        return (
          '<li class="alert" data-alert="' +
          esc(a.name) +
          '" data-severity="' +
          esc(a.severity) +
          '" data-state="' +
          state +
          '"><strong>' +
          esc(a.name) +
          '</strong> <span class="badge">' +
          esc(a.severity) +
          ' · ' +
          state +
          '</span><br><span class="dim">' +
          esc(a.message) +
          (a.trainingRunId ? ' (' + esc(a.trainingRunId) + ')' : '') +
          ' · ' +
          new Date(a.firedAtMs).toLocaleTimeString() +
          '</span></li>'
        );
      })
      .join('');
  }

  function renderRunHeader() {
    var s = run.summary;
    $('run-title').textContent = s.runId + (s.phase === 'ended' ? ' (ended' + (s.endReason ? ': ' + s.endReason : '') + ')' : '');
    var parts = [];
    if (s.experimentName) parts.push('experiment ' + s.experimentName);
    if (s.hostId) parts.push('host ' + s.hostId + (s.hostFamily ? ' (' + s.hostFamily + ')' : ''));
    if (s.runSeed) parts.push('seed ' + s.runSeed);
    parts.push('epoch ' + s.epoch + (s.epochsPlanned ? '/' + s.epochsPlanned : ''));
    parts.push('step ' + s.globalStep);
    parts.push('val acc ' + pct(s.validationAccuracy));
    parts.push('val loss ' + fmt(s.validationLoss, 4));
    parts.push('commands ' + s.commandsIssued + ' issued, ' + s.commandsApplied + ' applied, ' + s.commandsRefused + ' refused');
    if (s.conservativeMode !== undefined) parts.push(s.conservativeMode > 0 ? 'Tamiyo conservative' : 'Tamiyo normal');
    $('run-meta').textContent = parts.join(' · ');
  }

  // Aligns several [step, value] series on the union of their steps (uPlot's data layout).
  function aligned(names) {
    var steps = new Set();
    names.forEach(function (name) {
      (run.curves[name] || []).forEach(function (p) {
        steps.add(p[0]);
      });
    });
    var xs = Array.from(steps).sort(function (a, b) {
      return a - b;
    });
    var index = new Map();
    xs.forEach(function (x, i) {
      index.set(x, i);
    });
    var data = [xs];
    var count = 0;
    names.forEach(function (name) {
      var ys = new Array(xs.length).fill(null);
      (run.curves[name] || []).forEach(function (p) {
        ys[index.get(p[0])] = p[1];
        count += 1;
      });
      data.push(ys);
    });
    return { data: data, count: count };
  }

  function chartSize(el) {
    return { width: Math.max(280, el.clientWidth || 480), height: 220 };
  }

  function makeChart(el, names, yLabel) {
    var size = chartSize(el);
    var series = [{ label: 'step' }].concat(
      names.map(function (name) {
        var c = CURVES[name];
        return { label: c.label, stroke: c.stroke, width: c.width, spanGaps: true, points: { show: false } };
      }),
    );
    return new uPlot(
      {
        width: size.width,
        height: size.height,
        scales: { x: { time: false } },
        axes: [{ label: 'global step' }, { label: yLabel }],
        series: series,
      },
      aligned(names).data,
      el,
    );
  }

  function renderChart(key, elId, names, yLabel) {
    var el = $(elId);
    var built = aligned(names);
    if (!charts[key]) charts[key] = makeChart(el, names, yLabel);
    else charts[key].setData(built.data);
    el.dataset.points = String(built.count);
  }

  function renderCharts() {
    renderChart('loss', 'chart-loss', ['stepLoss', 'trainingLoss', 'validationLoss'], 'loss');
    renderChart('accuracy', 'chart-accuracy', ['validationAccuracy'], 'accuracy');
  }

  function renderSwimlane() {
    var container = $('swimlane');
    var lanes = Array.from(run.seeds.values()).sort(function (a, b) {
      return a.firstStep - b.firstStep || (a.seedId < b.seedId ? -1 : 1);
    });
    if (lanes.length === 0) {
      container.innerHTML = '<p class="dim">No seeds yet.</p>';
      renderLegend();
      return;
    }
    var width = Math.max(480, container.clientWidth || 900);
    var labelWidth = 230;
    var rowHeight = 38;
    var axisHeight = 22;
    var maxStep = run.summary.globalStep;
    lanes.forEach(function (lane) {
      maxStep = Math.max(maxStep, lane.lastStep);
    });
    maxStep = Math.max(1, maxStep);
    var plotWidth = width - labelWidth - 10;
    function x(step) {
      return labelWidth + (step / maxStep) * plotWidth;
    }
    var svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="' +
      width +
      '" height="' +
      (lanes.length * rowHeight + axisHeight) +
      '" role="img" aria-label="seed swimlane">';
    lanes.forEach(function (lane, row) {
      var top = row * rowHeight;
      var fate = lane.fate ? lane.fate.fate : '';
      svg += '<g class="lane" data-seed-id="' + esc(lane.seedId) + '" data-stage="' + esc(lane.stage) + '" data-fate="' + esc(fate) + '">';
      svg +=
        '<text x="4" y="' +
        (top + 15) +
        '" class="lane-name">' +
        esc(lane.seedId) +
        (lane.siteId ? ' @ ' + esc(lane.siteId) : '') +
        '</text>';
      svg +=
        '<text x="4" y="' +
        (top + 30) +
        '" class="lane-info">' +
        esc(lane.stage) +
        ' · α ' +
        fmt(lane.alpha, 2) +
        ' · contrib ' +
        (lane.contribution === undefined ? '–' : (lane.contribution >= 0 ? '+' : '') + (lane.contribution * 100).toFixed(2) + '%') +
        '</text>';
      lane.intervals.forEach(function (interval) {
        var x0 = x(interval.fromStep);
        var w = Math.max(3, x(interval.toStep) - x0);
        svg +=
          '<rect class="stage" data-stage="' +
          esc(interval.stage) +
          '" x="' +
          x0.toFixed(1) +
          '" y="' +
          (top + 6) +
          '" width="' +
          w.toFixed(1) +
          '" height="' +
          (rowHeight - 12) +
          '" fill="' +
          (STAGE_COLORS[interval.stage] || STAGE_COLORS.UNKNOWN) +
          '"><title>' +
          esc(lane.seedId + ': ' + interval.stage + ', steps ' + interval.fromStep + '–' + interval.toStep) +
          '</title></rect>';
      });
      if (lane.alphaPoints.length > 1) {
        var points = lane.alphaPoints
          .map(function (p) {
            return x(p[0]).toFixed(1) + ',' + (top + rowHeight - 6 - p[1] * (rowHeight - 12)).toFixed(1);
          })
          .join(' ');
        svg += '<polyline class="alpha" points="' + points + '"><title>alpha</title></polyline>';
      }
      if (lane.fate) {
        svg +=
          '<text class="fate" x="' + (x(lane.fate.atStep) + 4).toFixed(1) + '" y="' + (top + 23) + '">' + esc(lane.fate.fate) + '</text>';
      }
      svg += '</g>';
    });
    var axisY = lanes.length * rowHeight + 14;
    for (var i = 0; i <= 4; i += 1) {
      var step = Math.round((maxStep * i) / 4);
      svg +=
        '<text class="axis" x="' +
        x(step).toFixed(1) +
        '" y="' +
        axisY +
        '" text-anchor="' +
        (i === 4 ? 'end' : 'middle') +
        '">' +
        step +
        '</text>';
    }
    svg += '</svg>';
    container.innerHTML = svg;
    renderLegend();
  }

  function renderLegend() {
    var legend = $('legend');
    if (legend.childElementCount > 0) return;
    legend.innerHTML = Object.keys(STAGE_COLORS)
      .map(function (stage) {
        return '<span><i style="background:' + STAGE_COLORS[stage] + '"></i>' + stage + '</span>';
      })
      .join('');
  }

  function renderCommands() {
    var rows = Array.from(run.commands.values())
      .reverse()
      .slice(0, 100)
      .map(function (c) {
        var what = c.commandType + (c.operation ? ' ' + c.operation : '');
        var where = (c.seedId || '–') + (c.siteId ? ' @ ' + c.siteId : '') + (c.blueprintId ? ' (' + c.blueprintId + ')' : '');
        var risk = (c.riskReason || '–') + (c.conservativeMode ? ' · conservative' : '');
        var why = [c.reason, c.outcome].filter(Boolean).join(' · ') || '–';
        return (
          '<tr data-command-id="' +
          esc(c.commandId) +
          '" data-status="' +
          esc(c.status) +
          '"><td>' +
          c.step +
          '</td><td>' +
          esc(what) +
          '</td><td>' +
          esc(where) +
          '</td><td>' +
          esc(risk) +
          '</td><td class="status">' +
          esc(c.status) +
          '</td><td>' +
          esc(why) +
          '</td></tr>'
        );
      });
    $('commands').tBodies[0].innerHTML = rows.join('') || '<tr><td colspan="6" class="dim">No commands yet.</td></tr>';
  }

  function renderEvents() {
    var rows = run.events
      .slice(-100)
      .reverse()
      .map(function (e) {
        var details = Object.keys(e.attributes)
          .sort()
          .map(function (k) {
            return k + '=' + e.attributes[k];
          })
          .join(' ');
        return (
          '<tr data-level="' +
          esc(e.level) +
          '"><td>' +
          e.step +
          '</td><td>' +
          esc(e.source) +
          '</td><td>' +
          esc(e.level) +
          '</td><td>' +
          esc(e.description) +
          '</td><td class="details">' +
          esc(details) +
          '</td></tr>'
        );
      });
    $('events').tBodies[0].innerHTML = rows.join('') || '<tr><td colspan="5" class="dim">No events yet.</td></tr>';
  }

  window.addEventListener('hashchange', function () {
    var id = runFromHash();
    if (id && id !== selected) select(id);
  });
  window.addEventListener('resize', function () {
    ['loss', 'accuracy'].forEach(function (key) {
      if (charts[key]) charts[key].setSize(chartSize(charts[key].root.parentNode));
    });
    scheduleRender();
  });

  connect();
})();
