// Bundles src/main.ts into dist/app.js (ESM for the browser) and copies the page's HTML and CSS
// beside it. The local stack serves dist/index.html at `/` and the rest under `/billing-page/`.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const dist = here("dist/");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [here("src/main.ts")],
  outfile: here("dist/app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  logLevel: "warning",
});
await copyFile(here("src/index.html"), here("dist/index.html"));
await copyFile(here("src/style.css"), here("dist/style.css"));
