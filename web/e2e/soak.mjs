// A soak of the map wall: the page stays open in Debian's Chromium (headless) while reports stream
// in through the API and the wall is used the way an operation centre uses it (time windows, heat
// and KPI modes, metrics and trend switched, zoomed in and out, drilled down two levels and back,
// a report's card opened and closed, the replay run). Each round (a minute, more when the server
// is restarted in it) does all of that, then it puts the wall back in the same state (the whole
// city, 30 days, heat), empties MapLibre's bounded caches of tiles out of view (which hold the
// places last looked at), forces garbage collections (in the page and in each of its workers) and
// samples the page's memory, its workers' heaps and its object counts, so that samples differ by
// time alone and not by what happened to be on screen. Each sample also takes the browser's own
// account of its memory by process and allocator (memory-infra). At the end it prints the trend of
// each per hour after a warm-up, and fails when one keeps growing. Each sample takes heap
// snapshots of the page and of its workers, to follow their data apart from the compiled code V8
// keeps of the program and that code by the function it belongs to, and at the end prints which
// kinds of object grew after the warm-up.
//
// Every few minutes the server is stopped (SIGTERM and SIGKILL in turn) and kept away for a
// while as the wall is looked at somewhere new, so that tiles fail to load; the wall must notice,
// reconnect by itself once the server is back, show new reports again and load the tiles that
// failed. Reports are created the way a reporting app would: retried with their idempotency key
// while the server is away, and every acknowledged one must be stored at the end.
//
// Environment: WALL_URL, WALL_KEY (the wall's read-only key), ADMIN_KEY (to create reports),
// SOAK_MINUTES (default 30), SOAK_RATE (reports per second, default 2), SERVER_DIR (where the
// server's supervisor keeps `server.pid` and waits while `hold` exists; no restarts without
// it), SOAK_RESTART_MINUTES (default 10), CHROMIUM.

import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { openPage } from './cdp.mjs';

const base = process.env.WALL_URL;
const wallKey = process.env.WALL_KEY;
const adminKey = process.env.ADMIN_KEY;
const minutes = Number(process.env.SOAK_MINUTES ?? 30);
const rate = Number(process.env.SOAK_RATE ?? 2);
const serverDir = process.env.SERVER_DIR;
const restartEvery = serverDir ? Number(process.env.SOAK_RESTART_MINUTES ?? 10) : 0;
if (!base || !wallKey || !adminKey || !(minutes >= 2) || !(rate > 0)) {
  console.error('set WALL_URL, WALL_KEY and ADMIN_KEY (SOAK_MINUTES >= 2, SOAK_RATE > 0)');
  process.exit(2);
}

