// After `vite build`: a brotli copy (quality 11) of every text asset of 1 KiB or more, written
// beside it as `<name>.br`. The server sends it to clients that accept br, so the largest
// bundles are compressed once, at the best ratio, instead of on every request. Brotli output
// is deterministic, so CI can rebuild and compare `dist/` with what is committed.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants } from "node:zlib";

const dist = new URL("../dist/", import.meta.url).pathname;
const text = /\.(js|mjs|css|html|svg|json|txt|map|ttf)$/;

function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (text.test(name)) compress(path);
  }
}

function compress(path) {
  const raw = readFileSync(path);
  if (raw.length < 1024) return;
  const br = brotliCompressSync(raw, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });
  if (br.length < raw.length) writeFileSync(`${path}.br`, br);
}

walk(dist);
