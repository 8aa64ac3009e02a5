// The store operator's console: admin role only.
import { useEffect, useState } from 'preact/hooks';
import { api, explain, formatMoney, formatTime, parseMoney } from '../api.js';
import { Link } from '../router.jsx';
import { reloadCategories, useCategories, useSession } from '../state.js';
import { ErrorBox, Field, Loading, Notice, Pager, PleaseLogIn, StatusBadge, usePageTitle } from '../ui.jsx';
import { Components, DeadLetters, PlatformOverview, PlatformTiles } from './Platform.jsx';

const SECTIONS = [
  ['products', 'Products'],
  ['categories', 'Categories'],
  ['orders', 'Orders'],
  ['promotions', 'Promotions'],
  ['platform', 'Platform'],
];

const PLATFORM = [
  ['components', 'Components'],
  ['dead-letters', 'Dead letters'],
];

export function Console({ params, query }) {
  const { token, user } = useSession();
  const section = params.section || '';
  const sub = params.sub || '';
  usePageTitle('Console');
  if (!token) return <PleaseLogIn what="open the console" />;
  if (!user || user.role !== 'admin') {
    return <section><h1>Console</h1><p class="error-box" role="alert">You are not allowed to open the console: it is for the store's administrators.</p></section>;
  }
  const Body = section === 'platform'
    ? ({ components: Components, 'dead-letters': DeadLetters }[sub] || (sub ? NotInConsole : PlatformOverview))
    : sub ? NotInConsole
      : ({ products: Products, categories: Categories, orders: AllOrders, promotions: Promotions }[section] || Overview);
  return (
    <div class="console">
      <nav class="console-nav" aria-label="Console">
        <ul>
          <li><Link href="/console" aria-current={section === '' ? 'page' : undefined}>Overview</Link></li>
          {SECTIONS.map(([s, l]) => (
            <li key={s}>
              <Link href={`/console/${s}`} aria-current={section === s && !sub ? 'page' : undefined}>{l}</Link>
              {s === 'platform' ? (
                <ul class="console-subnav">
                  {PLATFORM.map(([p, pl]) => <li key={p}><Link href={`/console/platform/${p}`} aria-current={section === s && sub === p ? 'page' : undefined}>{pl}</Link></li>)}
                </ul>
              ) : null}
            </li>
          ))}
        </ul>
      </nav>
      <div class="console-body"><Body query={query} /></div>
    </div>
  );
}

function Overview() {
  return (
    <section>
      <h1>Console</h1>
      <ul class="tiles">
        <li><Link href="/console/products">Products and stock</Link><p>Create products, change names, prices and availability, set stock.</p></li>
        <li><Link href="/console/categories">Categories</Link><p>List, create and delete categories.</p></li>
        <li><Link href="/console/orders">Orders</Link><p>Every order with its status and history.</p></li>
        <li><Link href="/console/promotions">Promotions</Link><p>E-mail an offer to customers who opted in.</p></li>
      </ul>
      <h2 id="h-platform">Platform</h2>
      <PlatformTiles />
    </section>
  );
}

function NotInConsole() {
  return <section><h1>Page not found</h1><p>The console has no such page. <Link href="/console">Back to the console</Link>.</p></section>;
}

function emptyProduct(categories) {
  return { sku: '', name: '', description: '', brand: '', category_id: categories[0] ? String(categories[0].id) : '', price: '', active: true };
}

function productBody(f) {
  return {
    sku: f.sku.trim(), name: f.name.trim(), description: f.description.trim(), brand: f.brand.trim(),
    category_id: Number(f.category_id), price: { amount: parseMoney(f.price), currency: 'EUR' }, active: !!f.active,
  };
}

