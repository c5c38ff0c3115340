// A soak of the map wall: the page stays open in Debian's Chromium (headless) while reports
// stream in through the API and the wall is used the way an operation centre uses it (time
// windows switched, heat and KPI modes toggled, a district opened and left). Every minute it
// puts the wall back in the same state (the whole city, 30 days, heat), forces garbage
// collections (in the page and in each of its workers) and samples the page's memory, its
// workers' heaps and its object counts, so that samples differ by time alone and not by what
// happened to be on screen. Each sample also takes the browser's own account of its memory by
// process and allocator (memory-infra). At the end it prints the trend of each per hour after
// a warm-up, and fails when one keeps growing. With SOAK_HEAP_DIFF=1 it also takes heap
// snapshots of the page and of its workers after the warm-up and at the end and prints which
// kinds of object grew.
//
// Environment: WALL_URL, WALL_KEY (the wall's read-only key), ADMIN_KEY (to create reports),
// SOAK_MINUTES (default 30), SOAK_RATE (reports per second, default 2), SOAK_HEAP_DIFF,
// CHROMIUM.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { openPage } from './cdp.mjs';

const base = process.env.WALL_URL;
const wallKey = process.env.WALL_KEY;
const adminKey = process.env.ADMIN_KEY;
const minutes = Number(process.env.SOAK_MINUTES ?? 30);
const rate = Number(process.env.SOAK_RATE ?? 2);
if (!base || !wallKey || !adminKey || !(minutes >= 2) || !(rate > 0)) {
  console.error('set WALL_URL, WALL_KEY and ADMIN_KEY (SOAK_MINUTES >= 2, SOAK_RATE > 0)');
  process.exit(2);
}

// The page is driven over the DevTools protocol without Playwright, which would turn on the
// Network domain and so make Chromium keep a copy of every response (see cdp.mjs).
const page = await openPage({ width: 1920, height: 1080 });
const errors = [];
page.on('Runtime.consoleAPICalled', (e) => {
  if (e.type === 'error') errors.push(e.args.map((a) => a.value ?? a.description).join(' '));
});
page.on('Runtime.exceptionThrown', (e) => errors.push(e.exceptionDetails.exception?.description ?? e.exceptionDetails.text));
await page.goto(`${base}/?key=${encodeURIComponent(wallKey)}`);
await page.waitForFunction(() => document.body.dataset.ready, 60000);
await page.send('Performance.enable');
const home = await page.evaluate(() => {
  const m = window.gridscopeWall.map();
  return { zoom: m.getZoom(), center: m.getCenter().toArray() };
});

/**
 * Proportional memory (PSS) of the browser this script started, summed over its processes
 * (page, GPU, utility), MB. PSS shares each shared page among the processes that map it, so
 * the sum counts every page once, where a sum of RSS counts shared pages in every process.
 */
function browserPssMb() {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=']).toString().trim().split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
  const mine = new Set([process.pid]);
  let total = 0;
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of rows) {
      if (mine.has(ppid) && !mine.has(pid)) {
        mine.add(pid);
        total += pssKb(pid);
        grew = true;
      }
    }
  }
  return total / 1024;
}

/** A process's PSS in kB (0 when it has gone). */
function pssKb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * The heaps of the page and of its workers (MB, and how many workers) as what survives three
 * full collections a second apart: the least of the three readings of each. One reading may
 * catch a tile in the middle of being parsed or a response being handled; what is leaked
 * survives every collection.
 */
async function retainedHeaps() {
  let pageMb = Infinity;
  let workersMb = Infinity;
  let workers = 0;
  for (let i = 0; i < 3; i += 1) {
    if (i > 0) await page.waitForTimeout(1000);
    await page.send('HeapProfiler.collectGarbage');
    await page.sendToWorkers('HeapProfiler.collectGarbage');
    const { usedSize } = await page.send('Runtime.getHeapUsage');
    const heaps = await page.sendToWorkers('Runtime.getHeapUsage');
    pageMb = Math.min(pageMb, usedSize / 1e6);
    workersMb = Math.min(workersMb, heaps.reduce((t, h) => t + h.usedSize, 0) / 1e6);
    workers = heaps.length;
  }
  return { pageMb, workersMb, workers };
}

