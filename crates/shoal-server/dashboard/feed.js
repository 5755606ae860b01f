// The change feed: GET /api/changes read with fetch and a ReadableStream
// (EventSource cannot send the bearer header), parsed as text/event-stream,
// reconnected after a drop from the last event seen (Last-Event-ID / since).

import { reportUnauthorized, token } from './api.js';

/** No byte for this long (keep-alives come every 15 s): the stream is dead. */
const SILENCE_MS = 40000;
const MAX_BACKOFF_MS = 10000;

/**
 * Starts reading the feed from `since` (a db_version; null: from now).
 * `onChange(event)` gets each change's parsed data; `onState(state)` gets
 * `connecting`, `live` or `reconnecting`. Returns `{ stop() }`.
 */
export function startFeed({ since = null, onChange, onState = () => {} }) {
  let last = since;
  let stopped = false;
  let controller = null;
  let backoff = 1000;

  async function connectOnce() {
    controller = new AbortController();
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
    };
    try {
      const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${token()}` };
      let url = '/api/changes';
      if (last !== null && last !== undefined) {
        headers['Last-Event-ID'] = String(last);
        url += `?since=${encodeURIComponent(last)}`;
      }
      arm();
      const response = await fetch(url, { headers, signal: controller.signal, cache: 'no-store' });
      if (response.status === 401) {
        reportUnauthorized();
        stopped = true;
        return;
      }
      if (response.status === 400 && last !== null) {
        // The node never reached our resume point (its database was
        // replaced): follow it from now on.
        last = null;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      onState('live');
      backoff = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          dispatch(block);
        }
      }
    } catch {
      // A drop, a silence or a stop: the loop decides.
    } finally {
      clearTimeout(watchdog);
    }
  }

  function dispatch(block) {
    let event = 'message';
    let id = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (id !== null && id !== '') last = id;
    if (event !== 'change' || data.length === 0) return;
    let change;
    try {
      change = JSON.parse(data.join('\n'));
    } catch {
      return;
    }
    if (id === null && change.db_version !== undefined) last = change.db_version;
    try {
      onChange(change);
    } catch (error) {
      console.error('change handler failed', error);
    }
  }

  (async () => {
    onState('connecting');
    while (!stopped) {
      await connectOnce();
      if (stopped) break;
      onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  })();

  return {
    stop() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}