function ProductForm({ initial, onSave, submitLabel, idPrefix }) {
  const categories = useCategories();
  const [f, setF] = useState(initial);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (k) => (v) => setF({ ...f, [k]: v });
  useEffect(() => { if (!f.category_id && categories[0]) setF({ ...f, category_id: String(categories[0].id) }); }, [categories]);
  const submit = async (e) => {
    e.preventDefault();
    setError(''); setErrors({});
    const price = parseMoney(f.price);
    if (price === undefined || Number.isNaN(price) || price <= 0) { setErrors({ price: 'Enter a price like 149.99.' }); setError('Please correct the highlighted fields.'); return; }
    setBusy(true);
    try { await onSave(productBody(f)); } catch (err) { const x = explain(err); setError(x.message); setErrors(x.fields); } finally { setBusy(false); }
  };
  const p = idPrefix;
  return (
    <form onSubmit={submit} class="product-form" noValidate>
      <ErrorBox message={error} />
      <div class="row">
        <Field label="Name" name={`${p}-name`} value={f.name} onInput={set('name')} error={errors.name} required />
        <Field label="Price (EUR)" name={`${p}-price`} value={f.price} onInput={set('price')} error={errors.price || errors.amount} inputMode="decimal" required />
      </div>
      <div class="row">
        <Field label="SKU" name={`${p}-sku`} value={f.sku} onInput={set('sku')} error={errors.sku} required />
        <Field label="Brand" name={`${p}-brand`} value={f.brand} onInput={set('brand')} error={errors.brand} required />
      </div>
      <div class="field">
        <label for={`f-${p}-category`}>Category</label>
        <select id={`f-${p}-category`} value={f.category_id} onChange={(e) => set('category_id')(e.currentTarget.value)}>
          {categories.map((c) => <option key={c.id} value={String(c.id)}>{c.name}</option>)}
        </select>
      </div>
      <Field label="Description" name={`${p}-description`} type="textarea" value={f.description} onInput={set('description')} error={errors.description} />
      <Field label="Active (for sale)" name={`${p}-active`} type="checkbox" value={f.active} onInput={set('active')} />
      <button type="submit" class="primary" disabled={busy}>{submitLabel}</button>
    </form>
  );
}

function StockForm({ product, stock, onSaved }) {
  const [value, setValue] = useState(stock === undefined || stock === null ? '' : String(stock));
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => setValue(stock === undefined || stock === null ? '' : String(stock)), [stock]);
  const submit = async (e) => {
    e.preventDefault();
    const available = Number(value);
    if (value === '' || !Number.isInteger(available) || available < 0) { setError('Enter a whole number, 0 or more.'); return; }
    setBusy(true); setError('');
    try {
      const r = await api(`/api/inventory/${product.id}`, { method: 'PUT', body: { available } });
      onSaved(r && typeof r.available === 'number' ? r.available : available);
    } catch (err) { setError(explain(err).message); } finally { setBusy(false); }
  };
  const id = `stock-${product.id}`;
  return (
    <form class="stock-form" onSubmit={submit}>
      <label for={id} class="visually-hidden">Stock for {product.name}</label>
      <input id={id} type="number" min="0" value={value} onInput={(e) => setValue(e.currentTarget.value)}
        aria-describedby={error ? `${id}-error` : undefined} />
      <button type="submit" disabled={busy} aria-label={`Set stock for ${product.name}`}>Set</button>
      {error ? <p class="field-error" id={`${id}-error`} role="alert">{error}</p> : null}
    </form>
  );
}