// The page is driven over the DevTools protocol without Playwright, which would turn on the
// Network domain and so make Chromium keep a copy of every response (see cdp.mjs).
const page = await openPage({ width: 1920, height: 1080 });
const errors = [];
let tileFailures = 0;
page.on('Runtime.consoleAPICalled', (e) => {
  const text = e.args.map((a) => a.value ?? a.description).join(' ');
  if (e.type === 'error') errors.push(text);
  if (e.type === 'warning' && text.startsWith('tiles of')) tileFailures += 1;
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
 * The heaps of the page and of its workers (MB, and how many workers), the page's DOM nodes and
 * the event listeners the browser counts, as what survives three full collections a second
 * apart: the least of the three readings of each. One reading may catch a tile in the middle of
 * being parsed, a response being handled or detached nodes not yet swept (the counts then sit
 * in a second, higher state); what is leaked survives every collection.
 */
async function retainedHeaps() {
  let pageMb = Infinity;
  let workersMb = Infinity;
  let nodes = Infinity;
  let listeners = Infinity;
  let workers = 0;
  for (let i = 0; i < 3; i += 1) {
    if (i > 0) await page.waitForTimeout(1000);
    await page.send('HeapProfiler.collectGarbage');
    await page.sendToWorkers('HeapProfiler.collectGarbage');
    const { usedSize } = await page.send('Runtime.getHeapUsage');
    const heaps = await page.sendToWorkers('Runtime.getHeapUsage');
    const { metrics } = await page.send('Performance.getMetrics');
    const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
    nodes = Math.min(nodes, m.Nodes);
    listeners = Math.min(listeners, m.JSEventListeners);
    pageMb = Math.min(pageMb, usedSize / 1e6);
    workersMb = Math.min(workersMb, heaps.reduce((t, h) => t + h.usedSize, 0) / 1e6);
    workers = heaps.length;
  }
  return { pageMb, workersMb, workers, nodes, listeners };
}

/**
 * The event listeners on what the page's scripts can still reach: every event target with a
 * JavaScript object (window, the document and its nodes, workers, media queries, abort signals,
 * the event stream) except nodes out of the document. The browser's own count also takes in
 * nodes removed from the document that it keeps for its own ends: the sources of the layout
 * shifts it records (the feed's rows moved down by each new report, kept while the shift is
 * buffered), whose number at a given moment depends on how many shifts happened lately; a
 * leaked listener stays on a reachable target or keeps its detached node in the heap's data.
 */
async function liveListeners() {
  const group = 'soak-listeners';
  try {
    const { result: proto } = await page.send('Runtime.evaluate', { expression: 'EventTarget.prototype', objectGroup: group });
    const { objects } = await page.send('Runtime.queryObjects', { prototypeObjectId: proto.objectId, objectGroup: group });
    const { result: live } = await page.send('Runtime.callFunctionOn', {
      objectId: objects.objectId,
      // The prototypes in the chain (Node.prototype, say) are found too: they are no targets.
      functionDeclaration: `function () {
        return this.filter((t) => !Object.hasOwn(t, 'constructor') && (!(t instanceof Node) || t.isConnected));
      }`,
      objectGroup: group,
    });
    const { result: targets } = await page.send('Runtime.getProperties', { objectId: live.objectId, ownProperties: true, objectGroup: group });
    let count = 0;
    for (const t of targets) {
      if (!/^\d+$/.test(t.name) || !t.value?.objectId) continue;
      const { listeners } = await page.send('DOMDebugger.getEventListeners', { objectId: t.value.objectId });
      count += listeners.length;
    }
    return count;
  } finally {
    await page.send('Runtime.releaseObjectGroup', { objectGroup: group });
  }
}

/** V8's internal kinds of code and shapes in a census, MB each, keyed `${where} ${kind}`. */
function internalKinds(where, census) {
  const kinds = {};
  for (const [key, { bytes }] of census) {
    if (key.startsWith('code') || key.startsWith('object shape')) kinds[`${where} ${key}`] = bytes / 1e6;
  }
  return kinds;
}

/**
 * The glyphs MapLibre has drawn for the labels and keeps for good (one bitmap per character and
 * font stack, never dropped): how many, and the MB of their bitmaps, which sit in the page's
 * array buffers. The cache is bounded by the characters of the names the wall can label, but it
 * fills slowly, as rounds drill down to districts and streets whose names show characters not
 * drawn before, so the buffers are judged less these bitmaps and the glyphs are counted apart.
 */
async function glyphCache() {
  return page.evaluate(() => {
    const { entries } = window.gridscopeWall.map().style.glyphManager;
    if (!entries) throw new Error('MapLibre has no glyphManager.entries any more');
    let glyphs = 0;
    let bytes = 0;
    for (const entry of Object.values(entries)) {
      for (const variant of Object.values(entry.glyphs)) {
        for (const g of Object.values(variant)) {
          glyphs += 1;
          bytes += g?.bitmap?.data?.byteLength ?? 0;
        }
      }
    }
    return { glyphs, mb: bytes / 1e6 };
  });
}

/**
 * The tiles MapLibre's workers hold, summed over workers and vector sources: decoded (`loaded`),
 * waiting to be parsed with their raw bytes (`parsing`) and being fetched (`loading`), and of
 * those decoded, how many the page no longer has (`orphans`, `orphansWithData` with a decoded
 * tile in them): a worker keeps a tile until the page tells it to drop it, so once the page has
 * let a tile go, the worker holding it keeps it for nothing.
 */
async function workerTiles() {
  const pageTiles = await page.evaluate(() => {
    const uids = [];
    for (const m of Object.values(window.gridscopeWall.map().style.tileManagers)) {
      for (const id of m.getIds()) uids.push(m.getTileByID(id).uid);
      for (const entries of Object.values(m._outOfViewCache.data)) for (const e of entries) uids.push(e.value.uid);
    }
    return uids;
  });
  const answers = await page.sendToWorkers('Runtime.evaluate', {
    expression: `((pageTiles) => {
      const counts = { loaded: 0, parsing: 0, loading: 0, orphans: 0, orphansWithData: 0, examples: [] };
      for (const byType of Object.values(self.worker?.workerSources ?? {})) {
        for (const source of Object.values(byType.vector ?? {})) {
          const state = source.tileState;
          if (!state) continue;
          counts.loaded += Object.keys(state.loaded).length;
          counts.parsing += Object.keys(state.parsing).length;
          counts.loading += Object.keys(state.loading).length;
          for (const [uid, tile] of Object.entries(state.loaded)) {
            if (pageTiles.has(Number(uid))) continue;
            counts.orphans += 1;
            if (tile.vectorTile) counts.orphansWithData += 1;
            const { z, x, y } = tile.tileID?.canonical ?? {};
            if (counts.examples.length < 5) {
              counts.examples.push(tile.source + ' ' + [z, x, y].join('/') + (tile.vectorTile ? ' decoded' : '') + (state.parsing[uid] ? ' with its bytes' : ''));
            }
          }
        }
      }
      return counts;
    })(new Set(${JSON.stringify(pageTiles)}))`,
    returnByValue: true,
  });
  const total = { loaded: 0, parsing: 0, loading: 0, orphans: 0, orphansWithData: 0, examples: [] };
  for (const a of answers) {
    const counts = a.result?.value;
    if (!counts) continue;
    for (const k of Object.keys(total)) {
      if (k === 'examples') total.examples.push(...counts.examples);
      else total[k] += counts[k];
    }
  }
  return total;
}

/**
 * The characters of the names the wall labels (districts, streets, communities, level-3 and
 * exclusive grids): what bounds MapLibre's glyph cache.
 */
async function labelCharacters() {
  const chars = new Set();
  for (const level of ['district', '1', '2', '3', 'exclusive']) {
    const resp = await fetch(`${base}/api/v1/grids?level=${level}&limit=50000`, { headers: { 'X-API-Key': adminKey } });
    if (!resp.ok) throw new Error(`listing the grids of level ${level}: HTTP ${resp.status}`);
    for (const f of (await resp.json()).features) for (const c of f.properties.name ?? '') chars.add(c);
  }
  return chars.size;
}

/**
 * Memory and object counts after full collections, with the heap censuses of the page and of
 * its workers (`pageCensus`, `workersCensus`) they were split by.
 */
async function sample() {
  const heaps = await retainedHeaps();
  const listeners = await liveListeners();
  const { census: pageCensus, code: pageCode } = await heapCensus();
  const { census: workersCensus, code: workersCode } = await heapCensus(page.sendToWorkers);
  const glyphs = await glyphCache();
  const inWorkers = await workerTiles();
  const pageParts = heapParts(pageCensus);
  const workersParts = heapParts(workersCensus);
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
    heapDataMb: pageParts.data,
    heapBuffersMb: pageParts.buffers,
    heapBuffersLessGlyphsMb: pageParts.buffers - glyphs.mb,
    glyphs: glyphs.glyphs,
    glyphsMb: glyphs.mb,
    workerTiles: inWorkers,
    heapShapesMb: pageParts.shapes,
    heapCodeMb: pageParts.code,
    workersMb: heaps.workersMb,
    workersDataMb: workersParts.data,
    workersBuffersMb: workersParts.buffers,
    workersShapesMb: workersParts.shapes,
    workersCodeMb: workersParts.code,
    ...codeMeasures('heap', pageCode),
    ...codeMeasures('workers', workersCode),
    workers: heaps.workers,
    browserMb: browserPssMb(),
    nodes: heaps.nodes,
    listeners,
    browserListeners: heaps.listeners,
    documents: m.Documents,
    elements: page_.elements,
    feed: page_.feed,
    live: page_.live,
    infra,
    kinds: { ...internalKinds('page', pageCensus), ...internalKinds('workers', workersCensus) },
    pageCensus,
    workersCensus,
    pageCode,
    workersCode,
  };
}

/**
 * The measures of a code census (see `addToCodeCensus`) a sample keeps, named `${where}…`:
 * machine code (MB), the functions that have it, machine code objects per such function (on
 * average and at most), the functions V8 knows, and machine code of no function (MB).
 */
function codeMeasures(where, code) {
  return {
    [`${where}MachineMb`]: code.bytes / 1e6,
    [`${where}MachineFunctions`]: code.owners.size,
    [`${where}MachinePerFunction`]: code.owners.size ? code.objects / code.owners.size : 0,
    [`${where}MachineMostPerFunction`]: Math.max(0, ...[...code.owners.values()].map((o) => o.objects)),
    [`${where}Functions`]: code.functions,
    [`${where}StubsMb`]: code.unownedBytes / 1e6,
  };
}

let created = 0;
let failedCreates = 0;
let retriedCreates = 0;
let sequence = 0;
const acknowledged = [];
/**
 * Creates a report as a reporting app would: while the server is away (no connection, 503) it
 * tries again with the same idempotency key for up to a minute. Returns the report's id, or
 * null when it was refused.
 */
async function createReport() {
  const lon = 113.55 + Math.random() * 0.2;
  const lat = 34.7 + Math.random() * 0.12;
  const body = JSON.stringify({
    channel: 'patrol',
    category: 'matter:06002',
    description: 'soak',
    location: { lon, lat },
    idempotency_key: `soak-${started}-${(sequence += 1)}`,
  });
  const giveUp = Date.now() + 60000;
  for (;;) {
    let status = 0;
    try {
      const resp = await fetch(`${base}/api/v1/reports`, {
        method: 'POST',
        headers: { 'X-API-Key': adminKey, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(10000),
      });
      status = resp.status;
      if (status === 201 || status === 200) {
        const { id } = await resp.json();
        created += 1;
        acknowledged.push(id);
        return id;
      }
    } catch {
      // No answer: the server is away.
    }
    if ((status !== 0 && status !== 503) || Date.now() > giveUp) {
      failedCreates += 1;
      return null;
    }
    retriedCreates += 1;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Where the wall is looked at while the server is away: one of three places, at a zoom the
 * rounds do not use, so that its tiles are not all at hand (a new place each time would fill
 * MapLibre's tile cache for as long as the soak runs).
 */
function outageView(n) {
  return { zoom: 13.5, center: [113.58 + (n % 3) * 0.05, 34.71 + (n % 3) * 0.03] };
}

const restarts = [];
/**
 * Stops the server (SIGTERM, or SIGKILL every other time), keeps it away for a few seconds while
 * the wall moves to a new place (its tiles then fail), lets it start again and measures how the
 * wall comes back: reconnected, a new report in its feed, the failed tiles loaded.
 */
async function restartServer(n) {
  const signal = n % 2 ? 'SIGTERM' : 'SIGKILL';
  const outcome = { n, signal };
  restarts.push(outcome);
  const hold = join(serverDir, 'hold');
  writeFileSync(hold, '');
  const failuresBefore = tileFailures;
  const t0 = Date.now();
  try {
    process.kill(Number(readFileSync(join(serverDir, 'server.pid'), 'utf8')), signal);
    await page.waitForFunction(() => document.body.dataset.connected === 'no', 30000);
    outcome.noticedMs = Date.now() - t0;
    const view = outageView(n);
    await page.evaluate((v) => window.gridscopeWall.map().jumpTo(v), view);
    await page.waitForTimeout(5000);
  } finally {
    rmSync(hold, { force: true });
  }
  const released = Date.now();
  for (let i = 0; i < 240; i += 1) {
    if (await fetch(`${base}/health`).then((r) => r.ok, () => false)) break;
    await page.waitForTimeout(250);
  }
  outcome.serverUpMs = Date.now() - released;
  await page.waitForFunction(() => document.body.dataset.connected === 'yes', 60000);
  outcome.reconnectedMs = Date.now() - released;
  outcome.failedTiles = tileFailures - failuresBefore;
  const id = await createReport();
  outcome.inFeed = id !== null && await page.waitForFunction(`() => document.querySelector('#feed li[data-id="${id}"]') !== null`, 10000)
    .then(() => true, () => false);
  // The view the wall moved to while the server was away, loaded now: its level-3 grids drawn.
  const outlines = () => window.gridscopeWall.map().queryRenderedFeatures({ layers: ['level3-line'] }).length;
  await page.waitForFunction(`() => (${outlines})() > 0`, 30000).catch(() => {});
  outcome.gridsShown = await page.evaluate(outlines);
  console.log(`restart ${n} (${signal}): the wall noticed in ${outcome.noticedMs} ms, ${outcome.failedTiles} tile loads failed while the server was away; `
    + `server up ${outcome.serverUpMs} ms after release, wall reconnected after ${outcome.reconnectedMs} ms, new report in the feed: ${outcome.inFeed}, `
    + `level-3 grid outlines drawn where tiles had failed: ${outcome.gridsShown}`);
}

/** One round of what a person at the wall does. */
async function useTheWall(round) {
  const windows = ['today', '7d', '30d'];
  await page.click(`#timebar [data-window="${windows[round % windows.length]}"]`);
  await page.click(`#mode [data-mode="${round % 2 ? 'kpi' : 'heat'}"]`);
  if (round % 2) {
    const metrics = ['closure_rate', 'on_time_rate', 'satisfaction_rate', 'overdue', 'per_km2'];
    await page.evaluate((m) => {
      const select = document.getElementById('metric');
      select.value = m;
      select.dispatchEvent(new Event('change'));
    }, metrics[(round >> 1) % metrics.length]);
  }
  await page.click(`#trend [data-trend="${round % 2 ? '30d' : '24h'}"]`);
  // In to street level somewhere in the centre, then back to the whole city.
  const zoom = await page.evaluate(() => window.gridscopeWall.map().getZoom());
  const lon = 113.6 + (round % 5) * 0.02;
  await page.evaluate(([lon_]) => window.gridscopeWall.map().jumpTo({ zoom: 11, center: [lon_, 34.76] }), [lon]);
  await page.waitForTimeout(3000);
  await page.evaluate(([z]) => window.gridscopeWall.map().jumpTo({ zoom: z, center: [113.63, 34.75] }), [zoom]);
  // Down the ranking two levels (a district, one of its streets), and back by the breadcrumb.
  for (const level of ['district', '1']) {
    await rankingOfTheArea();
    await page.evaluate((i) => {
      const items = document.querySelectorAll('#ranking li[data-code]');
      items[Math.min(i, items.length - 1)]?.click();
    }, round % 3);
    await page.waitForFunction(`() => document.body.dataset.level === '${level}'`, 15000);
    await page.waitForTimeout(2000);
  }
  await page.click('#crumbs a[data-code="city"]');
  await page.waitForFunction(() => document.body.dataset.area === 'city', 15000);
  await rankingOfTheArea();
  // A report from the feed: its card, then closed; and a few hours of the replay.
  await page.click('#feed li');
  await page.waitForFunction(() => !document.getElementById('detail').hidden, 10000);
  await page.waitForTimeout(1500);
  await page.click('#detail-close');
  await page.click('#replay');
  await page.waitForTimeout(4500);
  await page.click('#replay');
}

/**
 * Waits until the ranking lists the children of the area the wall shows. The page names the area
 * as soon as it drills down and loads the ranking after, so a ranking clicked at once can still
 * be the parent's, and the click then goes to a sibling instead of a level down. The area is
 * unset until the first drill-down, and the whole city's ranking query has no grid.
 */
async function rankingOfTheArea() {
  await page.waitForFunction(function rankingListsTheAreasChildren() {
    const area = document.body.dataset.area ?? 'city';
    const query = document.getElementById('ranking').dataset.query;
    if (!query) return false;
    const grid = new URL(query).searchParams.get('grid') ?? 'city';
    return grid === area && document.querySelector('#ranking li[data-code]') !== null;
  }, 15000);
}

/** The state every sample is taken in: the whole city as first shown, the last 30 days, heat. */
async function settle() {
  await page.evaluate(() => {
    if (document.body.dataset.area !== 'city') document.querySelector('#crumbs a[data-code="city"]')?.click();
    if (window.gridscopeWall.state.replaying) document.getElementById('replay').click();
    document.getElementById('detail').hidden = true;
    const select = document.getElementById('metric');
    if (select.value !== 'closure_rate') {
      select.value = 'closure_rate';
      select.dispatchEvent(new Event('change'));
    }
  });
  await page.click('#timebar [data-window="30d"]');
  await page.click('#mode [data-mode="heat"]');
  await page.click('#trend [data-trend="24h"]');
  await page.waitForTimeout(1500);
  await page.evaluate((h) => window.gridscopeWall.map().jumpTo(h), home);
  await page.waitForTimeout(4000);
  const tiles = await emptyTileCaches();
  await page.waitForTimeout(1000);
  return tiles;
}

/**
 * Empties MapLibre's caches of tiles out of view, for every source, and returns how many tiles
 * the sources held in view and in those caches, and the caches' bound. Each cache keeps up to
 * five viewports' worth of tiles of each source (a hundred at 1920×1080) for the places last
 * looked at, which are different ones every round as the ranking the rounds drill down by
 * changes with the reports: their size says where the wall has been, not whether it leaks, and
 * it stays within that bound by construction. Emptied, each sample holds the tiles of the view
 * it was taken in and what the wall keeps besides.
 */
async function emptyTileCaches() {
  return page.evaluate(() => {
    const managers = Object.values(window.gridscopeWall.map().style.tileManagers);
    const counts = { inView: 0, cached: 0, bound: 0 };
    for (const m of managers) {
      // A private field of MapLibre's: fail loudly should a new version rename it.
      if (!m._outOfViewCache?.reset) throw new Error('MapLibre has no _outOfViewCache on its tile managers any more');
      counts.inView += m.getIds().length;
      counts.cached += m._outOfViewCache.order.length;
      counts.bound += m._outOfViewCache.max;
      m._outOfViewCache.reset();
    }
    return counts;
  });
}

/**
 * Object counts and sizes by kind in a heap snapshot taken now, of the page or (with
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
  const code = newCodeCensus();
  let isolate = 0;
  for (const text of chunks.values()) {
    const snap = JSON.parse(text);
    addToCensus(census, snap);
    addToCodeCensus(code, snap, (isolate += 1));
  }
  return { census, code };
}

/** What a Code object holds of its own besides itself: instructions, offsets, deoptimisation data. */
const MACHINE_CODE_PARTS = ['instruction_stream', 'bytecode_offset_table', 'deoptimization_data', 'source_position_table'];

/** An empty `addToCodeCensus`. */
function newCodeCensus() {
  return { functions: 0, compiled: new Set(), owners: new Map(), objects: 0, bytes: 0, unownedBytes: 0 };
}

/**
 * Adds V8's machine code in a heap snapshot (of isolate number `isolate`) to `code`, by the
 * function it was compiled for, so that growth in compiled code can be told apart: more of the
 * program's functions reaching a tier (bounded by the program), more code per function (a
 * function compiled again and again, its old code kept), more functions (code generated at run
 * time) or machine code of no function (regular expressions, stubs). `functions` counts the
 * functions V8 knows (SharedFunctionInfo); `compiled` holds those with bytecode or machine code
 * (that have run); `owners` the machine code objects of each function and their bytes; `bytes` the
 * size of that code with its metadata.
 */
function addToCodeCensus(code, snap, isolate) {
  const { node_fields: nf, edge_fields: ef, node_types: [nodeTypes], edge_types: [edgeTypes] } = snap.snapshot.meta;
  const { nodes, edges, strings } = snap;
  const [nw, ew] = [nf.length, ef.length];
  const [iType, iName, iSize, iEdges, iId] = ['type', 'name', 'self_size', 'edge_count', 'id'].map((f) => nf.indexOf(f));
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => ef.indexOf(f));
  const count = nodes.length / nw;
  const firstEdge = new Uint32Array(count + 1);
  for (let n = 0; n < count; n += 1) firstEdge[n + 1] = firstEdge[n] + nodes[n * nw + iEdges];
  const name = (n) => strings[nodes[n * nw + iName]];
  // The named edges of node `n`, as [name, target node].
  function* out(n) {
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e += 1) {
      const t = edgeTypes[edges[e * ew + eType]];
      if (t !== 'element' && t !== 'hidden') yield [strings[edges[e * ew + eName]], edges[e * ew + eTo] / nw];
    }
  }
  const key = (n) => `${isolate}:${nodes[n * nw + iId]}`;
  const owner = new Map();
  for (let n = 0; n < count; n += 1) {
    if (name(n).startsWith('system / SharedFunctionInfo')) {
      code.functions += 1;
      for (const [edge, to] of out(n)) {
        if (edge !== 'trusted_function_data') continue;
        if (name(to) === 'system / Code') owner.set(to, n);
        if (name(to) === 'system / Code' || name(to).startsWith('system / BytecodeArray')) code.compiled.add(key(n));
      }
    } else if (nodeTypes[nodes[n * nw + iType]] === 'closure') {
      let shared = -1;
      let compiled = -1;
      for (const [edge, to] of out(n)) {
        if (edge === 'shared') shared = to;
        else if (edge === 'code') compiled = to;
      }
      if (shared >= 0 && compiled >= 0 && name(compiled) === 'system / Code' && !owner.has(compiled)) owner.set(compiled, shared);
    }
  }
  for (let n = 0; n < count; n += 1) {
    if (name(n) !== 'system / Code') continue;
    // Builtins' code lives outside the heap: only code with instructions of its own counts.
    let bytes = nodes[n * nw + iSize];
    let machine = false;
    for (const [edge, to] of out(n)) {
      if (edge === 'instruction_stream') machine = true;
      if (MACHINE_CODE_PARTS.includes(edge)) bytes += nodes[to * nw + iSize];
    }
    if (!machine) continue;
    const sfi = owner.get(n);
    if (sfi === undefined) {
      code.unownedBytes += bytes;
      continue;
    }
    code.objects += 1;
    code.bytes += bytes;
    const own = code.owners.get(key(sfi)) ?? { objects: 0, bytes: 0 };
    own.objects += 1;
    own.bytes += bytes;
    code.owners.set(key(sfi), own);
    code.compiled.add(key(sfi));
  }
}

/**
 * Adds the objects of a heap snapshot to `census`: objects and closures by constructor or
 * function name, V8's compiled code and object shapes by their internal kind, other values
 * (strings, numbers, arrays) by their kind alone, as their names are their contents. The key
 * starts with the node's type, which `heapParts` sorts by.
 */
function addToCensus(census, snap) {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]];
    const name = snap.strings[snap.nodes[i + iName]];
    let key = type;
    if (type === 'object' || type === 'closure' || type === 'native') key = `${type}:${name}`.slice(0, 80);
    // V8's internal kinds are named "system / Kind" or "(kind)"; functions' own code by name.
    else if (type === 'code' || type === 'object shape') key = `${type}:${/^(system \/ |\()/.test(name) ? name : '(function)'}`;
    const c = census.get(key) ?? { count: 0, bytes: 0 };
    c.count += 1;
    c.bytes += snap.nodes[i + iSize];
    census.set(key, c);
  }
}

