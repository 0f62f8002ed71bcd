import { useState } from "react";
import { LogTable } from "./LogTable.jsx";
import { MetricChart } from "./MetricChart.jsx";

// The panel to embed in a React admin: a chart and a filtered log table. In react-admin,
// pass it as the dashboard: <Admin dashboard={ObservabilityPanel} ...>.
export function ObservabilityPanel({ metric = "http_requests_total" }) {
  const [minLevel, setMinLevel] = useState("");
  const [typed, setTyped] = useState("");
  const [search, setSearch] = useState("");
  return (
    <section style={{ fontFamily: "system-ui, sans-serif", maxWidth: 1000 }}>
      <h2>Metrics</h2>
      <MetricChart metric={metric} />
      <h2>Logs</h2>
      <form onSubmit={(event) => { event.preventDefault(); setSearch(typed.trim()); }}>
        <label>
          Level{" "}
          <select value={minLevel} onChange={(event) => setMinLevel(event.target.value)}>
            <option value="">any</option>
            <option value="INFO">INFO and above</option>
            <option value="WARNING">WARNING and above</option>
            <option value="ERROR">ERROR and above</option>
          </select>
        </label>{" "}
        <label>
          Search <input type="search" value={typed} onChange={(event) => setTyped(event.target.value)} />
        </label>
      </form>
      <LogTable minLevel={minLevel} search={search} />
    </section>
  );
}
