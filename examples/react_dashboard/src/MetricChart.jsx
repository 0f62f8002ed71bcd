import { useEffect, useState } from "react";
import { API_BASE, fetchNewRows, startPolling } from "./api.js";

const WIDTH = 600;
const HEIGHT = 160;
const COLORS = ["#2563eb", "#d97706", "#dc2626", "#16a34a", "#7c3aed"];

// A metric over the last `minutes`, one SVG line per label set: a counter (cumulative)
// as its rate per second between snapshots, anything else as its value.
export function MetricChart({ metric, minutes = 15, base = API_BASE }) {
  const [lines, setLines] = useState({}); // label set (as JSON) -> [[time, y], ...]
  const [error, setError] = useState(null);

  useEffect(() => {
    setLines({});
    const windowSeconds = minutes * 60;
    const cursor = { after: 0, since: Date.now() / 1000 - windowSeconds };
    const previous = new Map(); // label set -> its last [timestamp, value]
    const url = `${base}/metrics?name=${encodeURIComponent(metric)}`;
    return startPolling(async (signal) => {
      try {
        const samples = await fetchNewRows(url, cursor, signal);
        if (signal.aborted) return; // another metric was chosen meanwhile
        const added = {};
        for (const sample of samples) {
          const series = JSON.stringify(sample.labels);
          const last = previous.get(series);
          previous.set(series, [sample.timestamp, sample.value]);
          let y = sample.value;
          if (sample.kind === "counter") {
            if (!last || sample.timestamp <= last[0] || sample.value < last[1]) continue;
            y = (sample.value - last[1]) / (sample.timestamp - last[0]);
          }
          (added[series] ??= []).push([sample.timestamp, y]);
        }
        const oldest = Date.now() / 1000 - windowSeconds;
        setLines((current) => {
          const next = {};
          for (const series of new Set([...Object.keys(current), ...Object.keys(added)])) {
            const points = [...(current[series] ?? []), ...(added[series] ?? [])];
            next[series] = points.filter(([time]) => time >= oldest);
          }
          return next;
        });
        setError(null);
      } catch (failure) {
        if (!signal.aborted) setError(failure.message);
      }
    }, 2000);
  }, [metric, minutes, base]);

  // The time axis runs from the oldest point shown (at most `minutes` ago) to now.
  const all = Object.values(lines).flat();
  const now = Date.now() / 1000;
  const start = Math.max(now - minutes * 60, Math.min(now, ...all.map(([time]) => time)));
  const span = Math.max(now - start, 1);
  const top = Math.max(1e-9, ...all.map(([, y]) => y));
  const x = (time) => ((time - start) / span) * WIDTH;
  const y = (value) => HEIGHT - 5 - (value / top) * (HEIGHT - 10);
  return (
    <figure className="metric-chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} width="100%" height={HEIGHT} role="img">
        {Object.entries(lines).map(([series, points], index) => (
          <polyline
            key={series}
            data-series={series}
            fill="none"
            stroke={COLORS[index % COLORS.length]}
            strokeWidth="2"
            points={points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}
          />
        ))}
      </svg>
      <figcaption>
        {metric}: {all.length} points, highest {top.toPrecision(3)}
        {error && <span className="error"> (could not refresh: {error})</span>}
      </figcaption>
    </figure>
  );
}
