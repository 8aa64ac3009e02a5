import { useEffect, useRef, useState } from 'preact/hooks';
import { api, explain, formatMoney, formatTime, getSession } from '../api.js';
import { Link } from '../router.jsx';
import { useSession } from '../state.js';
import { ErrorBox, Loading, Notice, Pager, PleaseLogIn, StatusBadge, usePageTitle } from '../ui.jsx';

const FINAL = ['DELIVERED', 'CANCELLED'];
const CANCELLABLE = ['PENDING', 'RESERVED', 'CONFIRMED'];
const DESCRIBE = {
  PENDING: 'We have received your order.',
  RESERVED: 'Your items are reserved; we are taking the payment.',
  CONFIRMED: 'Payment received; your order is being packed.',
  SHIPPED: 'Your order is on its way.',
  DELIVERED: 'Your order has been delivered.',
  CANCELLED: 'This order was cancelled.',
};

/** The reason for a cancellation in a shopper's words. */
export function explainReason(reason) {
  if (!reason) return '';
  const r = reason.toLowerCase();
  if (r.includes('declined')) return `The payment was declined by your card issuer (${reason}). You have not been charged.`;
  if (r.startsWith('payment failed')) return `The payment did not go through (${reason.replace(/^payment failed:\s*/i, '')}).`;
  if (r.startsWith('not enough stock')) return `Some items were no longer in stock (${reason.replace(/^not enough stock:\s*/i, '')}).`;
  if (r.includes('by the customer')) return 'You cancelled this order.';
  if (r.includes('by the store')) return 'The store cancelled this order.';
  return reason.charAt(0).toUpperCase() + reason.slice(1) + '.';
}

function sameChange(a, b) { return a.status === b.status && a.at === b.at; }

