// A page in Debian's Chromium driven over the DevTools protocol directly, with only the
// domains a memory soak needs. Playwright turns on the Network domain for every page it
// drives, and Chromium then keeps a copy of each response for the debugger: in a long soak
// that copy, not the page, is what grows. A wall has no debugger attached, so the soak drives
// its page this way instead. Needs Node's WebSocket (`node --experimental-websocket` on 20).
//
// Environment: CHROMIUM (the browser, default /usr/bin/chromium).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { WALL_FLAGS } from './browser.mjs';

/** Megabytes in one of memory-infra's size attributes (hexadecimal bytes), or null. */
function sizeMb(node) {
  const v = node?.attrs?.size?.value;
  return v === undefined ? null : parseInt(v, 16) / 1e6;
}

/** Memory-infra trace events folded into per-kind-of-process totals (see `memoryDump`). */
function summariseMemoryDump(events) {
  const kind = new Map();
  for (const e of events) {
    if (e.ph === 'M' && e.name === 'process_name') kind.set(e.pid, e.args.name);
  }
  const byKind = {};
  for (const e of events) {
    const dumps = e.ph === 'v' ? e.args?.dumps : undefined;
    if (!dumps) continue;
    const k = kind.get(e.pid) ?? `pid ${e.pid}`;
    const into = (byKind[k] ??= { footprintMb: 0, allocators: {} });
    const footprint = dumps.process_totals?.private_footprint_bytes;
    if (footprint) into.footprintMb += parseInt(footprint, 16) / 1e6;
    const allocators = dumps.allocators ?? {};
    // A node without a size of its own holds the sum of its children's.
    const size = (name) => sizeMb(allocators[name]) ?? Object.keys(allocators)
      .filter((c) => c.startsWith(`${name}/`) && !c.slice(name.length + 1).includes('/'))
      .reduce((t, c) => t + size(c), 0);
    for (const name of Object.keys(allocators)) {
      if (name.includes('/')) continue;
      const mb = size(name);
      into.allocators[name] = (into.allocators[name] ?? 0) + mb;
    }
  }
  return byKind;
}

/** Chromium started headless with a debugging port, and one page in it. */
export async function openPage({ width, height }) {
  const profile = mkdtempSync(join(tmpdir(), 'gridscope-soak-'));
  const proc = spawn(process.env.CHROMIUM ?? '/usr/bin/chromium', [
    ...WALL_FLAGS,
    '--headless',
    '--remote-debugging-port=0',
    `--user-data-dir=${profile}`,
    `--window-size=${width},${height}`,
    'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const endpoint = await new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('Chromium did not open its debugging port')), 30000);
    proc.stderr.on('data', (d) => {
      text += d;
      const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => reject(new Error(`Chromium exited (${code}): ${text.slice(-500)}`)));
  });
  const ws = new WebSocket(endpoint);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot connect to ${endpoint}`));
  });

  let nextId = 1;
  const pending = new Map();
  const listeners = new Map();
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p?.resolve(msg.result);
    } else {
      for (const f of listeners.get(msg.method) ?? []) f(msg.params, msg.sessionId);
    }
  };
  const call = (method, params = {}, sessionId = undefined) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject, method });
    ws.send(JSON.stringify({ id, method, params, sessionId }));
  });

  const { targetId } = await call('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await call('Target.attachToTarget', { targetId, flatten: true });
  const send = (method, params) => call(method, params, sessionId);
  await send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
  await send('Page.enable');
  await send('Runtime.enable');
  // The page's web workers (MapLibre decodes tiles in them) each have a heap of their own,
  // which the page's heap figures leave out: attach to each as it starts.
  const workers = new Set();
  const onWorker = (e) => {
    if (e.targetInfo.type === 'worker') workers.add(e.sessionId);
  };
  const offWorker = (e) => workers.delete(e.sessionId);
  listeners.set('Target.attachedToTarget', [onWorker]);
  listeners.set('Target.detachedFromTarget', [offWorker]);
  await send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true });

  const evaluate = async (fn, arg) => {
    const r = await send('Runtime.evaluate', {
      // Values that do not survive JSON (a map object a call returned, say) come back as null.
      expression: `Promise.resolve((${fn})(${JSON.stringify(arg ?? null)}))
        .then((v) => { try { return JSON.parse(JSON.stringify(v ?? null)); } catch { return null; } })`,
      awaitPromise: true,
      returnByValue: true,
    });
    if (r.exceptionDetails) throw new Error(r.exceptionDetails.exception?.description ?? r.exceptionDetails.text);
    return r.result.value;
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  return {
    /** Sends a protocol command to the page. */
    send,
    /** Calls `f` with the parameters of each `event` and the session it came from; `off` stops it. */
    on(event, f) {
      listeners.set(event, [...(listeners.get(event) ?? []), f]);
    },
    off(event, f) {
      listeners.set(event, (listeners.get(event) ?? []).filter((g) => g !== f));
    },
    /** Resolves with the parameters of the next `event`. */
    once(event) {
      return new Promise((resolve) => {
        const done = (params) => {
          this.off(event, done);
          resolve(params);
        };
        this.on(event, done);
      });
    },
    /** Loads `url` and waits for its load event. */
    async goto(url) {
      const loaded = this.once('Page.loadEventFired');
      await send('Page.navigate', { url });
      await loaded;
    },
    /**
     * The browser's own account of its memory (memory-infra), summed over processes of the
     * same kind: for each kind ("Renderer", "GPU Process", "Browser"...) its private footprint
     * and the size held by each allocator (malloc, partition_alloc, v8, blink_gc, cc, gpu...),
     * MB. Where the process total says that memory grows, this says which allocator holds it.
     */
    async memoryDump() {
      const events = [];
      const collect = (e) => events.push(...e.value);
      this.on('Tracing.dataCollected', collect);
      const complete = this.once('Tracing.tracingComplete');
      await call('Tracing.start', {
        traceConfig: {
          includedCategories: ['disabled-by-default-memory-infra'],
          excludedCategories: ['*'],
          memoryDumpConfig: { triggers: [] },
        },
        transferMode: 'ReportEvents',
      });
      await call('Tracing.requestMemoryDump', { deterministic: true, levelOfDetail: 'detailed' });
      await call('Tracing.end');
      await complete;
      this.off('Tracing.dataCollected', collect);
      return summariseMemoryDump(events);
    },
    /** Sends a protocol command to each of the page's workers; their answers, in order. */
    sendToWorkers: (method, params) => Promise.all([...workers].map((s) => call(method, params, s))),
    /** Runs `fn(arg)` in the page and returns its (JSON) value. */
    evaluate,
    /** Clicks the element `selector` names. */
    click: (selector) => evaluate((s) => {
      const el = document.querySelector(s);
      if (!el) throw new Error(`no element ${s}`);
      el.click();
    }, selector),
    /** Waits until `fn()` is truthy in the page. */
    async waitForFunction(fn, timeoutMs) {
      const until = Date.now() + timeoutMs;
      while (!(await evaluate(fn))) {
        if (Date.now() > until) {
          throw new Error(`timed out after ${timeoutMs} ms waiting in the page for ${String(fn).replace(/\s+/g, ' ').slice(0, 160)}`);
        }
        await sleep(200);
      }
    },
    waitForTimeout: sleep,
    /** Closes the browser and removes its profile. */
    async close() {
      await call('Browser.close').catch(() => {});
      ws.close();
      await new Promise((resolve) => (proc.exitCode !== null ? resolve() : proc.on('exit', resolve)));
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
