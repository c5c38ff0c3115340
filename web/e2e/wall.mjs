// End-to-end checks of the map wall in Debian's Chromium (headless), against a running
// gridscope server with the demo city. Driven by tests/wall.rs, which starts the server; this
// script talks to it like a person at the wall would, and compares what is on screen with
// what the API says.
//
// Environment: WALL_URL (the server), WALL_KEY (the wall's read-only key), ADMIN_KEY (to create
// reports), ARTIFACTS (where screenshots go), CHROMIUM (the browser, default /usr/bin/chromium).
// With WALL_RESTART=1 it prints "RESTART-NOW" once the page is up, waits for a line on stdin
// (the server was restarted) and checks that the page reconnects by itself.
//
// Prints one line per check and the measured timings; exits non-zero on the first failure.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { launchBrowser } from './browser.mjs';

const base = process.env.WALL_URL;
const wallKey = process.env.WALL_KEY;
const adminKey = process.env.ADMIN_KEY;
const artifacts = process.env.ARTIFACTS ?? 'wall-artifacts';
const restart = process.env.WALL_RESTART === '1';
if (!base || !wallKey || !adminKey) {
  console.error('set WALL_URL, WALL_KEY and ADMIN_KEY');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

let failures = 0;
function check(ok, what, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` — ${detail}` : ''}`);
  if (!ok) failures += 1;
  return ok;
}

async function api(path, { key = adminKey, method = 'GET', body } = {}) {
  const resp = await fetch(path.startsWith('http') ? path : `${base}${path}`, {
    method,
    headers: { 'X-API-Key': key, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${text}`);
  return JSON.parse(text);
}

const browser = await launchBrowser();

/** Opens the wall at `width`×`height`; collects console errors. */
async function openWall(width, height) {
  const page = await browser.newPage({ viewport: { width, height } });
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  const started = Date.now();
  await page.goto(`${base}/?key=${encodeURIComponent(wallKey)}`);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60000 });
  const state = await page.evaluate(() => document.body.dataset.ready);
  if (state !== 'yes') throw new Error(`the wall did not start: ${JSON.stringify(await page.evaluate(() => window.gridscopeWall.errors))}`);
  return { page, errors, wallMs: Date.now() - started };
}

/** Distinct colours in a downscaled copy of the map's canvas, read right after a frame. */
function canvasColours(page) {
  return page.evaluate(
    () =>
      new Promise((resolve) => {
        const map = window.gridscopeWall.map();
        map.once('render', () => {
          const copy = document.createElement('canvas');
          copy.width = 240;
          copy.height = 135;
          const ctx = copy.getContext('2d');
          ctx.drawImage(map.getCanvas(), 0, 0, copy.width, copy.height);
          const d = ctx.getImageData(0, 0, copy.width, copy.height).data;
          const colours = new Set();
          for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
          resolve(colours.size);
        });
        map.triggerRepaint();
      }),
  );
}

function rendered(page, layer) {
  return page.evaluate((l) => window.gridscopeWall.map().queryRenderedFeatures({ layers: [l] }).length, layer);
}

/** The headline panel's numbers against a fresh answer of the query it showed. */
async function headlineMatchesApi(page, label) {
  const shown = await page.evaluate(() =>
    [...document.querySelectorAll('.period')].map((p) => ({
      period: p.dataset.period,
      query: p.dataset.query,
      values: Object.fromEntries([...p.querySelectorAll('dd')].map((dd) => [dd.dataset.kpi, dd.dataset.value])),
      texts: Object.fromEntries([...p.querySelectorAll('dd')].map((dd) => [dd.dataset.kpi, dd.firstChild.textContent])),
    })),
  );
  let ok = shown.length === 2;
  const details = [];
  for (const s of shown) {
    const answer = await api(s.query, { key: wallKey });
    const c = answer.current;
    const want = {
      reports: c.counts.reports,
      closure_rate: c.closure_rate,
      on_time_rate: c.on_time_rate,
      satisfaction_rate: c.satisfaction_rate,
      overdue: c.counts.overdue,
    };
    for (const [k, v] of Object.entries(want)) {
      const got = s.values[k] === '' ? null : Number(s.values[k]);
      const text = s.texts[k];
      const expectText = v === null ? '—' : k.endsWith('_rate') ? `${(v * 100).toFixed(1)}%` : new Intl.NumberFormat('zh-CN').format(v);
      if (got !== v || text !== expectText) {
        ok = false;
        details.push(`${s.period} ${k}: screen ${text} (${got}), API ${expectText} (${v})`);
      }
    }
    details.push(`${s.period}: ${s.texts.reports} reports, 结案率 ${s.texts.closure_rate}`);
  }
  return check(ok, `${label}: headline KPIs on screen equal the API's`, details.join('; '));
}