/** Memory and object counts after full collections. */
async function sample() {
  const heaps = await retainedHeaps();
  const { metrics } = await page.send('Performance.getMetrics');
  const dump = await page.memoryDump();
  const infra = {};
  for (const [kind, { footprintMb, allocators }] of Object.entries(dump)) {
    infra[`${kind}: footprint`] = footprintMb;
    for (const [name, mb] of Object.entries(allocators)) infra[`${kind}: ${name}`] = mb;
  }
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  const page_ = await page.evaluate(() => ({
    elements: document.getElementsByTagName('*').length,
    feed: document.querySelectorAll('#feed li').length,
    live: window.gridscopeWall.map().queryRenderedFeatures({ layers: ['live-circle'] }).length,
  }));
  return {
    heapMb: heaps.pageMb,
    workersMb: heaps.workersMb,
    workers: heaps.workers,
    browserMb: browserPssMb(),
    nodes: m.Nodes,
    listeners: m.JSEventListeners,
    documents: m.Documents,
    elements: page_.elements,
    feed: page_.feed,
    live: page_.live,
    infra,
  };
}

let created = 0;
let failedCreates = 0;
async function createReport() {
  const lon = 113.55 + Math.random() * 0.2;
  const lat = 34.7 + Math.random() * 0.12;
  const resp = await fetch(`${base}/api/v1/reports`, {
    method: 'POST',
    headers: { 'X-API-Key': adminKey, 'content-type': 'application/json' },
    body: JSON.stringify({ channel: 'patrol', category: 'matter:06002', description: 'soak', location: { lon, lat } }),
  });
  if (resp.status === 201) created += 1;
  else failedCreates += 1;
}

/** One round of what a person at the wall does. */
async function useTheWall(round) {
  const windows = ['today', '7d', '30d'];
  await page.click(`#timebar [data-window="${windows[round % windows.length]}"]`);
  await page.click(`#mode [data-mode="${round % 2 ? 'kpi' : 'heat'}"]`);
  if (round % 3 === 0) {
    // In to street level somewhere in the centre, then back to the whole city.
    const zoom = await page.evaluate(() => window.gridscopeWall.map().getZoom());
    const lon = 113.6 + (round % 5) * 0.02;
    await page.evaluate(([lon_]) => window.gridscopeWall.map().jumpTo({ zoom: 11, center: [lon_, 34.76] }), [lon]);
    await page.waitForTimeout(3000);
    await page.evaluate(([z]) => window.gridscopeWall.map().jumpTo({ zoom: z, center: [113.63, 34.75] }), [zoom]);
  }
}

/** The state every sample is taken in: the whole city as first shown, the last 30 days, heat. */
async function settle() {
  await page.click('#timebar [data-window="30d"]');
  await page.click('#mode [data-mode="heat"]');
  await page.evaluate((h) => window.gridscopeWall.map().jumpTo(h), home);
  await page.waitForTimeout(4000);
}

/**
 * Object counts and sizes by constructor in a heap snapshot taken now, of the page or (with
 * `send` = `page.sendToWorkers`) of its workers together.
 */
async function heapCensus(send = page.send) {
  // Each snapshot comes in chunks on the session of its page or worker.
  const chunks = new Map();
  const collect = (e, session) => chunks.set(session, (chunks.get(session) ?? '') + e.chunk);
  page.on('HeapProfiler.addHeapSnapshotChunk', collect);
  await send('HeapProfiler.collectGarbage');
  await send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  page.off('HeapProfiler.addHeapSnapshotChunk', collect);
  const census = new Map();
  for (const text of chunks.values()) addToCensus(census, JSON.parse(text));
  return census;
}

/** Adds the objects of a heap snapshot to `census` by constructor. */
function addToCensus(census, snap) {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]];
    // Objects and closures by constructor or function name; values (strings, numbers, code)
    // by their kind alone, as their names are their contents.
    const named = type === 'object' || type === 'closure' || type === 'native';
    const key = named ? `${type}:${snap.strings[snap.nodes[i + iName]]}`.slice(0, 80) : type;
    const c = census.get(key) ?? { count: 0, bytes: 0 };
    c.count += 1;
    c.bytes += snap.nodes[i + iSize];
    census.set(key, c);
  }
}

/** Prints the kinds of object that grew most between two censuses. */
function printGrowth(what, before, after) {
  const rows = [...after].map(([k, a]) => {
    const b = before.get(k) ?? { count: 0, bytes: 0 };
    return { k, count: a.count - b.count, bytes: a.bytes - b.bytes };
  }).sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((t, r) => t + r.bytes, 0);
  console.log(`${what} heap snapshot growth: ${(total / 1e6).toFixed(2)} MB in total; largest:`);
  for (const r of rows.slice(0, 15)) {
    console.log(`  ${(r.bytes / 1e3).toFixed(1).padStart(9)} kB ${String(r.count).padStart(7)} objects  ${r.k}`);
  }
}