export function OrderPage({ params }) {
  const id = params.id;
  const { token } = useSession();
  usePageTitle('Order');
  const [order, setOrder] = useState(null);
  const [error, setError] = useState('');
  const [shipment, setShipment] = useState(null);
  const [live, setLive] = useState('connecting');
  const [cancelMsg, setCancelMsg] = useState('');
  const [cancelError, setCancelError] = useState('');
  const [busy, setBusy] = useState(false);
  const historyRef = useRef([]);

  const merge = (o) => {
    // A fetched order never moves the page back behind what the stream showed.
    setOrder((prev) => {
      if (prev && (o.history || []).length < (prev.history || []).length) return { ...o, status: prev.status, reason: prev.reason, history: prev.history };
      historyRef.current = o.history || [];
      return o;
    });
  };
  const fetchOrder = () => api(`/api/orders/${encodeURIComponent(id)}`).then(merge);
  const fetchShipment = () => api(`/api/shipments/${encodeURIComponent(id)}`).then(setShipment).catch(() => {});

  useEffect(() => {
    if (!token) return undefined;
    let alive = true;
    setOrder(null); setShipment(null); setError('');
    fetchOrder().catch((e) => { if (alive) setError(explain(e, 'order').message); });
    const es = new EventSource(`/api/orders/${encodeURIComponent(id)}/events?access_token=${encodeURIComponent(getSession().token)}`);
    es.onopen = () => alive && setLive('live');
    es.addEventListener('status', (ev) => {
      if (!alive) return;
      let change;
      try { change = JSON.parse(ev.data); } catch (_) { return; }
      const entry = { status: change.status, at: change.at, ...(change.reason ? { reason: change.reason } : {}) };
      setOrder((prev) => {
        if (!prev) return prev;
        const history = prev.history || [];
        const known = history.some((h) => sameChange(h, entry));
        const next = known ? history : [...history, entry];
        historyRef.current = next;
        return { ...prev, status: change.status, reason: change.reason || prev.reason, history: next };
      });
      // Payment and shipment details change with the status: read them once per change.
      fetchOrder().catch(() => {});
      if (change.status === 'SHIPPED' || change.status === 'DELIVERED') fetchShipment();
      if (FINAL.includes(change.status)) { es.close(); setLive('closed'); }
    });
    es.onerror = () => { if (alive && es.readyState !== EventSource.CLOSED) setLive('reconnecting'); else if (alive) setLive('closed'); };
    return () => { alive = false; es.close(); };
  }, [id, token]);

  useEffect(() => {
    if (order && ['SHIPPED', 'DELIVERED'].includes(order.status) && !shipment) fetchShipment();
  }, [order && order.status]);

  if (!token) return <PleaseLogIn what="see your order" />;
  if (error) return <section><h1>Order</h1><ErrorBox message={error} /><p><Link href="/orders">Your orders</Link></p></section>;
  if (!order) return <Loading what="Loading your order" />;

  const cancel = async () => {
    setBusy(true); setCancelError(''); setCancelMsg('');
    try {
      merge(await api(`/api/orders/${encodeURIComponent(id)}/cancel`, { method: 'POST' }));
      setCancelMsg('Your order is cancelled. Anything you paid is being refunded.');
    } catch (e) {
      setCancelError(explain(e, 'cancel').message);
      // A refused cancel: the order has moved on (its parcel left); show where it is.
      fetchOrder().catch(() => {});
    } finally { setBusy(false); }
  };

  const history = order.history || [];
  return (
    <article class="order">
      <h1>Order {order.id.slice(0, 8)}</h1>
      <p class="muted">Placed {formatTime(order.created_at)} · order number <code>{order.id}</code></p>
      <div class={`status-panel status-${order.status.toLowerCase()}`}>
        <h2>Status</h2>
        <p aria-live="polite" aria-atomic="true" role="status">
          <strong data-testid="order-status" class="status-text">{order.status}</strong>
          <span class="status-desc"> — {DESCRIBE[order.status] || ''}</span>
        </p>
        {order.status === 'CANCELLED' && order.reason ? (
          <p class="reason" data-testid="cancel-reason"><strong>Why: </strong>{explainReason(order.reason)}</p>
        ) : null}
        <p class="live muted">{live === 'live' ? 'Updates appear here as they happen.' : live === 'reconnecting' ? 'Reconnecting for live updates…' : live === 'closed' ? '' : 'Connecting for live updates…'}</p>
        {CANCELLABLE.includes(order.status) ? (
          <button type="button" class="danger" onClick={cancel} disabled={busy}>Cancel order</button>
        ) : null}
        <ErrorBox message={cancelError} />
        <Notice message={cancelMsg} />
      </div>

      <section aria-labelledby="h-history">
        <h2 id="h-history">Status history</h2>
        <ol class="history" data-testid="order-history">
          {history.map((h, i) => (
            <li key={i}><StatusBadge status={h.status} /> <time dateTime={h.at}>{formatTime(h.at)}</time>{h.reason ? <span class="muted"> — {h.reason}</span> : null}</li>
          ))}
        </ol>
      </section>

      <section aria-labelledby="h-items">
        <h2 id="h-items">Items</h2>
        <div class="table-wrap"><table class="items">
          <thead><tr><th scope="col">Product</th><th scope="col">Quantity</th><th scope="col">Unit price</th><th scope="col">Total</th></tr></thead>
          <tbody>
            {(order.items || []).map((i) => (
              <tr key={i.product_id}><td><Link href={`/products/${i.product_id}`}>{i.name}</Link></td><td>{i.quantity}</td><td>{formatMoney(i.unit_price)}</td><td>{formatMoney(i.line_total)}</td></tr>
            ))}
          </tbody>
          <tfoot><tr><th scope="row" colSpan={3}>Order total</th><td><strong>{formatMoney(order.total)}</strong></td></tr></tfoot>
        </table></div>
      </section>

      <div class="two-col">
        <section aria-labelledby="h-payment">
          <h2 id="h-payment">Payment</h2>
          {order.payment ? (
            <p>Card: {String(order.payment.brand || 'card').toUpperCase()} ending in {order.payment.last4}
              {order.payment.status ? <><br />Payment status: {order.payment.status}</> : null}</p>
          ) : <p>—</p>}
        </section>
        <section aria-labelledby="h-address">
          <h2 id="h-address">Shipping address</h2>
          {order.shipping_address ? (
            <address>
              {order.shipping_address.name}<br />{order.shipping_address.line1}<br />
              {order.shipping_address.line2 ? <>{order.shipping_address.line2}<br /></> : null}
              {order.shipping_address.postal_code} {order.shipping_address.city}<br />{order.shipping_address.country}
            </address>
          ) : null}
        </section>
      </div>

      {shipment || order.shipment ? (
        <section aria-labelledby="h-shipment" class="shipment">
          <h2 id="h-shipment">Shipment tracking</h2>
          <p>Carrier: <strong>{(shipment || order.shipment).carrier}</strong> · Tracking number: <strong data-testid="tracking-number">{(shipment || order.shipment).tracking_number}</strong>
            {shipment && shipment.status ? <> · Status: <StatusBadge status={shipment.status} /></> : null}</p>
          {shipment && Array.isArray(shipment.events) && shipment.events.length ? (
            <ol class="history">
              {shipment.events.map((ev, i) => (
                <li key={i}><StatusBadge status={ev.status} /> <time dateTime={ev.at}>{formatTime(ev.at)}</time>{ev.description ? ` — ${ev.description}` : ''}</li>
              ))}
            </ol>
          ) : null}
        </section>
      ) : null}
      <p><Link href="/orders">All your orders</Link></p>
    </article>
  );
}

export function OrderTable({ orders, showUser = false }) {
  return (
    <table class="orders">
      <thead><tr><th scope="col">Order</th>{showUser ? <th scope="col">Customer</th> : null}<th scope="col">Placed</th><th scope="col">Status</th><th scope="col">Total</th></tr></thead>
      <tbody>
        {orders.map((o) => (
          <tr key={o.id}>
            <td><Link href={`/orders/${o.id}`}>{o.id.slice(0, 8)}</Link></td>
            {showUser ? <td><code>{String(o.user_id || '').slice(0, 8)}</code></td> : null}
            <td>{formatTime(o.created_at)}</td>
            <td><StatusBadge status={o.status} />{o.reason ? <span class="muted"> {o.reason}</span> : null}</td>
            <td>{formatMoney(o.total)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Orders() {
  usePageTitle('My orders');
  const { token } = useSession();
  const [page, setPage] = useState(1);
  const [data, setData] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    if (!token) return;
    api('/api/orders', { query: { page, size: 20 } }).then(setData).catch((e) => { setData({ items: [] }); setError(explain(e).message); });
  }, [token, page]);
  if (!token) return <PleaseLogIn what="see your orders" />;
  if (!data) return <Loading what="Loading your orders" />;
  return (
    <section>
      <h1>My orders</h1>
      <ErrorBox message={error} />
      {data.items.length ? <OrderTable orders={data.items} /> : <p>You have no orders yet. <Link href="/search">Start shopping</Link>.</p>}
      <Pager page={data.page} size={data.size} total={data.total} onPage={setPage} label="Order pages" />
    </section>
  );
}
