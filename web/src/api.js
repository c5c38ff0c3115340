// Talking to the gridscope server: the wall's key (taken once from ?key=, then kept in this
// browser) and JSON requests that turn the server's error bodies into readable exceptions.

const KEY_STORE = 'gridscope.key';

/** Moves a `?key=` from the address into local storage, so it is not left on screen. */
export function takeKeyFromAddress() {
  const url = new URL(window.location.href);
  if (!url.searchParams.has('key')) return;
  const key = url.searchParams.get('key').trim();
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
  url.searchParams.delete('key');
  window.history.replaceState(null, '', url);
}

/** The key this wall uses, or '' for public data only. */
export function apiKey() {
  return localStorage.getItem(KEY_STORE) || '';
}

/** Headers that carry the key, if any. */
export function authHeaders() {
  const key = apiKey();
  return key ? { 'X-API-Key': key } : {};
}

/** An absolute URL on this server with the given query parameters (empty ones left out). */
export function serverUrl(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  return url.toString();
}

/** GETs JSON; throws an Error with the server's message on a non-2xx answer. */
export async function getJson(path, params = {}, { signal } = {}) {
  const resp = await fetch(serverUrl(path, params), { headers: authHeaders(), signal });
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      if (body?.error?.message) message = `${resp.status}: ${body.error.message}`;
    } catch {
      // not JSON; keep the status line
    }
    const err = new Error(`${path}: ${message}`);
    err.status = resp.status;
    throw err;
  }
  return resp.json();
}