const heapDiff = process.env.SOAK_HEAP_DIFF === '1';
let censusAfterWarmup = null;
let workersCensusAfterWarmup = null;
const samples = [];
const started = Date.now();
const end = started + minutes * 60000;
const creator = (async () => {
  const gap = 1000 / rate;
  let next = Date.now();
  while (Date.now() < end) {
    next += gap;
    await createReport().catch(() => { failedCreates += 1; });
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
})();
for (let minute = 1; minute <= minutes; minute += 1) {
  await useTheWall(minute).catch((e) => errors.push(`using the wall: ${e.message}`));
  const wait = started + minute * 60000 - 5000 - Date.now();
  if (wait > 0) await page.waitForTimeout(wait);
  await settle().catch((e) => errors.push(`settling the wall: ${e.message}`));
  const s = await sample();
  samples.push({ minute, ...s });
  console.log(`minute ${String(minute).padStart(3)}: heap ${s.heapMb.toFixed(1)} MB, workers' heaps ${s.workersMb.toFixed(1)} MB (${s.workers}), browser PSS ${s.browserMb.toFixed(0)} MB `
    + `(footprints: renderers ${(s.infra['Renderer: footprint'] ?? 0).toFixed(0)} MB, GPU ${(s.infra['GPU Process: footprint'] ?? 0).toFixed(0)} MB), DOM nodes ${s.nodes}, `
    + `listeners ${s.listeners}, elements ${s.elements}, feed ${s.feed}, live points ${s.live}, reports sent ${created}`);
  if (heapDiff && minute === Math.floor(minutes / 3)) {
    censusAfterWarmup = await heapCensus();
    workersCensusAfterWarmup = await heapCensus(page.sendToWorkers);
  }
}
await creator;
if (censusAfterWarmup) {
  printGrowth('the page\'s', censusAfterWarmup, await heapCensus());
  printGrowth('the workers\'', workersCensusAfterWarmup, await heapCensus(page.sendToWorkers));
}

/** The median of some numbers (0 for none). */
function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return 0;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * The trend per hour of the measure `of(sample)` over the samples after the first third
 * (warm-up), with its mean. `slope` is the Theil–Sen estimate (the median of the slopes
 * between every two samples), which follows the level the measure keeps rather than the
 * moments it jumps between a few cache states (a worker holding one more parsed tile, say);
 * `leastSquares` is the ordinary fit, for comparison.
 */
function perHour(of) {
  const kept = samples.slice(Math.floor(samples.length / 3));
  const xs = kept.map((s) => s.minute);
  const ys = kept.map((s) => of(s) ?? 0);
  const n = xs.length;
  const mx = xs.reduce((a, x) => a + x, 0) / n;
  const my = ys.reduce((a, y) => a + y, 0) / n;
  const sxy = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0);
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const pairs = [];
  for (let i = 0; i < n; i += 1) {
    for (let j = i + 1; j < n; j += 1) pairs.push((ys[j] - ys[i]) / (xs[j] - xs[i]));
  }
  return { slope: median(pairs) * 60, leastSquares: sxx ? (sxy / sxx) * 60 : 0, mean: my };
}

let failed = false;
console.log(`soak: ${minutes} min, ${created} reports created (${failedCreates} failed), ${errors.length} page errors`);
// A leak shows as steady growth; noise from caches and collections does not. Each measure may
// drift by at most this share of its mean per hour, i.e. less than doubling over two days.
const limits = { heapMb: 0.02, workersMb: 0.02, browserMb: 0.02, nodes: 0.02, listeners: 0.02, elements: 0.02 };
const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;
for (const [key, share] of Object.entries(limits)) {
  const { slope, leastSquares, mean } = perHour((s) => s[key]);
  const ok = slope <= share * mean;
  failed ||= !ok;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${key}: mean ${mean.toFixed(1)}, trend ${signed(slope)} per hour (limit +${(share * mean).toFixed(2)}; least squares ${signed(leastSquares)})`);
}
// Where the browser's memory goes, by its own account: the largest trends among its processes'
// allocators, to tell which part of the browser holds what PSS gains.
const infraKeys = new Set(samples.flatMap((s) => Object.keys(s.infra)));
const infraTrends = [...infraKeys].map((k) => ({ k, ...perHour((s) => s.infra[k]) }))
  .filter((t) => t.mean >= 1)
  .sort((a, b) => Math.abs(b.slope) - Math.abs(a.slope));
console.log('largest trends in the browser\'s memory-infra (MB, per hour):');
for (const t of infraTrends.slice(0, 10)) {
  console.log(`  ${t.k.padEnd(40)} mean ${t.mean.toFixed(1).padStart(7)}, trend ${t.slope >= 0 ? '+' : ''}${t.slope.toFixed(2)}`);
}
if (errors.length) {
  failed = true;
  console.log(`FAIL page errors: ${errors.slice(0, 5).join(' | ')}`);
}
if (failedCreates) {
  failed = true;
  console.log(`FAIL ${failedCreates} report creations failed`);
}
await page.close();
process.exit(failed ? 1 : 0);
