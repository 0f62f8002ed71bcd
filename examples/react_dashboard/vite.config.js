import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` (and `npm run preview`) proxy the observability endpoints to the app
// serving them: OBSERVABILIPY_URL, by default the Chart.js example's server.
export default defineConfig({
  base: "./", // the built page works wherever the app serves it
  plugins: [react()],
  server: {
    proxy: { "/observability": process.env.OBSERVABILIPY_URL ?? "http://127.0.0.1:8000" },
  },
});
