// The log viewer: pages of /logs/json appended as table rows, then polling with the
// `after` id cursor, so no entry is skipped or shown twice. Log text is data from
// anywhere: it only ever becomes text nodes (textContent), never markup.

import { getJSON } from "./api.js";

const PAGE = 500; // entries per request
const PAGES_PER_POLL = 10; // catching up on a busy log: the rest waits for the next poll
const MAX_ROWS = 2000; // the oldest rows leave the table first
const LEVELS = new Set(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]);

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function attributesText(attributes) {
  return Object.entries(attributes || {})
    .map(([name, value]) => `${name}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
}

function timeText(seconds) {
  const date = new Date(seconds * 1000);
  return date.toLocaleTimeString([], { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

export class LogViewer {
  constructor({ rows, box, counter, follow }) {
    this.rows = rows;
    this.box = box;
    this.counter = counter;
    this.follow = follow;
    this.generation = 0;
    this.inflight = null;
    this.reset({ minLevel: "", q: "", since: null });
  }

  /** Start over with new filters: the table empties and the cursor forgets its place. */
  reset({ minLevel, q, since }) {
    this.generation += 1;
    this.minLevel = minLevel;
    this.q = q;
    this.since = since;
    this.after = null;
    this.rows.replaceChildren();
    this.updateCount();
  }

  /** Fetch what is new since the last entry shown. */
  async poll() {
    const generation = this.generation;
    if (this.inflight === generation) return;
    this.inflight = generation;
    try {
      for (let page = 0; page < PAGES_PER_POLL; page += 1) {
        const params = { limit: PAGE, min_level: this.minLevel, q: this.q };
        if (this.after === null) params.since = this.since;
        else params.after = this.after;
        const answer = await getJSON("logs/json", params);
        if (generation !== this.generation) return; // the filters changed meanwhile
        this.append(answer.items);
        if (answer.next_after !== null) this.after = answer.next_after;
        if (answer.count < PAGE) return;
      }
    } finally {
      if (this.inflight === generation) this.inflight = null;
    }
  }

  append(entries) {
    if (!entries.length) return;
    const stuck = this.box.scrollTop + this.box.clientHeight >= this.box.scrollHeight - 4;
    const fragment = document.createDocumentFragment();
    for (const entry of entries) {
      const row = document.createElement("tr");
      const level = LEVELS.has(entry.level) ? entry.level : "OTHER";
      row.dataset.id = String(entry.id);
      row.dataset.level = level;
      row.append(
        cell(timeText(entry.timestamp), "time"),
        cell(String(entry.level), "level level-" + level),
        cell(String(entry.message), "message"),
        cell(attributesText(entry.attributes), "attributes"),
      );
      fragment.append(row);
    }
    this.rows.append(fragment);
    while (this.rows.childElementCount > MAX_ROWS) this.rows.firstElementChild.remove();
    this.updateCount();
    if (this.follow.checked || stuck) this.box.scrollTop = this.box.scrollHeight;
  }

  updateCount() {
    const count = this.rows.childElementCount;
    this.counter.dataset.count = String(count);
    this.counter.textContent = `${count} ${count === 1 ? "entry" : "entries"}`;
  }
}
