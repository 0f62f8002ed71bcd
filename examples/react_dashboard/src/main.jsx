import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ObservabilityPanel } from "./ObservabilityPanel.jsx";

// The metric charted comes from the address (?metric=...), http_requests_total otherwise.
const metric = new URLSearchParams(location.search).get("metric") ?? "http_requests_total";

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <ObservabilityPanel metric={metric} />
  </StrictMode>,
);