/**
 * A census split into what a leak would be made of and what V8 makes of the program, in MB:
 * `code` is compiled code and its metadata (bytecode, machine code, feedback, scope info),
 * which is bounded by the scripts loaded and which V8 compiles, recompiles and discards as
 * functions warm up and go cold; `shapes` the hidden classes of objects; `buffers` the
 * backing stores of array buffers and external strings, held outside the heap (tiles, WebGL
 * uploads, scripts' sources); `data` the rest (objects, closures, strings, arrays, DOM and other
 * native objects). The sum exceeds the heap's used size by the buffers and the DOM, so each part
 * is compared with itself over time.
 */
function heapParts(census) {
  const parts = { data: 0, buffers: 0, shapes: 0, code: 0 };
  for (const [key, { bytes }] of census) {
    parts[partOf(key)] += bytes / 1e6;
  }
  return parts;
}

/** Which of `heapParts` a census key belongs to. */
function partOf(key) {
  if (key.startsWith('code')) return 'code';
  if (key.startsWith('object shape')) return 'shapes';
  if (key === 'native:system / JSArrayBufferData' || key === 'native:system / ExternalStringData') return 'buffers';
  return 'data';
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

// The censuses of the first sample after the warm-up and of the latest one, to tell at the end
// which kinds of object grew in between; the functions that have run in the page and in its
// workers by any sample (bytecode is flushed from functions that go cold).
let afterWarmup = null;
let latest = null;
const ranInPage = new Set();
const ranInWorkers = new Set();
const samples = [];
const labelChars = await labelCharacters();
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
// Rounds of a minute or more (longer when the server is restarted in one): the wall used,
// settled and sampled; each sample is placed at the minute it was taken.
let nextRestart = started + restartEvery * 60000;
for (let round = 1; Date.now() < end - 30000; round += 1) {
  const roundStarted = Date.now();
  if (restartEvery > 0 && Date.now() >= nextRestart) {
    nextRestart += restartEvery * 60000;
    await restartServer(restarts.length + 1).catch((e) => errors.push(`restarting the server: ${e.message}`));
  }
  await useTheWall(round).catch((e) => errors.push(`using the wall: ${e.message}`));
  const wait = roundStarted + 55000 - Date.now();
  if (wait > 0) await page.waitForTimeout(wait);
  const tiles = await settle().catch((e) => {
    errors.push(`settling the wall: ${e.message}`);
    return { inView: 0, cached: 0, bound: 0 };
  });
  const { pageCensus, workersCensus, pageCode, workersCode, ...s } = await sample();
  const minute = (Date.now() - started) / 60000;
  samples.push({ minute, tiles, ...s });
  latest = { pageCensus, workersCensus, pageCode, workersCode };
  for (const f of pageCode.compiled) ranInPage.add(f);
  for (const f of workersCode.compiled) ranInWorkers.add(f);
  if (!afterWarmup && minute >= minutes / 3) afterWarmup = latest;
  const machine = (what) => `${s[`${what}MachineMb`].toFixed(2)} MB in ${s[`${what}MachineFunctions`]} functions (${s[`${what}MachinePerFunction`].toFixed(2)} objects each)`;
  const parts = (what) => ['Data', 'Buffers', 'Shapes', 'Code'].map((p) => `${p.toLowerCase()} ${s[`${what}${p}Mb`].toFixed(2)}`).join(', ');
  console.log(`minute ${minute.toFixed(1).padStart(5)}: heap ${s.heapMb.toFixed(1)} MB (${parts('heap')}), workers' heaps ${s.workersMb.toFixed(1)} MB (${s.workers}; ${parts('workers')}), browser PSS ${s.browserMb.toFixed(0)} MB `
    + `(footprints: renderers ${(s.infra['Renderer: footprint'] ?? 0).toFixed(0)} MB, GPU ${(s.infra['GPU Process: footprint'] ?? 0).toFixed(0)} MB), DOM nodes ${s.nodes}, `
    + `listeners ${s.listeners} (the browser counts ${s.browserListeners}), elements ${s.elements}, feed ${s.feed}, live points ${s.live}, reports sent ${created}, `
    + `tiles ${tiles.inView} in view and ${tiles.cached} cached out of view (bound ${tiles.bound}; emptied before sampling), `
    + `workers hold ${s.workerTiles.loaded} tiles (${s.workerTiles.parsing} parsing, ${s.workerTiles.loading} loading; `
    + `${s.workerTiles.orphans} the page has let go, ${s.workerTiles.orphansWithData} of them decoded${s.workerTiles.examples.length ? `: ${s.workerTiles.examples.join(', ')}` : ''}), `
    + `glyphs ${s.glyphs} (${s.glyphsMb.toFixed(2)} MB of the page's buffers; bound ${labelChars} characters); `
    + `machine code: page ${machine('heap')}, workers ${machine('workers')}`);
}
await creator;
if (afterWarmup) {
  printGrowth('the page\'s', afterWarmup.pageCensus, latest.pageCensus);
  printGrowth('the workers\'', afterWarmup.workersCensus, latest.workersCensus);
}

/** The median of some numbers (0 for none). */
function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return 0;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * The trend per hour of the measure `of(sample)` over the samples after the first third of the
 * run (the warm-up), with its mean. `slope` is the Theil–Sen estimate (the median of the slopes
 * between every two samples), which follows the level the measure keeps rather than the moments
 * it jumps between a few cache states (a worker holding one more parsed tile, say);
 * `leastSquares` is the ordinary fit, for comparison.
 */
function perHour(of) {
  const kept = samples.filter((s) => s.minute >= minutes / 3);
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
console.log(`soak: ${minutes} min, ${samples.length} samples, ${created} reports created (${failedCreates} failed, ${retriedCreates} tries again while the server was away), `
  + `${restarts.length} server restarts, ${errors.length} page errors`);
for (const r of restarts) {
  const ok = r.reconnectedMs !== undefined && r.inFeed && r.gridsShown > 0;
  failed ||= !ok;
  console.log(`${ok ? 'ok  ' : 'FAIL'} restart ${r.n} (${r.signal}): reconnected ${r.reconnectedMs ?? '—'} ms after the server was let back `
    + `(up after ${r.serverUpMs ?? '—'} ms), new report shown ${r.inFeed ?? false}, ${r.failedTiles ?? 0} failed tile loads, then ${r.gridsShown ?? 0} grid outlines drawn`);
}
const missing = await storedReportsMissing(acknowledged);
failed ||= missing.length > 0;
console.log(`${missing.length ? 'FAIL' : 'ok  '} every acknowledged report is stored (${acknowledged.length} looked up${missing.length ? `; missing ${missing.slice(0, 10).join(', ')}` : ''})`);

/** The ids among `ids` the server does not know (8 lookups at a time). */
async function storedReportsMissing(ids) {
  const missing_ = [];
  const queue = [...new Set(ids)];
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
      const resp = await fetch(`${base}/api/v1/reports/${id}`, { headers: { 'X-API-Key': adminKey } });
      await resp.arrayBuffer();
      if (resp.status !== 200) missing_.push(id);
    }
  }));
  return missing_;
}
// A leak shows as steady growth; noise from caches and collections does not. Each measure may
// drift by at most this share of its mean per hour, i.e. less than doubling over two days.
// Compiled code is not judged by its size, which V8 changes as it optimises functions again
// with what it has learnt of them, but by what would let it grow without end: more functions
// with machine code (beyond those the wall runs), more machine code objects for one function
// (code compiled again and the old kept), more functions known (code generated at run time;
// neither the wall nor MapLibre evaluates code), or more machine code of no function (regular
// expressions, stubs). The heap is judged less its code, its buffers less the glyphs MapLibre
// keeps (bounded by the characters of the names, checked below).
const limits = {
  heapLessCodeMb: 0.02,
  heapDataMb: 0.02,
  heapBuffersLessGlyphsMb: 0.02,
  heapShapesMb: 0.02,
  heapMachineFunctions: 0.02,
  heapMachineMostPerFunction: 0.02,
  heapFunctions: 0.02,
  heapStubsMb: 0.02,
  workersLessCodeMb: 0.02,
  workersDataMb: 0.02,
  workersBuffersMb: 0.02,
  workersShapesMb: 0.02,
  workersMachineFunctions: 0.02,
  workersMachineMostPerFunction: 0.02,
  workersFunctions: 0.02,
  workersStubsMb: 0.02,
  browserMb: 0.02,
  nodes: 0.02,
  listeners: 0.02,
  elements: 0.02,
};
for (const s of samples) {
  s.heapLessCodeMb = s.heapMb - s.heapCodeMb;
  s.workersLessCodeMb = s.workersMb - s.workersCodeMb;
}
const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
for (const [key, share] of Object.entries(limits)) {
  const { slope, leastSquares, mean } = perHour((s) => s[key]);
  const ok = slope <= share * mean;
  failed ||= !ok;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${key}: mean ${mean.toFixed(2)}, trend ${signed(slope)} per hour (limit +${(share * mean).toFixed(3)}; least squares ${signed(leastSquares)})`);
}
const mostGlyphs = Math.max(...samples.map((s) => s.glyphs));
const glyphsOk = mostGlyphs <= labelChars;
failed ||= !glyphsOk;
console.log(`${glyphsOk ? 'ok  ' : 'FAIL'} glyphs kept within the characters of the names labelled: at most ${mostGlyphs} of ${labelChars} `
  + `(last ${samples.at(-1).glyphs}, ${samples.at(-1).glyphsMb.toFixed(2)} MB; trend ${signed(perHour((s) => s.glyphs).slope)} per hour)`);
const orphans = samples.at(-1).workerTiles;
const mostOrphans = Math.max(...samples.map((s) => s.workerTiles.orphans));
failed ||= orphans.orphans > 0;
console.log(`${orphans.orphans ? 'FAIL' : 'ok  '} the workers hold no tile the page has let go: ${orphans.orphans} at the end (${orphans.orphansWithData} decoded; `
  + `at most ${mostOrphans}${orphans.examples.length ? `; ${orphans.examples.join(', ')}` : ''})`);
printCodeGrowth('page', 'heap', latest.pageCode, ranInPage);
printCodeGrowth('workers', 'workers', latest.workersCode, ranInWorkers);

/**
 * Prints how the compiled code of the page or of its workers changed after the warm-up, and
 * the size its machine code would reach were every function that has run as large as the
 * functions that now hold two tiers of it (baseline and optimised) are on average.
 */
function printCodeGrowth(what, prefix, code, ran) {
  const trend = (key) => signed(perHour((s) => s[`${prefix}${key}`]).slope);
  const tiered = [...code.owners.values()].filter((o) => o.objects > 1);
  const tieredKb = tiered.reduce((t, o) => t + o.bytes, 0) / Math.max(1, tiered.length) / 1e3;
  const last = (key) => samples.at(-1)[`${prefix}${key}`];
  console.log(`info ${what} code: ${last('CodeMb').toFixed(2)} MB, trend ${trend('CodeMb')} MB per hour; `
    + `machine code ${last('MachineMb').toFixed(2)} MB (trend ${trend('MachineMb')}) in ${last('MachineFunctions')} functions, `
    + `${code.objects} objects (per function ${last('MachinePerFunction').toFixed(2)}, trend ${trend('MachinePerFunction')}; `
    + `${tiered.length} with two or more, ${tieredKb.toFixed(1)} kB each); ${code.functions} functions known, ${ran.size} have run; `
    + `all that have run at ${tieredKb.toFixed(1)} kB: ${((ran.size * tieredKb) / 1e3).toFixed(1)} MB`);
}
/** Prints the largest trends among the measures in `of(sample)` (an object of MB) of at least `least` MB. */
function printLargestTrends(title, of, least) {
  const keys = new Set(samples.flatMap((s) => Object.keys(of(s))));
  const trends = [...keys].map((k) => ({ k, ...perHour((s) => of(s)[k]) }))
    .filter((t) => t.mean >= least)
    .sort((a, b) => Math.abs(b.slope) - Math.abs(a.slope));
  console.log(`largest trends in ${title} (MB, per hour):`);
  for (const t of trends.slice(0, 10)) {
    console.log(`  ${t.k.padEnd(48)} mean ${t.mean.toFixed(2).padStart(7)}, trend ${signed(t.slope)}`);
  }
}
// Where the browser's memory goes, by its own account: its processes' allocators, to tell
// which part of the browser holds what PSS gains; and which kinds of V8's code and shapes move.
printLargestTrends('the browser\'s memory-infra', (s) => s.infra, 1);
printLargestTrends('V8\'s code and shapes', (s) => s.kinds, 0.01);
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
