// The store's API on the same origin: fetch wrapper, token, and errors in words.

const TOKEN_KEY = 'estore.token';
const USER_KEY = 'estore.user';

let session = load();
const listeners = new Set();

function load() {
  try {
    const token = localStorage.getItem(TOKEN_KEY);
    const user = JSON.parse(localStorage.getItem(USER_KEY) || 'null');
    const expires = user && user.__expires_at ? Date.parse(user.__expires_at) : 0;
    if (token && user && (!expires || expires > Date.now())) return { token, user };
  } catch (_) { /* storage unavailable */ }
  return { token: null, user: null };
}

export function getSession() { return session; }

export function subscribeSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function setSession(token, user, expiresAt) {
  session = { token, user };
  try {
    if (token) {
      localStorage.setItem(TOKEN_KEY, token);
      localStorage.setItem(USER_KEY, JSON.stringify({ ...user, __expires_at: expiresAt }));
    } else {
      localStorage.removeItem(TOKEN_KEY);
      localStorage.removeItem(USER_KEY);
    }
  } catch (_) { /* ignore */ }
  listeners.forEach((fn) => fn(session));
}

export function updateUser(user) {
  if (!session.token) return;
  let expiresAt;
  try { expiresAt = JSON.parse(localStorage.getItem(USER_KEY) || '{}').__expires_at; } catch (_) { /* ignore */ }
  setSession(session.token, user, expiresAt);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.errors = (problem && Array.isArray(problem.errors)) ? problem.errors : [];
  }
}

export async function api(path, { method = 'GET', body, query, headers: extra = {} } = {}) {
  let url = path;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '' && v !== false) qs.set(k, String(v));
    }
    const s = qs.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const headers = { Accept: 'application/json', ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let res;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (_) {
    throw new ApiError(0, null);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!res.ok) {
    // An expired or revoked token: forget it so the shopper is asked to log in.
    if (res.status === 401 && session.token) setSession(null, null);
    throw new ApiError(res.status, data);
  }
  return data;
}

const FIELD_NAMES = {
  username: 'Username', email: 'E-mail', password: 'Password', first_name: 'First name',
  last_name: 'Last name', phone: 'Phone', name: 'Name', line1: 'Address', line2: 'Address line 2',
  city: 'City', postal_code: 'Postal code', country: 'Country', card_number: 'Card number',
  quantity: 'Quantity', price: 'Price', sku: 'SKU', subject: 'Subject', body: 'Message',
  available: 'Stock', category_id: 'Category', brand: 'Brand', description: 'Description',
};

/** The last segment of a field path: `shipping_address.city` → `city`. */
export function fieldKey(field) {
  return String(field || '').split('.').pop().replace(/\[\d+\]$/, '');
}

/**
 * Turns an error into words for a shopper: `{message, fields}` where `fields`
 * maps a field key to a sentence shown next to that field.
 * `context` picks the wording of a conflict or a 422 for the form at hand.
 */
export function explain(err, context = '') {
  if (!(err instanceof ApiError)) {
    return { message: 'Something went wrong. Please try again.', fields: {} };
  }
  const fields = {};
  for (const e of err.errors) {
    const key = fieldKey(e.field);
    if (key === 'card_number') fields[key] = 'The card number is not valid. Please check it and try again.';
    else fields[key] = `${FIELD_NAMES[key] || key} ${e.message}.`;
  }
  const detail = (err.problem.detail || '').toLowerCase();
  let message;
  switch (err.status) {
    case 0:
      message = 'The store cannot be reached. Please check your connection and try again.';
      break;
    case 400:
      if (fields.card_number || detail.includes('card')) {
        fields.card_number = fields.card_number || 'The card number is not valid. Please check it and try again.';
        message = 'The card number is not valid. Please check it and try again.';
      } else if (Object.keys(fields).length) {
        message = 'Please correct the highlighted fields.';
      } else {
        message = 'Some of the information entered is not valid. Please check it and try again.';
      }
      break;
    case 401:
      message = context === 'login'
        ? 'The e-mail or password is not correct.'
        : 'Please log in to continue.';
      break;
    case 403:
      message = 'You are not allowed to do that.';
      break;
    case 404:
      message = context === 'order' ? 'We cannot find that order.' : context === 'product'
        ? 'We cannot find that product.' : 'We cannot find what you were looking for.';
      break;
    case 409:
      if (context === 'register') {
        message = 'That e-mail or username is already taken. Try another one, or log in.';
        if (detail.includes('email')) fields.email = 'This e-mail is already registered.';
        else if (detail.includes('username')) fields.username = 'This username is already taken.';
      } else if (context === 'cancel') {
        message = detail.includes('has left')
          ? 'Your parcel has already left, so this order can no longer be cancelled. Nothing was refunded.'
          : 'This order can no longer be cancelled.';
      } else {
        message = 'That cannot be done right now: something changed in the meantime. Please reload and try again.';
      }
      break;
    case 422:
      if (detail.includes('cart is empty')) message = 'Your cart is empty. Add something before checking out.';
      else if (detail.includes('stock') || detail.includes('available')) message = 'Sorry, there is not enough stock for that quantity.';
      else if (detail.includes('no longer')) message = `Sorry, an item in your cart is no longer for sale (${err.problem.detail}).`;
      else message = `That cannot be done: ${err.problem.detail || 'the request was refused'}.`;
      break;
    case 429: {
      message = 'Too many attempts. Please wait a minute and try again.';
      break;
    }
    default:
      message = err.status >= 500
        ? 'The store has a problem right now. Please try again in a moment.'
        : 'Something went wrong. Please try again.';
  }
  return { message, fields };
}

/**
 * An Idempotency-Key for a checkout: one per distinct request, so that sending the
 * same order again (a double click, a retry after the network failed) places it once,
 * while a corrected form is a new checkout. `previous` is `{request, key}` of the last
 * one sent.
 */
export function checkoutKey(previous, request) {
  const text = JSON.stringify(request);
  if (previous && previous.request === text) return previous;
  // getRandomValues works outside secure contexts too (a shop served over plain HTTP).
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return { request: text, key: Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('') };
}

// Money: integer minor units with a currency.
export function formatMoney(m) {
  if (!m || typeof m.amount !== 'number') return '';
  const neg = m.amount < 0;
  const abs = Math.abs(m.amount);
  const major = Math.floor(abs / 100);
  const minor = String(abs % 100).padStart(2, '0');
  return `${neg ? '-' : ''}${major}.${minor} ${m.currency || 'EUR'}`;
}

/** "149.99" (or "149,99", "149.99 EUR") → 14999; '' → undefined; invalid → NaN. */
export function parseMoney(text) {
  const s = String(text ?? '').trim().replace(/\s*(eur|€)$/i, '').replace(',', '.');
  if (!s) return undefined;
  if (!/^\d+(\.\d{0,2})?$/.test(s)) return NaN;
  const [maj, min = ''] = s.split('.');
  return Number(maj) * 100 + Number((min + '00').slice(0, 2));
}

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}
