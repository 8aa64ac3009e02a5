import { useEffect, useState } from 'preact/hooks';
import { api, explain, formatTime, updateUser } from '../api.js';
import { useSession } from '../state.js';
import { ErrorBox, Field, Loading, Notice, PleaseLogIn, usePageTitle } from '../ui.jsx';

const TEMPLATES = {
  welcome: 'Welcome', order_confirmed: 'Order confirmed', order_shipped: 'Order shipped',
  order_delivered: 'Order delivered', order_cancelled: 'Order cancelled', payment_refunded: 'Refund', promotion: 'Offer',
};

function NotificationList({ channel, label }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api(`/api/notifications/${channel}`, { query: { size: 50 } })
      .then((d) => setData(Array.isArray(d) ? { items: d } : d))
      .catch((e) => { setData({ items: [] }); setError(explain(e).message); });
  }, [channel]);
  return (
    <section aria-labelledby={`h-${channel}`}>
      <h2 id={`h-${channel}`}>{label}</h2>
      <ErrorBox message={error} />
      {!data ? <Loading /> : data.items.length === 0 ? <p>No messages yet.</p> : (
        <ul class="notifications">
          {data.items.map((n) => (
            <li key={n.id}>
              <p><strong>{n.subject || TEMPLATES[n.template] || n.template}</strong> <span class={`badge note-${String(n.status).toLowerCase()}`}>{n.status}</span></p>
              <p class="muted">To {n.recipient || '—'} · {formatTime(n.sent_at || n.created_at)}{n.reason ? ` · ${n.reason}` : ''}</p>
              {n.body ? <details><summary>Show message</summary><pre class="message">{n.body}</pre></details> : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function Notifications() {
  usePageTitle('Notifications');
  const { token } = useSession();
  if (!token) return <PleaseLogIn what="see your notifications" />;
  return (
    <section>
      <h1>My notifications</h1>
      <div class="two-col">
        <NotificationList channel="email" label="E-mails" />
        <NotificationList channel="sms" label="Text messages" />
      </div>
    </section>
  );
}

export function Settings() {
  usePageTitle('Settings');
  const { token } = useSession();
  const [f, setF] = useState(null);
  const [me, setMe] = useState(null);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState('');
  const [msg, setMsg] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!token) return;
    api('/api/users/me').then((u) => {
      setMe(u);
      setF({ phone: u.phone || '', sms_opt_in: !!u.sms_opt_in, marketing_opt_in: !!u.marketing_opt_in });
    }).catch((e) => setError(explain(e).message));
  }, [token]);
  if (!token) return <PleaseLogIn what="change your settings" />;
  if (!f) return <><ErrorBox message={error} /><Loading /></>;
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true); setError(''); setErrors({}); setMsg('');
    try {
      const u = await api('/api/users/me', { method: 'PATCH', body: { phone: f.phone.trim() || null, sms_opt_in: f.sms_opt_in, marketing_opt_in: f.marketing_opt_in } });
      if (u && u.id) { setMe(u); updateUser(u); }
      setMsg('Your settings are saved.');
    } catch (err) {
      const x = explain(err); setError(x.message); setErrors(x.fields);
    } finally { setBusy(false); }
  };
  return (
    <section class="narrow">
      <h1>Settings</h1>
      {me ? <p class="muted">{me.first_name} {me.last_name} · {me.email} · username {me.username}</p> : null}
      <form onSubmit={submit} noValidate>
        <ErrorBox message={error} />
        <Field label="Phone" name="phone" type="tel" value={f.phone} onInput={set('phone')} error={errors.phone} hint="Leave empty to receive no text messages." autocomplete="tel" />
        <Field label="Send me text messages about my orders" name="sms_opt_in" type="checkbox" value={f.sms_opt_in} onInput={set('sms_opt_in')} />
        <Field label="Send me offers and promotions by e-mail" name="marketing_opt_in" type="checkbox" value={f.marketing_opt_in} onInput={set('marketing_opt_in')} />
        <button type="submit" class="primary" disabled={busy}>Save settings</button>
        <Notice message={msg} />
      </form>
    </section>
  );
}