async function barsMatchApi(page, id, label) {
  const shown = await page.evaluate(
    (sel) => ({
      query: document.getElementById(sel).dataset.query,
      rows: [...document.querySelectorAll(`#${sel} li`)].map((li) => [li.dataset.key, Number(li.dataset.reports)]),
    }),
    id,
  );
  const rows = await api(shown.query, { key: wallKey });
  const want = rows.slice(0, shown.rows.length).map((r) => [r.key, r.kpis.counts.reports]);
  return check(JSON.stringify(want) === JSON.stringify(shown.rows) && shown.rows.length > 0, `${label}: ${id} bars equal the API's`, `${shown.rows.length} rows`);
}

/**
 * Frame times while the map zooms in two levels on the centre and back, twice: the first pass
 * loads the tiles it meets, the second finds them cached. Printed, not asserted: a speed figure.
 */
function motion(page) {
  return page.evaluate(async () => {
    const map = window.gridscopeWall.map();
    const home = { center: map.getCenter(), zoom: map.getZoom() };
    const ease = (to) => new Promise((resolve) => {
      map.once('moveend', resolve);
      map.easeTo({ ...to, duration: 1500 });
    });
    const pass = async () => {
      const frames = [];
      let last = null;
      let going = true;
      const tick = (t) => {
        if (last !== null) frames.push(t - last);
        last = t;
        if (going) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
      await ease({ center: [113.66, 34.76], zoom: home.zoom + 2 });
      await ease(home);
      going = false;
      frames.sort((a, b) => a - b);
      const mean = frames.reduce((a, b) => a + b, 0) / frames.length;
      const at = (q) => Math.round(frames[Math.min(frames.length - 1, Math.floor(frames.length * q))]);
      return { frames: frames.length, fps: Math.round(1000 / mean), median: at(0.5), p95: at(0.95), worst: at(1) };
    };
    const loading = await pass();
    await new Promise((resolve) => (map.loaded() ? resolve() : map.once('idle', resolve)));
    const cached = await pass();
    return { loading, cached };
  });
}

async function createReport(lon, lat, description) {
  return api('/api/v1/reports', {
    method: 'POST',
    body: { channel: 'patrol', category: 'matter:06002', description, location: { lon, lat, crs: 'wgs84' } },
  });
}

try {
  // 1. The first full render at 1920×1080.
  const { page, errors, wallMs } = await openWall(1920, 1080);
  const firstRender = await page.evaluate(() => window.gridscopeWall.timings.firstRenderMs);
  console.log(`timing first full render at 1920x1080: ${firstRender} ms after navigation (goal < 3000 ms; ${wallMs} ms as seen by the driver)`);
  const phases = await page.evaluate(() => JSON.stringify(window.gridscopeWall.timings));
  // A speed goal, printed rather than asserted: this machine renders WebGL in software
  // (SwiftShader), whose timings swing with whatever else the two cores are doing.
  console.log(`timing phases (ms after navigation): ${phases}; ${firstRender < 3000 ? 'within' : 'OVER'} the 3 s goal`);

  const colours = await canvasColours(page);
  check(colours > 20, 'the map canvas is drawn (not empty)', `${colours} distinct colours`);
  for (const layer of ['districts-line', 'heat-fill', 'labels-district']) {
    const n = await rendered(page, layer);
    check(n > 0, `layer ${layer} is on screen`, `${n} features`);
  }
  const styleLayers = await page.evaluate(() => window.gridscopeWall.map().getStyle().layers.map((l) => l.id));
  for (const id of ['level1-line', 'level2-line', 'level3-line', 'micro-line', 'exclusive-fill', 'kpi-fill', 'reports-circle', 'live-circle']) {
    check(styleLayers.includes(id), `the style has layer ${id}`);
  }
  const noScroll = await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth && document.documentElement.scrollHeight <= innerHeight);
  check(noScroll, 'no scrollbars at 1920x1080');
  await page.screenshot({ path: join(artifacts, 'wall-1920x1080.png') });
  const moving = await motion(page);
  const line = (m) => `${m.frames} frames, ${m.fps} fps, frame median ${m.median} ms, p95 ${m.p95} ms, worst ${m.worst} ms`;
  console.log(`timing zoom in two levels and back, 3 s, tiles loading: ${line(moving.loading)}`);
  console.log(`timing the same again, tiles cached: ${line(moving.cached)}`);
  check(moving.cached.frames > 0, 'the map zooms in and back out', line(moving.cached));

  // 2. Numbers on screen are the API's.
  await headlineMatchesApi(page, 'city');
  await barsMatchApi(page, 'categories', 'city');
  await barsMatchApi(page, 'channels', 'city');
  const ranking = await page.evaluate(() => ({ q: document.getElementById('ranking').dataset.query, codes: [...document.querySelectorAll('#ranking li')].map((li) => li.dataset.code) }));
  const rankApi = await api(ranking.q, { key: wallKey });
  check(JSON.stringify(rankApi.map((r) => r.key)) === JSON.stringify(ranking.codes), 'ranking of districts equals the API\'s', ranking.codes.slice(0, 3).join(', '));

  // 3. KPI choropleth and its selector.
  await page.click('#mode [data-mode="kpi"]');
  await page.waitForFunction(() => window.gridscopeWall.map().queryRenderedFeatures({ layers: ['kpi-fill'] }).length > 0, null, { timeout: 15000 });
  // The legend follows once the map settles on the new layer.
  await page.waitForFunction(() => /%/.test(document.getElementById('legend-labels').textContent), null, { timeout: 10000 }).catch(() => {});
  const legendRate = await page.textContent('#legend-labels');
  check(/%/.test(legendRate), 'KPI choropleth shows 结案率 with a legend in %', legendRate);
  await page.selectOption('#metric', 'overdue');
  await page.waitForFunction(() => document.getElementById('legend-title').textContent === '超期件数', null, { timeout: 10000 });
  check(true, 'the KPI selector switches the choropleth to 超期件数');
  await page.screenshot({ path: join(artifacts, 'wall-kpi-1920x1080.png') });
  await page.selectOption('#metric', 'closure_rate');
  await page.click('#mode [data-mode="heat"]');

  // 4. A report created through the API shows in the feed and on the map within 2 s.
  const center = await page.evaluate(() => window.gridscopeWall.map().getCenter().toArray());
  const t0 = Date.now();
  const created = await createReport(center[0], center[1], '端到端检查：井盖缺失');
  const seen = await page.waitForFunction(
    (id) => {
      const inFeed = document.querySelector(`#feed li[data-id="${id}"]`) !== null;
      const onMap = window.gridscopeWall.map().queryRenderedFeatures({ layers: ['live-circle'] }).some((f) => f.properties.id === id);
      return inFeed && onMap;
    },
    created.id,
    { timeout: 10000, polling: 50 },
  ).then(() => Date.now() - t0, () => null);
  console.log(`timing new report to feed and map: ${seen} ms`);
  check(seen !== null && seen <= 2000, 'a new report appears in the feed and on the map within 2 s', `${seen} ms`);

  // 5. Click the report on the map: its details and history.
  const at = await page.evaluate(([lon, lat]) => window.gridscopeWall.map().project([lon, lat]), center);
  await page.mouse.click(at.x, at.y);
  await page.waitForFunction((id) => document.getElementById('detail').dataset.id === String(id) && !document.getElementById('detail').hidden, created.id, { timeout: 10000 });
  const detail = await page.textContent('#detail-body');
  check(detail.includes('端到端检查') && detail.includes('处置过程'), 'clicking the report opens its details and history', detail.slice(0, 60));
  await page.click('#detail-close');

  // 6. Drill down: a district, then its street; the panels follow; the breadcrumb leads back.
  await page.evaluate(() => window.gridscopeWall.map().jumpTo({ zoom: 8.6 }));
  await page.waitForFunction(() => window.gridscopeWall.map().areTilesLoaded(), null, { timeout: 15000 });
  const target = await page.evaluate(() => {
    const map = window.gridscopeWall.map();
    const labels = map.queryRenderedFeatures({ layers: ['labels-district'] });
    const l = labels.find((f) => f.properties.name === '金水区') ?? labels[0];
    const p = map.project(l.geometry.coordinates);
    return { code: l.properties.code, name: l.properties.name, x: p.x, y: p.y };
  });
  await page.mouse.click(target.x, target.y);
  await page.waitForFunction((code) => document.body.dataset.area === code, target.code, { timeout: 15000 });
  await page.waitForFunction((code) => document.querySelector('.period[data-period="month"]').dataset.query.includes(`grid=${code}`), target.code, { timeout: 15000 });
  const areaName = await page.textContent('#area-name');
  check(areaName === target.name, `drill-down to ${target.name}: the panels follow`, `panel says ${areaName}`);
  await headlineMatchesApi(page, target.name);
  await barsMatchApi(page, 'categories', target.name);
  const crumbs = await page.textContent('#crumbs');
  check(crumbs.includes('全市') && crumbs.includes(target.name), 'the breadcrumb shows the way up', crumbs);
  await page.waitForTimeout(1500);
  await page.waitForFunction(() => window.gridscopeWall.map().areTilesLoaded(), null, { timeout: 15000 });
  const street = await page.evaluate((district) => {
    const map = window.gridscopeWall.map();
    const hits = map.queryRenderedFeatures({ layers: ['level1-hit'] }).filter((f) => f.properties.parent === district);
    if (!hits.length) return null;
    const f = hits[Math.floor(hits.length / 2)];
    const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
    // A point well inside: the centroid of the ring's vertices, checked by a query below.
    const c = ring.reduce((a, p) => [a[0] + p[0] / ring.length, a[1] + p[1] / ring.length], [0, 0]);
    const p = map.project(c);
    const under = map.queryRenderedFeatures([p.x, p.y], { layers: ['level1-hit'] });
    return under.length ? { code: under[0].properties.code, name: under[0].properties.name, x: p.x, y: p.y } : null;
  }, target.code);
  if (check(street !== null, 'a street of the district is on screen to click')) {
    await page.mouse.click(street.x, street.y);
    await page.waitForFunction((code) => document.body.dataset.area === code, street.code, { timeout: 15000 });
    await page.waitForFunction((code) => document.querySelector('.period[data-period="today"]').dataset.query.includes(`grid=${code}`), street.code, { timeout: 15000 });
    check((await page.textContent('#area-name')) === street.name, `drill-down to the street ${street.name}`);
    await headlineMatchesApi(page, street.name);
    await page.screenshot({ path: join(artifacts, 'wall-drilldown-1920x1080.png') });
  }
  await page.click('#crumbs a[data-code="city"]');
  await page.waitForFunction(() => document.body.dataset.area === 'city', null, { timeout: 15000 });
  check((await page.textContent('#area-name')) === '全市', 'the breadcrumb leads back to the whole city');

  // 7. The time bar: today's window, and the replay of the last 24 hours.
  await page.click('#timebar [data-window="today"]');
  await page.waitForFunction(() => document.querySelector('#categories .window-label').textContent === '今日', null, { timeout: 10000 });
  await page.waitForTimeout(500);
  await barsMatchApi(page, 'categories', 'today');
  await page.click('#replay');
  await page.waitForTimeout(1800);
  const replayClock = await page.textContent('#replay-clock');
  check(replayClock.startsWith('回放'), 'the 24-hour replay steps through the hours', replayClock);
  await page.click('#replay');

  // 8. Bounded: many new reports leave the feed at its cap and the page's size steady.
  const nodesBefore = await page.evaluate(() => document.getElementsByTagName('*').length);
  for (let i = 0; i < 60; i += 1) await createReport(center[0] + (i % 10) * 0.002, center[1] + Math.floor(i / 10) * 0.002, `批量检查 ${i}`);
  await page.waitForFunction(() => window.gridscopeWall.feed.length >= 61, null, { timeout: 15000 });
  const after = await page.evaluate(() => ({ feed: document.querySelectorAll('#feed li').length, nodes: document.getElementsByTagName('*').length }));
  check(after.feed === 40, 'the feed keeps its 40 newest reports', `${after.feed} items`);
  check(after.nodes - nodesBefore < 200, 'the page does not grow with the reports it has shown', `${nodesBefore} → ${after.nodes} elements`);

  check(errors.length === 0, 'no console errors at 1920x1080', errors.slice(0, 3).join(' | '));

  // 9. The 4K wall.
  const big = await openWall(3840, 2160);
  const bigRender = await big.page.evaluate(() => window.gridscopeWall.timings.firstRenderMs);
  console.log(`timing first full render at 3840x2160: ${bigRender} ms`);
  const bigLayout = await big.page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth <= innerWidth && document.documentElement.scrollHeight <= innerHeight,
    title: getComputedStyle(document.getElementById('title')).fontSize,
  }));
  check(bigLayout.scroll, 'no scrollbars at 3840x2160');
  check(parseFloat(bigLayout.title) >= 48, 'text scales up for the 4K wall', `title ${bigLayout.title}`);
  await big.page.screenshot({ path: join(artifacts, 'wall-3840x2160.png') });
  check(big.errors.length === 0, 'no console errors at 3840x2160', big.errors.slice(0, 3).join(' | '));
  await big.page.close();

  // 10. A server restart: the page reconnects by itself and goes on showing new reports.
  if (restart) {
    console.log('RESTART-NOW');
    await page.waitForFunction(() => document.body.dataset.connected === 'no', null, { timeout: 30000 });
    check(true, 'the page notices the server went away');
    // Looked at somewhere new while the server is away, the wall's tiles there fail to load.
    const errorsBefore = errors.length;
    await page.evaluate(() => window.gridscopeWall.map().jumpTo({ zoom: 13.5, center: [113.66, 34.745] }));
    const lines = createInterface({ input: process.stdin });
    await new Promise((resolve) => lines.once('line', resolve));
    lines.close();
    await page.waitForFunction(() => document.body.dataset.connected === 'yes', null, { timeout: 30000 });
    check(true, 'the page reconnects to the restarted server');
    const again = await createReport(center[0], center[1], '重启后检查');
    const back = await page.waitForFunction((id) => document.querySelector(`#feed li[data-id="${id}"]`) !== null, again.id, { timeout: 10000 }).then(() => true, () => false);
    check(back, 'a report created after the restart appears in the feed');
    const drawn = await page.waitForFunction(() => window.gridscopeWall.map().queryRenderedFeatures({ layers: ['level3-line'] }).length > 0, null, { timeout: 30000 })
      .then(() => true, () => false);
    check(drawn, 'tiles that failed while the server was away are loaded once it is back');
    // The browser's own log of each request refused while the server was away is expected.
    const pageErrors = errors.slice(errorsBefore).filter((e) => !e.startsWith('Failed to load resource'));
    check(pageErrors.length === 0, 'no console errors from the page across the restart', pageErrors.slice(0, 3).join(' | '));
  }
  await page.screenshot({ path: join(artifacts, 'wall-end-1920x1080.png') });
} catch (e) {
  check(false, 'the checks ran to the end', e.stack ?? String(e));
} finally {
  await browser.close();
}
console.log(failures ? `wall: ${failures} check(s) failed` : 'wall: all checks passed');
process.exit(failures ? 1 : 0);
