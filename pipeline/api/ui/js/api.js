// The worker's JSON API, relative to /ui/ (so a proxy may mount both under a prefix).

const TOKEN_KEY = 'cdp-api-token';
let token = sessionStorage.getItem(TOKEN_KEY) || '';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function setToken(value) {
  token = value;
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export const hasToken = () => token !== '';

export const query = (params) => new URLSearchParams(params).toString();

// One call; an answer other than 2xx is an ApiError carrying the API's own message.
export async function call(path, { method = 'GET', auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(`../v1/${path}`, { method, headers, cache: 'no-store' });
  } catch (error) {
    throw new ApiError(0, `the worker did not answer (${error.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null; // said below
  }
  if (!response.ok) {
    throw new ApiError(response.status, body?.error || `HTTP ${response.status}, no JSON error`);
  }
  if (body === null) throw new ApiError(response.status, 'the answer is not JSON');
  return body;
}
