// The pages landql serves, built as one multi-page app. `npm run build` writes `dist/`, which
// is committed and embedded in the binary by `api` (see ARCHITECTURE.md, `playground/`), so
// `cargo build` never needs Node. `npm run dev` serves the sources with hot reload and proxies
// the API to a running `landql dev` (LANDQL_URL, default http://127.0.0.1:8080).
import { resolve } from "node:path";
import { defineConfig } from "vite";
import { licenses } from "./scripts/licenses.mjs";

const api = process.env.LANDQL_URL ?? "http://127.0.0.1:8080";
const page = (name: string) => resolve(import.meta.dirname, `${name}.html`);

/** In `npm run dev`, the same paths as the server: /search → search.html, /property/ID → property.html. */
const routes = {
  name: "landql-routes",
  configureServer(server: { middlewares: { use: (f: (req: { url?: string }, res: unknown, next: () => void) => void) => void } }) {
    server.middlewares.use((req, _res, next) => {
      const path = (req.url ?? "/").split("?")[0];
      const query = (req.url ?? "").slice(path.length);
      if (path === "/search" || path === "/verify" || path === "/graphiql" || path === "/status") req.url = `${path}.html${query}`;
      else if (path.startsWith("/property/")) req.url = `/property.html${query}`;
      next();
    });
  },
};

export default defineConfig({
  base: "/",
  plugins: [routes, licenses({ outDir: resolve(import.meta.dirname, "dist") })],
  worker: { plugins: () => [licenses({ outDir: resolve(import.meta.dirname, "dist") })] },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Hashed names: the server marks everything under /assets/ immutable.
    assetsDir: "assets",
    // Inline nothing as data: URLs beyond tiny icons; the CSP allows data: images only.
    assetsInlineLimit: 1024,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: {
        index: page("index"),
        search: page("search"),
        property: page("property"),
        verify: page("verify"),
        graphiql: page("graphiql"),
        status: page("status"),
      },
      // GraphiQL's React libraries carry "use client" / "use no memo" directives, meaningless
      // in a browser bundle; the bundler would warn about each one.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
  optimizeDeps: {
    // GraphiQL: `npm run dev` serves Monaco's GraphQL worker (src/graphiql/workers.ts) unbundled,
    // and some of what it imports is CommonJS: pre-bundle those, and graphql itself so that the
    // worker and graphql-language-service share one copy of it.
    include: ["graphql", "graphql-language-service", "picomatch-browser"],
  },
  server: {
    proxy: {
      "/graphql": { target: api, ws: true },
      "/readyz": api,
      "/healthz": api,
      "/metrics": api,
    },
  },
});
