import { useEffect, useState } from 'preact/hooks';
import { api, checkoutKey, explain, formatMoney } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { setCartCount, useSession } from '../state.js';
import { ErrorBox, Field, Loading, PleaseLogIn, usePageTitle } from '../ui.jsx';

export function Checkout() {
  usePageTitle('Checkout');
  const { token, user } = useSession();
  const [cart, setCart] = useState(null);
  const [f, setF] = useState({
    name: user ? `${user.first_name || ''} ${user.last_name || ''}`.trim() : '',
    line1: '', line2: '', city: '', postal_code: '', country: 'AT', card_number: '',
  });
  const [errors, setErrors] = useState({});
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  // The Idempotency-Key of the last checkout sent, with what it sent.
  const [sent, setSent] = useState(null);
  const set = (k) => (v) => setF({ ...f, [k]: v });

  useEffect(() => {
    if (token) api('/api/cart').then(setCart).catch((e) => { setCart({ items: [] }); setError(explain(e).message); });
  }, [token]);

  if (!token) return <PleaseLogIn what="check out" />;
  if (!cart) return <Loading what="Loading your cart" />;

  const submit = async (e) => {
    e.preventDefault();
    setError(''); setErrors({});
    const local = {};
    for (const k of ['name', 'line1', 'city', 'postal_code', 'country', 'card_number']) if (!f[k].trim()) local[k] = 'Please fill this in.';
    if (f.country.trim() && !/^[A-Za-z]{2}$/.test(f.country.trim())) local.country = 'Use the two-letter country code, e.g. AT or DE.';
    if (Object.keys(local).length) { setErrors(local); setError('Please correct the highlighted fields.'); return; }
    const shipping_address = {
      name: f.name.trim(), line1: f.line1.trim(), city: f.city.trim(),
      postal_code: f.postal_code.trim(), country: f.country.trim().toUpperCase(),
    };
    if (f.line2.trim()) shipping_address.line2 = f.line2.trim();
    setBusy(true);
    const body = { shipping_address, payment: { card_number: f.card_number.trim() } };
    const attempt = checkoutKey(sent, body);
    setSent(attempt);
    try {
      const order = await api('/api/orders', { method: 'POST', body, headers: { 'Idempotency-Key': attempt.key } });
      setCartCount(0);
      navigate(`/orders/${order.id}`, { replace: true });
    } catch (err) {
      const x = explain(err, 'checkout');
      setError(x.message); setErrors(x.fields);
      setBusy(false);
    }
  };

  const items = cart.items || [];
  return (
    <section class="checkout">
      <h1>Checkout</h1>
      {items.length ? (
        <div class="summary" aria-label="Order summary">
          <h2>Your order</h2>
          <ul>{items.map((i) => <li key={i.product_id}>{i.quantity} × {i.name} <span>{formatMoney(i.line_total)}</span></li>)}</ul>
          <p class="cart-total">Total: <strong>{formatMoney(cart.total)}</strong></p>
        </div>
      ) : <p>Your cart is empty. <Link href="/search">Browse the products</Link>.</p>}
      <form onSubmit={submit} noValidate>
        <ErrorBox message={error} />
        <fieldset>
          <legend>Shipping address</legend>
          <Field label="Full name" name="name" value={f.name} onInput={set('name')} error={errors.name} autocomplete="name" required />
          <Field label="Address" name="line1" value={f.line1} onInput={set('line1')} error={errors.line1} autocomplete="address-line1" required />
          <Field label="Address line 2 (optional)" name="line2" value={f.line2} onInput={set('line2')} error={errors.line2} autocomplete="address-line2" />
          <div class="row">
            <Field label="Postal code" name="postal_code" value={f.postal_code} onInput={set('postal_code')} error={errors.postal_code} autocomplete="postal-code" required />
            <Field label="City" name="city" value={f.city} onInput={set('city')} error={errors.city} autocomplete="address-level2" required />
          </div>
          <Field label="Country" name="country" value={f.country} onInput={set('country')} error={errors.country} autocomplete="country" hint="Two-letter code, e.g. AT, DE, US." maxLength={2} required />
        </fieldset>
        <fieldset>
          <legend>Payment</legend>
          <Field label="Card number" name="card_number" value={f.card_number} onInput={set('card_number')} error={errors.card_number}
            inputMode="numeric" autocomplete="cc-number" required />
        </fieldset>
        <button type="submit" class="primary" disabled={busy}>{busy ? 'Placing your order…' : 'Place order'}</button>
      </form>
    </section>
  );
}
