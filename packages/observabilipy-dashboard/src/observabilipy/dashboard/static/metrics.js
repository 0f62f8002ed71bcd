// Metric history as the chart draws it: counters as rates, gauges as values,
// histograms as p50/p95/p99 from cumulative buckets. No DOM here.

export const QUANTILES = [0.5, 0.95, 0.99];
// Points kept per series: the oldest go first (bounded memory for any window).
export const MAX_POINTS = 5000;

/** Families of a Prometheus text exposition: [{name, kind}] from its TYPE lines, by name. */
export function parseFamilies(text) {
  const families = new Map();
  for (const line of text.split("\n")) {
    const match = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line.trim());
    if (match) families.set(match[1], match[2]);
  }
  return [...families]
    .map(([name, kind]) => ({ name, kind }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The stored sample name holding a family's history. */
export function sampleName(family) {
  return family.kind === "histogram" ? family.name + "_bucket" : family.name;
}

/** A series' labels as text, `{a="1",b="2"}` sorted, leaving out `omit`; "" without labels. */
export function labelText(labels, omit = "") {
  const pairs = Object.keys(labels || {})
    .filter((name) => name !== omit)
    .sort()
    .map((name) => `${name}="${labels[name]}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

/** The raw points of one sample name, per series, kept in time order and trimmed. */
export class History {
  constructor() {
    this.series = new Map(); // label text -> {labels, points: [[t, v], ...]}
  }

  add(items) {
    for (const item of items) {
      const key = labelText(item.labels);
      let entry = this.series.get(key);
      if (!entry) {
        entry = { labels: item.labels || {}, points: [] };
        this.series.set(key, entry);
      }
      entry.points.push([item.timestamp, Number(item.value)]);
      if (entry.points.length > MAX_POINTS) entry.points.splice(0, entry.points.length - MAX_POINTS);
    }
  }

  /** Drop the points older than `since` (seconds); then series left empty. */
  trim(since) {
    for (const [key, entry] of this.series) {
      const keep = entry.points.findIndex(([t]) => t > since);
      if (keep === -1) this.series.delete(key);
      else if (keep > 0) entry.points.splice(0, keep);
    }
  }

  get size() {
    let total = 0;
    for (const entry of this.series.values()) total += entry.points.length;
    return total;
  }
}

// The index of the point to difference point i against: the newest at least `span`
// seconds older, else the oldest one (so a short history still gives points).
function baseline(points, i, span) {
  let j = i - 1;
  while (j > 0 && points[i][0] - points[j][0] < span) j -= 1;
  return j;
}

/** Per-second rate of a cumulative counter; a value going down is a restart (from zero). */
export function rates(points, span) {
  const out = [];
  for (let i = 1; i < points.length; i += 1) {
    const j = baseline(points, i, span);
    const [t0, v0] = points[j];
    const [t1, v1] = points[i];
    if (t1 <= t0) continue;
    const increase = v1 >= v0 ? v1 - v0 : v1;
    out.push([t1, increase / (t1 - t0)]);
  }
  return out;
}

/**
 * The q-quantile of cumulative `buckets` ([[upperBound, count], ...], +Inf last), as
 * Prometheus' histogram_quantile: linear within the bucket holding the rank; in the
 * +Inf bucket, the highest finite bound. null without observations.
 */
export function quantile(q, buckets) {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.length ? sorted[sorted.length - 1][1] : 0;
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (bound === Infinity) return lowerBound;
      if (count === lowerCount) return bound;
      const start = lowerBound > bound ? bound : lowerBound;
      return start + ((bound - start) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}

function bound(le) {
  return le === "+Inf" ? Infinity : Number(le);
}

/**
 * p50/p95/p99 over time from a histogram's `_bucket` history (every label set summed):
 * at each snapshot, the quantiles of the observations since its baseline; snapshots
 * without new observations give no point.
 */
export function histogramQuantiles(history, span) {
  const snapshots = new Map(); // timestamp -> Map(bound -> count summed over label sets)
  for (const entry of history.series.values()) {
    const le = bound(entry.labels.le);
    for (const [t, v] of entry.points) {
      let buckets = snapshots.get(t);
      if (!buckets) snapshots.set(t, (buckets = new Map()));
      buckets.set(le, (buckets.get(le) || 0) + v);
    }
  }
  const points = [...snapshots].sort((a, b) => a[0] - b[0]);
  const out = QUANTILES.map(() => []);
  for (let i = 1; i < points.length; i += 1) {
    const j = baseline(points, i, span);
    const [t, now] = points[i];
    const before = points[j][1];
    let reset = false;
    const deltas = [...now].map(([le, count]) => {
      const delta = count - (before.get(le) || 0);
      if (delta < 0) reset = true;
      return [le, delta];
    });
    const buckets = reset ? [...now] : deltas;
    QUANTILES.forEach((q, k) => {
      const value = quantile(q, buckets);
      if (value !== null) out[k].push([t, value]);
    });
  }
  return QUANTILES.map((q, k) => ({ label: `p${Math.round(q * 100)}`, points: out[k] }));
}

/** The smoothing span of rates and quantiles for a window (seconds). */
export function spanFor(windowSeconds) {
  return windowSeconds / 60;
}
