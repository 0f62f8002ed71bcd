// Requests to the observability API the page is served by.
//
// Every URL is relative to the API's mount (the folder holding "dashboard"), so the
// dashboard works at /dashboard, /observability/dashboard or behind any proxy prefix.
// A bearer token typed by the user lives in this tab's sessionStorage and travels in
// the Authorization header only: never in a URL, where server logs would keep it.

export const mount = new URL("..", import.meta.url);
const TOKEN_KEY = "observabilipy.token " + mount.pathname;

export class Unauthorized extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The URL of API route `path` ("logs/json") with `params` (null values left out). */
export function url(path, params = {}) {
  const target = new URL(path, mount);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") {
      target.searchParams.set(name, String(value));
    }
  }
  return target;
}

async function request(path, params, accept) {
  const headers = { Accept: accept };
  const bearer = token();
  if (bearer) headers.Authorization = "Bearer " + bearer;
  const response = await fetch(url(path, params), {
    headers,
    cache: "no-store",
    credentials: "same-origin",
  });
  if (response.status === 401) throw new Unauthorized(path);
  return response;
}

/** GET `path` as JSON; refusals become errors naming the route and the API's message. */
export async function getJSON(path, params = {}, { okStatuses = [200] } = {}) {
  const response = await request(path, params, "application/json");
  const body = await response.json().catch(() => null);
  if (!okStatuses.includes(response.status)) {
    const message = body && body.message ? body.message : response.statusText;
    throw new Error(`${path}: HTTP ${response.status}: ${message}`);
  }
  return body;
}

/** GET `path` as text (the Prometheus exposition). */
export async function getText(path, params = {}) {
  const response = await request(path, params, "text/plain");
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.text();
}