function Products() {
  const categories = useCategories();
  const [page, setPage] = useState(1);
  const [data, setData] = useState(null);
  const [stock, setStock] = useState({});
  const [error, setError] = useState('');
  const [msg, setMsg] = useState('');
  const [editing, setEditing] = useState(null);
  const [creating, setCreating] = useState(false);
  const [lookup, setLookup] = useState('');

  const load = () => api('/api/products', { query: { page, size: 20, sort: 'name' } }).then((d) => {
    setData(d);
    d.items.forEach((p) => api(`/api/inventory/${p.id}`).then((s) => setStock((m) => ({ ...m, [p.id]: s.available }))).catch(() => {}));
  }).catch((e) => { setData({ items: [], total: 0, page: 1, size: 20 }); setError(explain(e).message); });
  useEffect(() => { load(); }, [page]);

  const find = async (e) => {
    e.preventDefault();
    setError('');
    try {
      const p = await api(`/api/products/${encodeURIComponent(lookup.trim())}`);
      setEditing(p);
    } catch (err) { setError(explain(err, 'product').message); }
  };

  if (!data) return <Loading what="Loading products" />;
  const catName = (id) => (categories.find((c) => c.id === id) || {}).name || id;
  return (
    <section>
      <h1>Products</h1>
      <ErrorBox message={error} />
      <Notice message={msg} />
      <p class="actions">
        <button type="button" onClick={() => { setCreating(!creating); setEditing(null); }} aria-expanded={creating ? 'true' : 'false'}>
          {creating ? 'Close the new product form' : 'New product'}
        </button>
      </p>
      {creating ? (
        <section class="panel" aria-labelledby="h-new-product">
          <h2 id="h-new-product">New product</h2>
          <ProductForm idPrefix="new" initial={emptyProduct(categories)} submitLabel="Create product"
            onSave={async (body) => { const p = await api('/api/products', { method: 'POST', body }); setCreating(false); setMsg(`Created ${p.name} (id ${p.id}).`); load(); }} />
        </section>
      ) : null}
      {editing ? (
        <section class="panel" aria-labelledby="h-edit-product">
          <h2 id="h-edit-product">Edit {editing.name}</h2>
          <ProductForm idPrefix="edit" key={editing.id}
            initial={{ ...editing, category_id: String(editing.category_id), price: (editing.price.amount / 100).toFixed(2) }}
            submitLabel="Save product"
            onSave={async (body) => { const p = await api(`/api/products/${editing.id}`, { method: 'PUT', body }); setEditing(null); setMsg(`Saved ${(p && p.name) || body.name}.`); load(); }} />
          <button type="button" onClick={() => setEditing(null)}>Close</button>
        </section>
      ) : null}
      <form class="inline" onSubmit={find}>
        <label for="find-product">Open a product by id (also inactive ones)</label>
        <input id="find-product" inputMode="numeric" value={lookup} onInput={(e) => setLookup(e.currentTarget.value)} />
        <button type="submit">Open</button>
      </form>
      <div class="table-wrap">
        <table class="products-table">
          <thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Category</th><th scope="col">Price</th><th scope="col">Active</th><th scope="col">Stock</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            {data.items.map((p) => (
              <tr key={p.id} data-testid={`product-row-${p.id}`}>
                <td>{p.id}</td>
                <td>{p.name}<br /><span class="muted">{p.brand} · {p.sku}</span></td>
                <td>{catName(p.category_id)}</td>
                <td>{formatMoney(p.price)}</td>
                <td>{p.active ? 'yes' : 'no'}</td>
                <td>
                  <StockForm product={p} stock={stock[p.id] ?? p.available}
                    onSaved={(n) => { setStock((m) => ({ ...m, [p.id]: n })); setMsg(`Stock of ${p.name} set to ${n}.`); }} />
                </td>
                <td><button type="button" onClick={() => { setEditing(p); setCreating(false); window.scrollTo(0, 0); }} aria-label={`Edit ${p.name}`}>Edit</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="muted">Inactive products are not listed; open them by id.</p>
      <Pager page={data.page} size={data.size} total={data.total} onPage={setPage} label="Product pages" />
    </section>
  );
}

function Categories() {
  const categories = useCategories();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [errors, setErrors] = useState({});
  const [error, setError] = useState('');
  const [msg, setMsg] = useState('');
  const create = async (e) => {
    e.preventDefault();
    setError(''); setErrors({}); setMsg('');
    if (!name.trim()) { setErrors({ name: 'Please fill this in.' }); return; }
    try {
      await api('/api/categories', { method: 'POST', body: { name: name.trim(), description: description.trim() } });
      setMsg(`Created the category ${name.trim()}.`); setName(''); setDescription('');
      reloadCategories();
    } catch (err) { const x = explain(err); setError(x.message); setErrors(x.fields); }
  };
  const remove = async (c) => {
    setError(''); setMsg('');
    try {
      await api(`/api/categories/${c.id}`, { method: 'DELETE' });
      setMsg(`Deleted the category ${c.name}.`);
      reloadCategories();
    } catch (err) {
      setError(err.status === 409 ? `${c.name} still has products: move or delete them first.` : explain(err).message);
    }
  };
  return (
    <section>
      <h1>Categories</h1>
      <ErrorBox message={error} />
      <Notice message={msg} />
      <table>
        <thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Description</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>
          {categories.map((c) => (
            <tr key={c.id}><td>{c.id}</td><td>{c.name}</td><td>{c.description}</td>
              <td><button type="button" class="danger" onClick={() => remove(c)} aria-label={`Delete ${c.name}`}>Delete</button></td></tr>
          ))}
        </tbody>
      </table>
      <section class="panel" aria-labelledby="h-new-cat">
        <h2 id="h-new-cat">New category</h2>
        <form onSubmit={create} noValidate>
          <Field label="Category name" name="cat-name" value={name} onInput={setName} error={errors.name} required />
          <Field label="Category description" name="cat-description" value={description} onInput={setDescription} error={errors.description} />
          <button type="submit" class="primary">Create category</button>
        </form>
      </section>
    </section>
  );
}

function AllOrders() {
  const [page, setPage] = useState(1);
  const [data, setData] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api('/api/orders', { query: { page, size: 20 } }).then(setData).catch((e) => { setData({ items: [] }); setError(explain(e).message); });
  }, [page]);
  if (!data) return <Loading what="Loading orders" />;
  return (
    <section>
      <h1>All orders</h1>
      <ErrorBox message={error} />
      <p class="muted">{data.total ?? data.items.length} orders</p>
      <div class="table-wrap">
        <table class="orders">
          <thead><tr><th scope="col">Order</th><th scope="col">Customer</th><th scope="col">Placed</th><th scope="col">Status</th><th scope="col">Total</th><th scope="col">History</th></tr></thead>
          <tbody>
            {data.items.map((o) => (
              <tr key={o.id}>
                <td><Link href={`/orders/${o.id}`}>{o.id.slice(0, 8)}</Link></td>
                <td><code>{String(o.user_id || '').slice(0, 8)}</code></td>
                <td>{formatTime(o.created_at)}</td>
                <td><StatusBadge status={o.status} />{o.reason ? <div class="muted">{o.reason}</div> : null}</td>
                <td>{formatMoney(o.total)}</td>
                <td>
                  {Array.isArray(o.history) && o.history.length ? (
                    <details><summary>{o.history.length} changes</summary>
                      <ol class="history">{o.history.map((h, i) => <li key={i}>{h.status} <time dateTime={h.at}>{formatTime(h.at)}</time>{h.reason ? ` — ${h.reason}` : ''}</li>)}</ol>
                    </details>
                  ) : '—'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Pager page={data.page} size={data.size} total={data.total} onPage={setPage} label="Order pages" />
    </section>
  );
}

function Promotions() {
  const [subject, setSubject] = useState('');
  const [body, setBody] = useState('');
  const [errors, setErrors] = useState({});
  const [error, setError] = useState('');
  const [msg, setMsg] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(''); setErrors({}); setMsg('');
    const local = {};
    if (!subject.trim()) local.subject = 'Please fill this in.';
    if (!body.trim()) local.body = 'Please fill this in.';
    if (Object.keys(local).length) { setErrors(local); return; }
    setBusy(true);
    try {
      const r = await api('/api/promotions', { method: 'POST', body: { subject: subject.trim(), body: body.trim() } });
      setMsg(`Promotion published${r && r.published_at ? ` at ${formatTime(r.published_at)}` : ''}: it is e-mailed to every customer who opted in to offers.`);
      setSubject(''); setBody('');
    } catch (err) { const x = explain(err); setError(x.message); setErrors(x.fields); } finally { setBusy(false); }
  };
  return (
    <section class="narrow">
      <h1>Promotions</h1>
      <p>Send an offer by e-mail to the customers who opted in to marketing.</p>
      <form onSubmit={submit} noValidate>
        <ErrorBox message={error} />
        <Field label="Subject" name="promo-subject" value={subject} onInput={setSubject} error={errors.subject} required />
        <Field label="Message" name="promo-body" type="textarea" rows={6} value={body} onInput={setBody} error={errors.body} required />
        <button type="submit" class="primary" disabled={busy}>Publish promotion</button>
        <Notice message={msg} />
      </form>
    </section>
  );
}
