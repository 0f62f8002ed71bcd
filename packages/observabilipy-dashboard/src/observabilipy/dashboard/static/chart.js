// A small line chart on a <canvas>: time on x, values on y, one colour per series.
// The canvas exposes what it shows for tests and tools: data-points (points drawn),
// data-series (lines drawn) and data-last (each line's newest value, as JSON).

export const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const PAD = { left: 64, right: 16, top: 12, bottom: 28 };

/** A number in few characters: 1.23k, 4.5M, 0.0123. */
export function formatValue(value) {
  if (!Number.isFinite(value)) return String(value);
  const size = Math.abs(value);
  if (size >= 1e9) return (value / 1e9).toPrecision(3) + "G";
  if (size >= 1e6) return (value / 1e6).toPrecision(3) + "M";
  if (size >= 1e4) return (value / 1e3).toPrecision(3) + "k";
  if (size === 0 || size >= 1) return String(Math.round(value * 100) / 100);
  return value.toPrecision(3);
}

function formatTime(seconds, withSeconds) {
  const date = new Date(seconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  const text = `${two(date.getHours())}:${two(date.getMinutes())}`;
  return withSeconds ? `${text}:${two(date.getSeconds())}` : text;
}

function yRange(series) {
  let low = Infinity;
  let high = -Infinity;
  for (const line of series) {
    for (const [, v] of line.points) {
      if (Number.isFinite(v)) {
        low = Math.min(low, v);
        high = Math.max(high, v);
      }
    }
  }
  if (low === Infinity) return [0, 1];
  low = Math.min(low, 0);
  if (high <= low) high = low + 1;
  return [low, high + (high - low) * 0.08];
}

/** Draw `series` ([{label, points: [[t, v], ...]}]) over the time range [from, to]. */
export function drawChart(canvas, series, from, to) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 260;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const [low, high] = yRange(series);
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + ((t - from) / (to - from)) * plotW;
  const y = (v) => PAD.top + (1 - (v - low) / (high - low)) * plotH;

  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#555";
  ctx.strokeStyle = "#e3e3e3";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let k = 0; k <= 4; k += 1) {
    const value = low + ((high - low) * k) / 4;
    const at = y(value);
    ctx.beginPath();
    ctx.moveTo(PAD.left, at);
    ctx.lineTo(width - PAD.right, at);
    ctx.stroke();
    ctx.fillText(formatValue(value), PAD.left - 6, at);
  }
  ctx.textBaseline = "top";
  const withSeconds = to - from <= 900;
  for (let k = 0; k <= 5; k += 1) {
    const t = from + ((to - from) * k) / 5;
    ctx.textAlign = k === 0 ? "left" : k === 5 ? "right" : "center";
    ctx.fillText(formatTime(t, withSeconds), x(t), height - PAD.bottom + 8);
  }

  let drawn = 0;
  const last = {};
  series.forEach((line, index) => {
    const visible = line.points.filter(([t, v]) => t >= from && t <= to && Number.isFinite(v));
    if (!visible.length) return;
    ctx.strokeStyle = ctx.fillStyle = COLORS[index % COLORS.length];
    ctx.lineWidth = 1.75;
    ctx.beginPath();
    visible.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
    ctx.stroke();
    if (visible.length === 1) {
      const [t, v] = visible[0];
      ctx.fillRect(x(t) - 2, y(v) - 2, 4, 4);
    }
    drawn += visible.length;
    last[line.label] = visible[visible.length - 1][1];
  });
  canvas.dataset.points = String(drawn);
  canvas.dataset.series = String(Object.keys(last).length);
  canvas.dataset.last = JSON.stringify(last);
  return drawn;
}
