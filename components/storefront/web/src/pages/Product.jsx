import { useEffect, useState } from 'preact/hooks';
import { api, explain, formatMoney, getSession } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { refreshCart, useCategories } from '../state.js';
import { ErrorBox, Loading, Notice, usePageTitle } from '../ui.jsx';
import { Availability } from './Browse.jsx';

export function ProductPage({ params }) {
  const id = params.id;
  const categories = useCategories();
  const [product, setProduct] = useState(null);
  const [stock, setStock] = useState(null);
  const [error, setError] = useState('');
  const [qty, setQty] = useState('1');
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState('');
  const [addError, setAddError] = useState('');
  usePageTitle(product ? product.name : 'Product');

  useEffect(() => {
    let live = true;
    setProduct(null); setStock(null); setError(''); setMsg(''); setAddError(''); setQty('1');
    api(`/api/products/${encodeURIComponent(id)}`)
      .then((p) => { if (live) setProduct(p); })
      .catch((e) => { if (live) setError(explain(e, 'product').message); });
    // The inventory's own figure is the freshest.
    api(`/api/inventory/${encodeURIComponent(id)}`)
      .then((s) => { if (live) setStock(s); })
      .catch(() => {});
    return () => { live = false; };
  }, [id]);

  if (error) return <section><h1>Product</h1><ErrorBox message={error} /><p><Link href="/search">Back to all products</Link></p></section>;
  if (!product) return <Loading what="Loading product" />;

  const available = stock ? stock.available : product.available;
  const category = categories.find((c) => c.id === product.category_id);

  const add = async (e) => {
    e.preventDefault();
    setMsg(''); setAddError('');
    const quantity = Number(qty);
    if (!Number.isInteger(quantity) || quantity < 1) { setAddError('Enter a quantity of 1 or more.'); return; }
    if (!getSession().token) { navigate(`/login?next=${encodeURIComponent(location.pathname)}`); return; }
    setBusy(true);
    try {
      await api('/api/cart/items', { method: 'POST', body: { product_id: product.id, quantity } });
      await refreshCart();
      setMsg(`Added ${quantity} × ${product.name} to your cart.`);
    } catch (err) {
      setAddError(explain(err).message);
    } finally { setBusy(false); }
  };

  return (
    <article class="product">
      <p class="crumbs">
        <Link href="/search">All products</Link>
        {category ? <> › <Link href={`/search?category=${category.id}`}>{category.name}</Link></> : null}
      </p>
      <h1>{product.name}</h1>
      <p class="brand-name">{product.brand} · SKU {product.sku}</p>
      <p class="description">{product.description}</p>
      <p class="price big" aria-label="Price">{formatMoney(product.price)}</p>
      <p class="availability" data-testid="availability">
        <Availability available={available} />
      </p>
      {!product.active ? <p class="notice">This product is no longer for sale.</p> : (
        <form class="add-to-cart" onSubmit={add}>
          <ErrorBox message={addError} />
          <div class="field qty">
            <label for="add-qty">Quantity</label>
            <input id="add-qty" type="number" min="1" max={available > 0 ? available : undefined} value={qty}
              onInput={(e) => setQty(e.currentTarget.value)} />
          </div>
          <button type="submit" class="primary" disabled={busy || available <= 0}>
            {available <= 0 ? 'Out of stock' : 'Add to cart'}
          </button>
        </form>
      )}
      <Notice message={msg} />
      {msg ? <p><Link href="/cart">Go to cart</Link></p> : null}
    </article>
  );
}
