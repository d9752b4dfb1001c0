// Builds the console into ../api/console (committed, shipped in the Python package).
// Reproducible: pinned versions in package-lock.json, no timestamps, no source maps.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

const out = new URL("../api/console/", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: "src/main.js", style: "src/style.css" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome110", "firefox110", "safari16"],
  outdir: out,
  loader: { ".png": "file", ".svg": "file" },
  assetNames: "img/[name]-[hash]",
  legalComments: "linked",
  logLevel: "info",
});
copyFileSync("src/index.html", out + "index.html");
