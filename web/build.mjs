// Bundles the map wall into one directory the server embeds: index.html plus hashed assets
// (safe to cache forever). Usage: node build.mjs OUT_DIR
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT_DIR');
  process.exit(2);
}
mkdirSync(join(out, 'assets'), { recursive: true });
const result = await esbuild.build({
  entryPoints: ['src/main.js'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.startsWith('main-') && f.endsWith('.js'));
const css = outputs.find((f) => f.startsWith('main-') && f.endsWith('.css'));
if (!js || !css) {
  console.error(`the bundle lacks its script or stylesheet: ${outputs.join(', ')}`);
  process.exit(1);
}
const page = readFileSync('index.html', 'utf8')
  .replace('%MAIN_JS%', `/assets/${js}`)
  .replace('%MAIN_CSS%', `/assets/${css}`);
writeFileSync(join(out, 'index.html'), page);
// MapLibre runs its worker from a module of its own, loaded by URL (versioned by ?v=).
copyFileSync('node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs', join(out, 'assets', 'maplibre-gl-worker.mjs'));
console.log(`map wall built: ${outputs.join(', ')}`);
