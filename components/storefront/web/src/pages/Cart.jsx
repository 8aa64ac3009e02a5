import { useEffect, useState } from 'preact/hooks';
import { api, explain, formatMoney } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { cartCountOf, setCartCount, useSession } from '../state.js';
import { ErrorBox, Loading, PleaseLogIn, usePageTitle } from '../ui.jsx';

function CartLine({ item, onChanged, onError }) {
  const [qty, setQty] = useState(String(item.quantity));
  const [busy, setBusy] = useState(false);
  useEffect(() => setQty(String(item.quantity)), [item.quantity]);
  const run = async (fn) => {
    setBusy(true); onError('');
    try { onChanged(await fn()); } catch (e) { onError(explain(e).message); setQty(String(item.quantity)); } finally { setBusy(false); }
  };
  const update = (e) => {
    e.preventDefault();
    const quantity = Number(qty);
    if (!Number.isInteger(quantity) || quantity < 1) { onError('Enter a quantity of 1 or more, or remove the item.'); return; }
    if (quantity === item.quantity) return;
    run(() => api(`/api/cart/items/${item.product_id}`, { method: 'PUT', body: { quantity } }));
  };
  const remove = () => run(() => api(`/api/cart/items/${item.product_id}`, { method: 'DELETE' }));
  const qid = `qty-${item.product_id}`;
  return (
    <li class="cart-line" aria-label={item.name}>
      <div class="cart-name">
        <Link href={`/products/${item.product_id}`}>{item.name}</Link>
        <span class="unit">{formatMoney(item.unit_price)} each</span>
      </div>
      <form class="cart-qty" onSubmit={update}>
        <label for={qid}>Quantity of {item.name}</label>
        <input id={qid} type="number" min="1" value={qty} onInput={(e) => setQty(e.currentTarget.value)} />
        <button type="submit" disabled={busy}>Update</button>
      </form>
      <span class="line-total">{formatMoney(item.line_total)}</span>
      <button type="button" class="link-button" onClick={remove} disabled={busy} aria-label={`Remove ${item.name}`}>Remove</button>
    </li>
  );
}

export function Cart() {
  usePageTitle('Cart');
  const { token } = useSession();
  const [cart, setCart] = useState(null);
  const [error, setError] = useState('');

  const changed = (c) => {
    // PUT/DELETE may answer with the cart or nothing: reload to be sure.
    if (c && Array.isArray(c.items)) { setCart(c); setCartCount(cartCountOf(c)); } else load();
  };
  const load = () => api('/api/cart').then((c) => { setCart(c); setCartCount(cartCountOf(c)); })
    .catch((e) => { setCart({ items: [] }); setError(explain(e).message); });
  useEffect(() => { if (token) load(); }, [token]);

  if (!token) return <PleaseLogIn what="see your cart" />;
  if (!cart) return <Loading what="Loading your cart" />;
  const items = cart.items || [];
  return (
    <section class="cart">
      <h1>Your cart</h1>
      <ErrorBox message={error} />
      {items.length === 0 ? (
        <p>Your cart is empty. <Link href="/search">Browse the products</Link>.</p>
      ) : (
        <>
          <ul class="cart-lines" aria-label="Items in your cart">
            {items.map((i) => <CartLine key={i.product_id} item={i} onChanged={changed} onError={setError} />)}
          </ul>
          <p class="cart-total">Total: <strong data-testid="cart-total">{formatMoney(cart.total)}</strong></p>
          <button type="button" class="primary" onClick={() => navigate('/checkout')}>Checkout</button>
        </>
      )}
    </section>
  );
}
