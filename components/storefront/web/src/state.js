// Shared state: the session, the cart's item count and the categories.
import { useEffect, useState } from 'preact/hooks';
import { api, getSession, subscribeSession } from './api.js';

export function useSession() {
  const [s, setS] = useState(getSession());
  useEffect(() => subscribeSession(setS), []);
  return s;
}

let cartCount = 0;
const cartListeners = new Set();

export function setCartCount(n) {
  cartCount = n;
  cartListeners.forEach((fn) => fn(n));
}

export function cartCountOf(cart) {
  return (cart && cart.items ? cart.items : []).reduce((n, i) => n + (i.quantity || 0), 0);
}

export async function refreshCart() {
  if (!getSession().token) { setCartCount(0); return null; }
  try {
    const cart = await api('/api/cart');
    setCartCount(cartCountOf(cart));
    return cart;
  } catch (_) { return null; }
}

export function useCartCount() {
  const [n, setN] = useState(cartCount);
  useEffect(() => {
    cartListeners.add(setN);
    return () => cartListeners.delete(setN);
  }, []);
  return n;
}

let categories = null;
let categoriesPromise = null;
const catListeners = new Set();

export function reloadCategories() {
  categoriesPromise = api('/api/categories')
    .then((list) => {
      categories = (Array.isArray(list) ? list : (list && list.items) || [])
        .slice().sort((a, b) => a.name.localeCompare(b.name));
      catListeners.forEach((fn) => fn(categories));
      return categories;
    })
    .catch(() => { categoriesPromise = null; return categories || []; });
  return categoriesPromise;
}

export function useCategories() {
  const [list, setList] = useState(categories || []);
  useEffect(() => {
    catListeners.add(setList);
    if (!categoriesPromise) reloadCategories();
    return () => catListeners.delete(setList);
  }, []);
  return list;
}
