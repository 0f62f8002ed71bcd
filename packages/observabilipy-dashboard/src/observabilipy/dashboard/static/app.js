// The dashboard page: health, one metric over time, the log viewer; polling the API.

import { Unauthorized, getJSON, getText, setToken, token } from "./api.js";
import { COLORS, drawChart, formatValue } from "./chart.js";
import { LogViewer } from "./logs.js";
import {
  History,
  histogramQuantiles,
  labelText,
  parseFamilies,
  rates,
  sampleName,
  spanFor,
} from "./metrics.js";

const POLL_MS = 2000;
const HEALTH_MS = 5000;
const FAMILIES_MS = 15000;
const PAGE = 5000; // samples per request
const MAX_SERIES = 8; // lines drawn; the legend tells how many more there are

const $ = (id) => document.getElementById(id);
const now = () => Date.now() / 1000;
const windowSeconds = () => Number($("window").value);

function showError(id, error) {
  const box = $(id);
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

// -- signing in (bearer token) ---------------------------------------------------------

let signInShown = false;

function askForToken() {
  signInShown = true;
  $("sign-in").hidden = false;
  $("main").hidden = true;
  if (token()) {
    $("sign-in-error").hidden = false;
    $("sign-in-error").textContent = "The server refused this token.";
  }
}

/** Run `task`, then again every `ms`; a refusal asks for a token, other errors are shown. */
function every(ms, task, errorBox) {
  const run = async () => {
    try {
      await task();
      if (errorBox) showError(errorBox, null);
    } catch (error) {
      if (error instanceof Unauthorized) askForToken();
      else if (errorBox) showError(errorBox, error);
    } finally {
      setTimeout(run, ms);
    }
  };
  run();
}

// -- health ----------------------------------------------------------------------------

async function refreshHealth() {
  let report;
  try {
    report = await getJSON("health", {}, { okStatuses: [200, 503] });
  } catch (error) {
    report = { status: "unknown", components: {}, error: error.message };
    if (error instanceof Unauthorized) report.error = "health needs the token";
  }
  $("health").dataset.status = report.status;
  $("health-status").textContent = "health: " + report.status;
  const items = Object.entries(report.components || {}).map(([name, component]) => {
    const item = document.createElement("li");
    item.textContent = `${name}: ${component.status}`;
    item.dataset.status = component.status;
    return item;
  });
  if (report.error) {
    const item = document.createElement("li");
    item.textContent = report.error;
    items.push(item);
  }
  $("health-components").replaceChildren(...items);
}

// -- metrics ---------------------------------------------------------------------------

const metrics = { families: [], family: null, history: new History(), after: null, generation: 0 };

async function refreshFamilies() {
  metrics.families = parseFamilies(await getText("metrics/prometheus"));
  const select = $("metric");
  const chosen = select.value;
  const options = metrics.families.map((family) => {
    const option = document.createElement("option");
    option.value = family.name;
    option.textContent = `${family.name} (${family.kind})`;
    return option;
  });
  select.replaceChildren(...options);
  if (metrics.families.some((family) => family.name === chosen)) select.value = chosen;
  if (select.value !== (metrics.family && metrics.family.name)) chooseMetric();
}

function chooseMetric() {
  const name = $("metric").value;
  metrics.family = metrics.families.find((family) => family.name === name) || null;
  metrics.history = new History();
  metrics.after = null;
  metrics.generation += 1;
  $("metric-kind").textContent = metrics.family ? describe(metrics.family.kind) : "";
  $("chart").dataset.metric = name;
  render();
  refreshMetric().catch((error) => {
    if (error instanceof Unauthorized) askForToken();
    else showError("metrics-error", error);
  });
}

function describe(kind) {
  if (kind === "counter") return "counter: rate per second";
  if (kind === "histogram") return "histogram: p50 / p95 / p99";
  return kind + ": value";
}

let metricInflight = null;

async function refreshMetric() {
  const family = metrics.family;
  const generation = metrics.generation;
  if (!family || metricInflight === generation) return;
  metricInflight = generation;
  try {
    for (let page = 0; page < 20; page += 1) {
      const params = { name: sampleName(family), limit: PAGE };
      if (metrics.after === null) params.since = now() - windowSeconds();
      else params.after = metrics.after;
      const answer = await getJSON("metrics/json", params);
      if (generation !== metrics.generation) return;
      metrics.history.add(answer.items);
      if (answer.next_after !== null) metrics.after = answer.next_after;
      if (answer.count < PAGE) break;
    }
    metrics.history.trim(now() - windowSeconds());
    render();
  } finally {
    if (metricInflight === generation) metricInflight = null;
  }
}

function lines() {
  const family = metrics.family;
  if (!family) return [];
  const span = spanFor(windowSeconds());
  if (family.kind === "histogram") return histogramQuantiles(metrics.history, span);
  return [...metrics.history.series]
    .map(([key, entry]) => ({
      label: family.name + key,
      points: family.kind === "counter" ? rates(entry.points, span) : entry.points,
    }))
    .sort((a, b) => lastValue(b) - lastValue(a));
}

function lastValue(line) {
  return line.points.length ? line.points[line.points.length - 1][1] : -Infinity;
}

function render() {
  const all = lines();
  const shown = all.slice(0, MAX_SERIES);
  const to = now();
  const drawn = drawChart($("chart"), shown, to - windowSeconds(), to);
  $("chart-empty").hidden = drawn > 0;
  $("chart-empty").textContent = metrics.family
    ? "No points in this window yet (counters and histograms need two snapshots)."
    : "No metric yet.";
  const items = shown.map((line, index) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch swatch-" + (index % COLORS.length);
    const text = document.createElement("span");
    const last = lastValue(line);
    text.textContent = `${line.label} ${Number.isFinite(last) ? formatValue(last) : "–"}`;
    item.append(swatch, text);
    return item;
  });
  if (all.length > shown.length) {
    const more = document.createElement("li");
    more.textContent = `${all.length - shown.length} more series not drawn`;
    items.push(more);
  }
  $("legend").replaceChildren(...items);
}

// -- logs ------------------------------------------------------------------------------

const viewer = new LogViewer({
  rows: $("log-rows"),
  box: $("log-box"),
  counter: $("log-count"),
  follow: $("follow"),
});

function resetLogs() {
  viewer.reset({
    minLevel: $("level").value,
    q: $("search").value.trim(),
    since: now() - windowSeconds(),
  });
  viewer.poll().catch((error) => {
    if (error instanceof Unauthorized) askForToken();
    else showError("logs-error", error);
  });
}

// -- start -----------------------------------------------------------------------------

function start() {
  $("sign-out").hidden = !token();
  $("metric").addEventListener("change", chooseMetric);
  $("window").addEventListener("change", () => {
    chooseMetric();
    resetLogs();
  });
  $("level").addEventListener("change", resetLogs);
  let typing = null;
  $("search").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(resetLogs, 300);
  });
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken($("token").value.trim());
    location.reload();
  });
  $("sign-out").addEventListener("click", () => {
    setToken(null);
    location.reload();
  });
  window.addEventListener("resize", render);

  every(HEALTH_MS, refreshHealth, null);
  resetLogs();
  every(POLL_MS, () => (signInShown ? null : viewer.poll()), "logs-error");
  every(FAMILIES_MS, () => (signInShown ? null : refreshFamilies()), "metrics-error");
  every(POLL_MS, () => (signInShown ? null : refreshMetric()), "metrics-error");
}

start();
