// Small DOM and formatting helpers shared by every view.

/**
 * Creates an element. `attrs` keys: `class`, `text`, `on<Event>` handlers,
 * `dataset` (an object), and any other attribute (`false`/`null` omit it).
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'value') node.value = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces every child of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** `12D3KooW…x7Yq`: enough of a peer id to tell peers apart. */
export function shortPeer(peer) {
  if (!peer || peer.length <= 16) return peer || '';
  return `${peer.slice(0, 8)}…${peer.slice(-6)}`;
}

/** "just now", "42 s ago", "5 min ago", or a date. */
export function ago(ms) {
  if (ms === null || ms === undefined) return 'never';
  const seconds = Math.round((Date.now() - ms) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(ms).toLocaleString();
}

export function bytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** A value as one line of JSON, cut at `max` characters. */
export function preview(value, max = 120) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = 'undefined';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const STATUS_LABELS = {
  'in-sync': 'in sync',
  'local-only': 'local only',
  'peer-only': 'peer only',
  diverged: 'diverged',
  'assets-missing': 'assets missing',
};

/** A coloured badge for a sync status, optionally with a count. */
export function statusBadge(status, count) {
  const label = STATUS_LABELS[status] || status;
  return h(
    'span',
    { class: `badge status-${status}`, 'data-status': status },
    count === undefined ? label : `${count} ${label}`,
  );
}

/** A coloured badge for a peer's connection state. */
export function stateBadge(state) {
  return h('span', { class: `badge state-${state}`, 'data-testid': 'peer-state' }, state);
}

/** Copies `text` to the clipboard; resolves to whether it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { class: 'offscreen', readonly: true }, text);
    document.body.append(area);
    area.select();
    let done = false;
    try {
      done = document.execCommand('copy');
    } catch {
      done = false;
    }
    area.remove();
    return done;
  }
}

/** Calls `fn` once, `wait` ms after the last of a burst of calls. */
export function debounce(fn, wait) {
  let timer = null;
  const call = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, wait);
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}
