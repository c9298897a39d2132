// The REST API client. Tokens live in this module's memory only: never in
// localStorage, sessionStorage or a cookie, so a reload means a new login. The
// password is used for the one GET /auth request and not kept.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Raised when the session is gone (logged out elsewhere, refresh refused). */
export class SessionExpired extends ApiError {}

const REFRESH_MARGIN_S = 60;
const PAGE_SIZE = 500;

let session = null;          // {username, accessToken, refreshToken, expiresAt}
let refreshing = null;       // the in-flight refresh, shared by concurrent callers
const expiredListeners = [];

export function onSessionExpired(fn) {
  expiredListeners.push(fn);
}

export function currentUser() {
  return session ? session.username : null;
}

function basic(username, password) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return 'Basic ' + btoa(binary);
}

async function messageOf(response) {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body.message === 'string') return body.message;
  } catch (_) { /* plain text */ }
  return text.trim() || `${response.status} ${response.statusText}`;
}

function adopt(username, body) {
  session = {
    username,
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    expiresAt: Number(body.expires_at) || 0,
  };
}

export async function login(username, password) {
  let response;
  try {
    response = await fetch('/auth', {
      headers: {Authorization: basic(username, password)},
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'The backend cannot be reached.');
  }
  if (response.status === 401) throw new ApiError(401, 'Wrong username or password.');
  if (!response.ok) throw new ApiError(response.status, await messageOf(response));
  adopt(username, await response.json());
}

async function refresh() {
  if (!session) throw new SessionExpired(401, 'Not logged in.');
  const {username, accessToken, refreshToken} = session;
  const response = await fetch('/auth/token', {
    method: 'POST',
    headers: {Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json'},
    body: JSON.stringify({refresh_token: refreshToken}),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (!response.ok) {
    expire();
    throw new SessionExpired(401, 'Your session has expired; please log in again.');
  }
  adopt(username, await response.json());
}

function freshToken(force = false) {
  if (!session) return Promise.reject(new SessionExpired(401, 'Not logged in.'));
  const left = session.expiresAt - Date.now() / 1000;
  if (!force && left > REFRESH_MARGIN_S) return Promise.resolve(session.accessToken);
  if (!refreshing) refreshing = refresh().finally(() => { refreshing = null; });
  return refreshing.then(() => session.accessToken);
}

function expire() {
  if (!session) return;
  session = null;
  for (const fn of expiredListeners) fn();
}

export async function logout() {
  if (!session) return;
  const {accessToken, refreshToken} = session;
  session = null;
  try {
    await fetch('/auth/logout', {
      method: 'POST',
      headers: {Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json'},
      body: JSON.stringify({refresh_token: refreshToken}),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (_) { /* the tokens are forgotten either way */ }
}

/**
 * One API request. Returns {status, data, headers}; throws ApiError on a non-2xx
 * answer, SessionExpired when the session cannot be renewed.
 */
export async function request(method, path, {params, body} = {}) {
  let url = path;
  if (params) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.append(k, v);
    const qs = query.toString();
    if (qs) url += `?${qs}`;
  }
  for (let attempt = 0; ; attempt++) {
    const token = await freshToken(attempt > 0);
    const init = {method, headers: {Authorization: `Bearer ${token}`}, credentials: 'omit', cache: 'no-store'};
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new ApiError(0, 'The backend cannot be reached.');
    }
    if (response.status === 401 && attempt === 0) continue;  // token expired early: refresh once
    if (response.status === 401) {
      expire();
      throw new SessionExpired(401, 'Your session has expired; please log in again.');
    }
    if (!response.ok) throw new ApiError(response.status, await messageOf(response));
    const text = await response.text();
    return {status: response.status, data: text ? JSON.parse(text) : null, headers: response.headers};
  }
}

export async function get(path, params) {
  return (await request('GET', path, {params})).data;
}

/** Every item of a list, fetched PAGE_SIZE at a time with limit/continue. */
export async function listAll(path, params = {}) {
  const items = [];
  let token = '';
  for (;;) {
    const {data, headers} = await request('GET', path, {params: {...params, limit: PAGE_SIZE, continue: token}});
    if (Array.isArray(data)) items.push(...data);
    token = headers.get('Sensu-Continue') || '';
    if (!token) return items;
  }
}

/** The public /health body (503 without quorum still carries it). */
export async function health() {
  let response;
  try {
    response = await fetch('/health', {credentials: 'omit', cache: 'no-store'});
  } catch (err) {
    throw new ApiError(0, 'The backend cannot be reached.');
  }
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (_) {
    throw new ApiError(response.status, text.trim() || `${response.status} ${response.statusText}`);
  }
}

export function nsPath(namespace, ...parts) {
  return ['/api/core/v2/namespaces', namespace, ...parts].map((p, i) => (i === 0 ? p : encodeURIComponent(p))).join('/');
}
