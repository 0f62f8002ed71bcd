// Where the observability endpoints answer, relative to the page: the app serving the
// built page, or Vite's dev proxy. Set VITE_OBSERVABILIPY_BASE at build time to change it.
export const API_BASE = import.meta.env.VITE_OBSERVABILIPY_BASE ?? "observability";

const PAGE_SIZE = 1000;

// One GET answered with NDJSON (one JSON document per line) as an array of rows.
export async function fetchNdjson(url, signal) {
  const response = await fetch(url, { signal, headers: { Accept: "application/x-ndjson" } });
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status}`);
  }
  const text = await response.text();
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

// Every row newer than the cursor, page after page: `since` (a time) the first time,
// then `after` (the last id seen), so no row is skipped or read twice.
export async function fetchNewRows(url, cursor, signal) {
  const rows = [];
  for (;;) {
    const position = cursor.after > 0 ? `after=${cursor.after}` : `since=${cursor.since}`;
    const page = await fetchNdjson(`${url}&limit=${PAGE_SIZE}&${position}`, signal);
    for (const row of page) {
      rows.push(row);
      cursor.after = row.id;
    }
    if (page.length < PAGE_SIZE) {
      return rows;
    }
  }
}

// Call `poll` now and again `intervalMs` after each answer, until the returned stop().
export function startPolling(poll, intervalMs) {
  const controller = new AbortController();
  let timer;
  async function run() {
    await poll(controller.signal);
    if (!controller.signal.aborted) {
      timer = setTimeout(run, intervalMs);
    }
  }
  run();
  return () => {
    controller.abort();
    clearTimeout(timer);
  };
}
