import { useEffect, useState } from "react";
import { API_BASE, fetchNewRows, startPolling } from "./api.js";

// The recent log entries, newest first, fetched with the id cursor; filtered by the API
// (`min_level`, `q`). React renders the message as text: it is data, never HTML.
export function LogTable({ minLevel = "", search = "", minutes = 15, maxRows = 200, base = API_BASE }) {
  const [entries, setEntries] = useState([]);
  const [error, setError] = useState(null);

  useEffect(() => {
    setEntries([]); // a new filter starts a new cursor
    const query = new URLSearchParams();
    if (minLevel) query.set("min_level", minLevel);
    if (search) query.set("q", search);
    const cursor = { after: 0, since: Date.now() / 1000 - minutes * 60 };
    return startPolling(async (signal) => {
      try {
        const added = await fetchNewRows(`${base}/logs?${query}`, cursor, signal);
        if (signal.aborted) return; // the filter changed while this page was on its way
        if (added.length > 0) {
          setEntries((current) => [...added.reverse(), ...current].slice(0, maxRows));
        }
        setError(null);
      } catch (failure) {
        if (!signal.aborted) setError(failure.message);
      }
    }, 2000);
  }, [minLevel, search, minutes, maxRows, base]);

  return (
    <table className="log-table">
      <caption>{error ? `could not refresh: ${error}` : `${entries.length} entries`}</caption>
      <thead>
        <tr><th>Time</th><th>Level</th><th>Message</th></tr>
      </thead>
      <tbody>
        {entries.map((entry) => (
          <tr key={entry.id} className={entry.level}>
            <td>{new Date(entry.timestamp * 1000).toLocaleTimeString()}</td>
            <td>{entry.level}</td>
            <td>{entry.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
