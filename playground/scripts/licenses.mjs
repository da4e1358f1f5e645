// A Vite plugin that lists every npm package whose code ends up in the built pages (the main
// bundles and the editor workers) with its version and licence, into dist/licenses.txt —
// served by landql at /licenses.txt and summarised in the repository's NOTICE. Packages that
// are only build tools never appear: only modules the bundler actually included count.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const seen = new Set();

/**
 * The package directory of a module id under node_modules, if any.
 * @param {string} id
 */
function packageDir(id) {
  const clean = id.replace(/^\0/, "").split("?")[0];
  const at = clean.lastIndexOf("/node_modules/");
  if (at < 0) return null;
  const rest = clean.slice(at + "/node_modules/".length).split("/");
  const name = rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  return join(clean.slice(0, at), "node_modules", name);
}

/**
 * @param {{ outDir: string }} opts
 * @returns {import("vite").Plugin}
 */
export function licenses({ outDir }) {
  return {
    name: "landql-licenses",
    /** @param {{ id: string }} info */
    moduleParsed(info) {
      const dir = packageDir(info.id);
      if (dir) seen.add(dir);
    },
    // Fonts and other assets imported from packages count too.
    /** @param {string} id */
    load(id) {
      const dir = packageDir(id);
      if (dir) seen.add(dir);
      return null;
    },
    closeBundle() {
      const rows = new Map();
      for (const dir of seen) {
        let pkg;
        try {
          pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
        } catch {
          continue;
        }
        const license = typeof pkg.license === "string" ? pkg.license : pkg.license?.type ?? "UNKNOWN";
        rows.set(`${pkg.name}@${pkg.version}`, license);
      }
      if (rows.size === 0) return; // a worker's own build: the main build writes the list
      const lines = [...rows].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, l]) => `${p}\t${l}`);
      const byLicense = new Map();
      for (const l of rows.values()) byLicense.set(l, (byLicense.get(l) ?? 0) + 1);
      const summary = [...byLicense].sort().map(([l, n]) => `${l}: ${n}`).join(", ");
      writeFileSync(
        join(outDir, "licenses.txt"),
        `Third-party packages in landql's web pages (package@version<TAB>licence).\n` +
          `Their licence texts are in each package, as published on the npm registry.\n` +
          `${summary}\n\n${lines.join("\n")}\n`,
      );
    },
  };
}
