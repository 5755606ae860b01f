// Calls to the daemon's HTTP API: the bearer token, timeouts, JSON errors.

const TOKEN_KEY = 'shoal.token';

/** A failed call: HTTP status (0: none), the API's stable code, a message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value.trim());
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

let unauthorized = () => {};

/** What to do when the daemon answers 401 (the token is wrong or gone). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function reportUnauthorized() {
  unauthorized();
}

/** The default time a call may take (a diff or pull asks a peer). */
export const DEFAULT_TIMEOUT_MS = 20000;

/**
 * Calls `path` (`/api/...`). Options: `method`, `body` (sent as JSON),
 * `signal` (an outside abort), `timeout` (ms). Resolves to the parsed JSON;
 * rejects with an ApiError (code `timed-out` when the time ran out,
 * `aborted` when `signal` fired, `network` when the daemon is unreachable).
 */
export async function api(path, { method = 'GET', body, signal, timeout = DEFAULT_TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeout);
  const forward = () => controller.abort();
  if (signal) {
    if (signal.aborted) controller.abort();
    else signal.addEventListener('abort', forward, { once: true });
  }
  const headers = { Accept: 'application/json' };
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
        cache: 'no-store',
      });
    } catch (error) {
      if (timedOut) throw new ApiError(0, 'timed-out', `no answer within ${Math.round(timeout / 1000)} s`);
      if (controller.signal.aborted) throw new ApiError(0, 'aborted', 'cancelled');
      throw new ApiError(0, 'network', `the daemon is unreachable (${error.message})`);
    }
    let parsed = null;
    const text = await response.text();
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
    }
    if (!response.ok) {
      if (response.status === 401) unauthorized();
      const code = parsed && parsed.code ? parsed.code : `http-${response.status}`;
      const message = parsed && parsed.message ? parsed.message : `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, code, message);
    }
    return parsed;
  } catch (error) {
    if (error instanceof ApiError) throw error;
    if (timedOut) throw new ApiError(0, 'timed-out', `no answer within ${Math.round(timeout / 1000)} s`);
    if (controller.signal.aborted) throw new ApiError(0, 'aborted', 'cancelled');
    throw new ApiError(0, 'network', error.message);
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', forward);
  }
}

/** A path segment, escaped. */
export const seg = encodeURIComponent;

/** `?a=1&b=2` from an object, skipping empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
