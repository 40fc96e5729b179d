/**
 * The live view's HTML: a static shell the page script fills in from `/api/stream`. Every
 * asset is served by Nissa itself (no CDN).
 */

/** The page at `GET /`. */
export const LIVE_VIEW_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Esper · mission control</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uPlot.min.css">
<link rel="stylesheet" href="/assets/live-view.css">
</head>
<body>
<header>
  <h1>Esper <span class="dim">mission control</span></h1>
  <div class="badges">
    <span id="mode" class="badge" data-mode="unknown" title="Weatherlight's mode">mode: unknown</span>
    <span id="connection" class="badge" data-state="connecting">connecting…</span>
  </div>
</header>
<main>
  <nav>
    <h2>Runs</h2>
    <ul id="runs"><li class="dim">No runs yet.</li></ul>
    <h2>Alerts</h2>
    <ul id="alerts"><li class="dim">None firing.</li></ul>
  </nav>
  <section id="run" hidden>
    <h2 id="run-title"></h2>
    <p id="run-meta" class="dim"></p>
    <div class="charts">
      <figure><figcaption>Loss</figcaption><div id="chart-loss" class="chart" data-points="0"></div></figure>
      <figure><figcaption>Validation accuracy</figcaption><div id="chart-accuracy" class="chart" data-points="0"></div></figure>
    </div>
    <h3>Seeds</h3>
    <div id="swimlane"><p class="dim">No seeds yet.</p></div>
    <div id="legend"></div>
    <div class="tables">
      <div>
        <h3>Decisions and commands</h3>
        <table id="commands"><thead><tr><th>step</th><th>command</th><th>seed @ site</th><th>risk reason</th><th>status</th><th>reason / outcome</th></tr></thead><tbody></tbody></table>
      </div>
      <div>
        <h3>Risk signals and seed events</h3>
        <table id="events"><thead><tr><th>step</th><th>source</th><th>level</th><th>event</th><th>details</th></tr></thead><tbody></tbody></table>
      </div>
    </div>
  </section>
  <section id="empty"><p class="dim">Waiting for a run to report…</p></section>
</main>
<script src="/assets/uPlot.iife.min.js"></script>
<script src="/assets/live-view.js"></script>
</body>
</html>
`;
