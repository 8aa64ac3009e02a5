import { useEffect, useState } from 'preact/hooks';
import { api, explain, formatMoney, parseMoney } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { useCategories } from '../state.js';
import { ErrorBox, Loading, Pager, usePageTitle } from '../ui.jsx';

const SORTS = [
  ['', 'Relevance'],
  ['price', 'Price: low to high'],
  ['-price', 'Price: high to low'],
  ['name', 'Name: A to Z'],
  ['-name', 'Name: Z to A'],
  ['newest', 'Newest first'],
];
const SIZE = 12;

function toMajor(minor) {
  if (minor === null || minor === '' || minor === undefined) return '';
  const n = Number(minor);
  return Number.isFinite(n) ? (n / 100).toFixed(2) : '';
}

export function Availability({ available }) {
  if (available === undefined || available === null) return null;
  if (available <= 0) return <span class="stock out">Out of stock</span>;
  if (available < 5) return <span class="stock low">Only {available} left</span>;
  return <span class="stock in">In stock ({available} available)</span>;
}

export function Browse({ query, path }) {
  const categories = useCategories();
  const params = {
    q: query.get('q') || '',
    category: query.get('category') || '',
    min_price: query.get('min_price') || '',
    max_price: query.get('max_price') || '',
    in_stock: query.get('in_stock') === 'true',
    sort: query.get('sort') || '',
    page: Number(query.get('page')) || 1,
  };
  const key = JSON.stringify(params);
  const [form, setForm] = useState(null);
  const [result, setResult] = useState(null);
  const [error, setError] = useState('');
  const [priceError, setPriceError] = useState('');
  // On a phone the filters start folded so the products come first.
  const [wide] = useState(() => !window.matchMedia || window.matchMedia('(min-width: 641px)').matches);

  useEffect(() => {
    setForm({ ...params, min: toMajor(params.min_price), max: toMajor(params.max_price) });
    setError('');
    let live = true;
    api('/api/products', { query: { ...params, in_stock: params.in_stock ? 'true' : '', size: SIZE } })
      .then((r) => { if (live) setResult(r); })
      .catch((e) => { if (live) { setResult({ items: [], total: 0, page: 1, size: SIZE }); setError(explain(e).message); } });
    return () => { live = false; };
  }, [key]);

  const category = categories.find((c) => String(c.id) === params.category);
  const title = params.q ? `Results for “${params.q}”` : category ? category.name : path === '/' ? 'Welcome to the Electronic Store' : 'All products';
  usePageTitle(params.q ? `Search: ${params.q}` : category ? category.name : '');

  const go = (next) => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v !== '' && v !== false && v !== undefined && !(k === 'page' && v === 1)) qs.set(k, String(v));
    const s = qs.toString();
    navigate(`/search${s ? `?${s}` : ''}`);
  };

  const apply = (e) => {
    e.preventDefault();
    const min = parseMoney(form.min);
    const max = parseMoney(form.max);
    if (Number.isNaN(min) || Number.isNaN(max)) { setPriceError('Enter prices like 149.99'); return; }
    if (min !== undefined && max !== undefined && min > max) { setPriceError('The lowest price is above the highest price'); return; }
    setPriceError('');
    go({ q: form.q.trim(), category: form.category, min_price: min ?? '', max_price: max ?? '', in_stock: form.in_stock, sort: form.sort, page: 1 });
  };

  if (!form) return <Loading />;
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });

  return (
    <section class="browse">
      <h1>{title}</h1>
      {path === '/' && !params.q ? <p class="lead">Laptops, smartphones, audio and accessories, delivered to your door.</p> : null}
      <details class="filter-box" open={wide}>
      <summary>Filters and sorting</summary>
      <form class="filters" onSubmit={apply} aria-label="Filter products">
        <div class="field">
          <label for="flt-q">Keyword</label>
          <input id="flt-q" type="search" value={form.q} onInput={set('q')} />
        </div>
        <div class="field">
          <label for="flt-category">Category</label>
          <select id="flt-category" value={form.category} onChange={set('category')}>
            <option value="">All categories</option>
            {categories.map((c) => <option key={c.id} value={String(c.id)}>{c.name}</option>)}
          </select>
        </div>
        <div class="field">
          <label for="flt-min">Lowest price (EUR)</label>
          <input id="flt-min" inputMode="decimal" placeholder="0.00" value={form.min} onInput={set('min')}
            aria-describedby={priceError ? 'flt-price-error' : undefined} />
        </div>
        <div class="field">
          <label for="flt-max">Highest price (EUR)</label>
          <input id="flt-max" inputMode="decimal" placeholder="any" value={form.max} onInput={set('max')}
            aria-describedby={priceError ? 'flt-price-error' : undefined} />
        </div>
        <div class="field">
          <label for="flt-sort">Sort by</label>
          <select id="flt-sort" value={form.sort} onChange={set('sort')}>
            {SORTS.map(([v, l]) => <option key={v} value={v}>{l}</option>)}
          </select>
        </div>
        <div class="field field-check">
          <input id="flt-stock" type="checkbox" checked={form.in_stock} onChange={set('in_stock')} />
          <label for="flt-stock">In stock only</label>
        </div>
        <button type="submit" class="primary">Apply filters</button>
        {priceError ? <p class="field-error" id="flt-price-error" role="alert">{priceError}</p> : null}
      </form>
      </details>
      <ErrorBox message={error} />
      {!result ? <Loading what="Loading products" /> : (
        <>
          <p class="result-count" role="status">{result.total} {result.total === 1 ? 'product' : 'products'}</p>
          {result.items.length === 0 && !error ? <p>No products match. Try another keyword or fewer filters.</p> : null}
          <ul class="grid" aria-label="Products">
            {result.items.map((p) => (
              <li key={p.id} class="card">
                <h2><Link href={`/products/${p.id}`}>{p.name}</Link></h2>
                <p class="brand-name">{p.brand}</p>
                <p class="price">{formatMoney(p.price)}</p>
                <Availability available={p.available} />
              </li>
            ))}
          </ul>
          <Pager page={result.page} size={result.size} total={result.total} onPage={(page) => go({ ...params, page })} label="Product pages" />
        </>
      )}
    </section>
  );
}
