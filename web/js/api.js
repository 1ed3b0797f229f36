// The HTTP API: the token, the envelope, and errors as exceptions with the API's code.

const KEY = "cairn.token";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Calls the API and answers the envelope's data; a failure throws an ApiError (401 signs out).
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let envelope = null;
  try { envelope = await res.json(); } catch { /* not JSON: reported below */ }
  if (!res.ok || !envelope || envelope.success !== true) {
    const error = envelope && envelope.error ? envelope.error : { code: "HTTP_" + res.status, message: res.statusText };
    if (res.status === 401) window.dispatchEvent(new CustomEvent("cairn:signed-out"));
    throw new ApiError(res.status, error.code, error.message);
  }
  return envelope.data;
}

// Calls the API for a body that is not the envelope (a download, an export); a failure throws an ApiError.
export async function raw(method, path) {
  const res = await fetch(path, { method, headers: { Authorization: `Bearer ${token()}` } });
  if (!res.ok) {
    let error = { code: "HTTP_" + res.status, message: res.statusText };
    try { error = (await res.json()).error || error; } catch { /* not JSON */ }
    if (res.status === 401) window.dispatchEvent(new CustomEvent("cairn:signed-out"));
    throw new ApiError(res.status, error.code, error.message);
  }
  return res;
}

// A query string from the values that are set: qs({ page: 2, q: "" }) → "?page=2".
export function qs(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return pairs.length ? "?" + pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&") : "";
}
