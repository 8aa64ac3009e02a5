import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { setSession } from './api.js';
import { Link, match, navigate, useLocation } from './router.jsx';
import { refreshCart, useCartCount, useCategories, useSession } from './state.js';
import { Browse } from './pages/Browse.jsx';
import { ProductPage } from './pages/Product.jsx';
import { Login, Register } from './pages/Auth.jsx';
import { Cart } from './pages/Cart.jsx';
import { Checkout } from './pages/Checkout.jsx';
import { OrderPage, Orders } from './pages/Orders.jsx';
import { Notifications, Settings } from './pages/Account.jsx';
import { Console } from './pages/Console.jsx';

function Header() {
  const { user } = useSession();
  const count = useCartCount();
  const categories = useCategories();
  const { path, query } = useLocation();
  const [q, setQ] = useState(query.get('q') || '');
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => { if (path === '/search') setQ(query.get('q') || ''); }, [path, query.get('q')]);
  useEffect(() => setMenuOpen(false), [path]);

  const search = (e) => {
    e.preventDefault();
    navigate(`/search?q=${encodeURIComponent(q.trim())}`);
  };
  const logout = () => {
    setSession(null, null);
    refreshCart();
    navigate('/');
  };
  return (
    <header class="site-header">
      <a class="skip" href="#main">Skip to content</a>
      <div class="bar">
        <Link href="/" class="brand">Electronic Store</Link>
        <form class="search" role="search" onSubmit={search}>
          <label for="site-search" class="visually-hidden">Search products</label>
          <input id="site-search" type="search" placeholder="Search products" value={q}
            onInput={(e) => setQ(e.currentTarget.value)} />
          <button type="submit">Search</button>
        </form>
        <nav class="account" aria-label="Account">
          <Link href="/cart" class="cart-link" aria-label={`Cart, ${count} ${count === 1 ? 'item' : 'items'}`}>
            Cart <span class="count" data-testid="cart-count">{count}</span>
          </Link>
          {user ? (
            <div class="menu" onKeyDown={(e) => { if (e.key === 'Escape' && menuOpen) { setMenuOpen(false); e.currentTarget.querySelector('button').focus(); } }}>
              <button type="button" aria-expanded={menuOpen ? 'true' : 'false'} aria-controls="user-menu"
                onClick={() => setMenuOpen(!menuOpen)}>
                {user.first_name || user.username} <span aria-hidden="true">▾</span>
              </button>
              <ul id="user-menu" class={menuOpen ? 'open' : ''}>
                <li><Link href="/orders">My orders</Link></li>
                <li><Link href="/notifications">Notifications</Link></li>
                <li><Link href="/settings">Settings</Link></li>
                {user.role === 'admin' ? <li><Link href="/console">Console</Link></li> : null}
                <li><button type="button" onClick={logout}>Log out</button></li>
              </ul>
            </div>
          ) : (
            <>
              <Link href="/login">Log in</Link>
              <Link href="/register">Register</Link>
            </>
          )}
          {user && user.role === 'admin' ? <Link href="/console" class="console-link">Console</Link> : null}
        </nav>
      </div>
      <nav class="categories" aria-label="Categories">
        <ul>
          <li><Link href="/search">All products</Link></li>
          {categories.map((c) => (
            <li key={c.id}><Link href={`/search?category=${c.id}`}>{c.name}</Link></li>
          ))}
        </ul>
      </nav>
    </header>
  );
}

const ROUTES = [
  ['/', Browse],
  ['/search', Browse],
  ['/products/:id', ProductPage],
  ['/login', Login],
  ['/register', Register],
  ['/cart', Cart],
  ['/checkout', Checkout],
  ['/orders', Orders],
  ['/orders/:id', OrderPage],
  ['/notifications', Notifications],
  ['/settings', Settings],
  ['/console', Console],
  ['/console/:section', Console],
  ['/console/:section/:sub', Console],
];

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>There is nothing here. <Link href="/">Back to the shop</Link>.</p>
    </section>
  );
}

function App() {
  const { path, query } = useLocation();
  const { token } = useSession();
  useEffect(() => { refreshCart(); }, [token]);
  let page = <NotFound />;
  for (const [pattern, Page] of ROUTES) {
    const params = match(pattern, path);
    if (params) { page = <Page params={params} query={query} path={path} key={pattern} />; break; }
  }
  return (
    <>
      <Header />
      <main id="main" tabIndex={-1}>{page}</main>
      <footer class="site-footer"><p>Electronic Store · prices include VAT</p></footer>
    </>
  );
}

render(<App />, document.getElementById('app'));
