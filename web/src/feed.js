// The live feed: server-sent events from /api/v1/events, read with fetch so the key travels in
// a header, reconnecting by itself (a server restart, a network blip) with backoff.

import { authHeaders, serverUrl } from './api.js';
import { CHANNELS, STATUSES } from './format.js';
import { cityTime } from './time.js';

const FEED_MAX = 40;

/** Reads the event stream; calls `handlers[event](data)` for each event. Never returns. */
export async function follow(handlers, onConnected) {
  let backoff = 500;
  for (;;) {
    try {
      const resp = await fetch(serverUrl('/api/v1/events', { backlog: 30 }), {
        headers: { ...authHeaders(), Accept: 'text/event-stream' },
        cache: 'no-store',
      });
      if (!resp.ok) throw new Error(`events: ${resp.status}`);
      onConnected(true);
      backoff = 500;
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          dispatch(buffer.slice(0, end), handlers);
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (e) {
      if (e?.message?.startsWith('events:')) console.warn(e.message);
    }
    onConnected(false);
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 8000);
  }
}

function dispatch(block, handlers) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (!data.length || !handlers[name]) return;
  try {
    handlers[name](JSON.parse(data.join('\n')));
  } catch (e) {
    console.warn(`feed event ${name}:`, e.message);
  }
}

/** The feed list on screen: newest first, at most FEED_MAX items, one per report. */
export class FeedList {
  constructor(list, onPick) {
    this.list = list;
    this.onPick = onPick;
    this.items = new Map();
  }

  /** Adds (or refreshes) a report; `fresh` marks one that just arrived. */
  add(r, fresh) {
    // A report added again moves to the top, and so to the end of the eviction order.
    this.items.get(r.id)?.remove();
    this.items.delete(r.id);
    const where = [r.district?.name, r.street?.name].filter(Boolean).join(' · ');
    const li = document.createElement('li');
    li.dataset.id = r.id;
    const t = Object.assign(document.createElement('span'), { className: 't', textContent: cityTime(new Date(r.reported_at), { day: false, seconds: true }) });
    const what = Object.assign(document.createElement('span'), { className: 'what' });
    what.append(`${r.category_name ?? r.category} `);
    what.append(Object.assign(document.createElement('span'), { className: 'where', textContent: `${where} · ${CHANNELS[r.channel] ?? r.channel}` }));
    const chip = Object.assign(document.createElement('span'), { className: `chip s-${r.status}`, textContent: STATUSES[r.status] ?? r.status });
    li.append(t, what, chip);
    if (fresh) li.classList.add('fresh');
    li.addEventListener('click', () => this.onPick(r));
    this.list.prepend(li);
    this.items.set(r.id, li);
    while (this.items.size > FEED_MAX) {
      const [id, last] = this.items.entries().next().value;
      last.remove();
      this.items.delete(id);
    }
  }

  /** A report moved on: update its status chip. */
  status(id, status) {
    const chip = this.items.get(id)?.querySelector('.chip');
    if (chip) {
      chip.className = `chip s-${status}`;
      chip.textContent = STATUSES[status] ?? status;
    }
  }
}
