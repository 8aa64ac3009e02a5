import { useState } from 'preact/hooks';
import { api, explain, setSession } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { ErrorBox, Field, usePageTitle } from '../ui.jsx';

function nextPath(query) {
  const next = query.get('next') || '/';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

async function logIn(login, password) {
  const body = login.includes('@') ? { email: login, password } : { username: login, password };
  const r = await api('/api/auth/login', { method: 'POST', body });
  setSession(r.token, r.user, r.expires_at);
  return r;
}

export function Login({ query }) {
  usePageTitle('Log in');
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError('');
    if (!login || !password) { setError('Enter your e-mail (or username) and password.'); return; }
    setBusy(true);
    try {
      await logIn(login.trim(), password);
      navigate(nextPath(query), { replace: true });
    } catch (err) {
      setError(explain(err, 'login').message);
    } finally { setBusy(false); }
  };
  return (
    <section class="narrow">
      <h1>Log in</h1>
      <form onSubmit={submit} noValidate>
        <ErrorBox message={error} />
        <Field label="E-mail or username" name="login" value={login} onInput={setLogin} autocomplete="username" required />
        <Field label="Password" name="password" type="password" value={password} onInput={setPassword} autocomplete="current-password" required />
        <button type="submit" class="primary" disabled={busy}>Log in</button>
      </form>
      <p>New here? <Link href={`/register${query.get('next') ? `?next=${encodeURIComponent(query.get('next'))}` : ''}`}>Create an account</Link>.</p>
    </section>
  );
}

const EMPTY = { username: '', email: '', password: '', first_name: '', last_name: '', phone: '', sms_opt_in: true, marketing_opt_in: false };

export function Register({ query }) {
  usePageTitle('Register');
  const [f, setF] = useState(EMPTY);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (k) => (v) => setF({ ...f, [k]: v });

  const submit = async (e) => {
    e.preventDefault();
    setError(''); setErrors({});
    const local = {};
    for (const k of ['username', 'email', 'password', 'first_name', 'last_name']) if (!f[k].trim()) local[k] = 'Please fill this in.';
    if (f.password && f.password.length < 8) local.password = 'Use at least 8 characters.';
    if (Object.keys(local).length) { setErrors(local); setError('Please correct the highlighted fields.'); return; }
    const body = {
      username: f.username.trim(), email: f.email.trim(), password: f.password,
      first_name: f.first_name.trim(), last_name: f.last_name.trim(), marketing_opt_in: f.marketing_opt_in,
    };
    if (f.phone.trim()) { body.phone = f.phone.trim(); body.sms_opt_in = f.sms_opt_in; } else body.sms_opt_in = false;
    setBusy(true);
    try {
      await api('/api/users', { method: 'POST', body });
      await logIn(body.email, body.password);
      navigate(nextPath(query), { replace: true });
    } catch (err) {
      const x = explain(err, 'register');
      setError(x.message); setErrors(x.fields);
    } finally { setBusy(false); }
  };

  return (
    <section class="narrow">
      <h1>Create an account</h1>
      <form onSubmit={submit} noValidate>
        <ErrorBox message={error} />
        <Field label="Username" name="username" value={f.username} onInput={set('username')} error={errors.username} autocomplete="username" required />
        <Field label="E-mail" name="email" type="email" value={f.email} onInput={set('email')} error={errors.email} autocomplete="email" required />
        <Field label="Password" name="password" type="password" value={f.password} onInput={set('password')} error={errors.password} autocomplete="new-password" hint="At least 8 characters." required />
        <div class="row">
          <Field label="First name" name="first_name" value={f.first_name} onInput={set('first_name')} error={errors.first_name} autocomplete="given-name" required />
          <Field label="Last name" name="last_name" value={f.last_name} onInput={set('last_name')} error={errors.last_name} autocomplete="family-name" required />
        </div>
        <Field label="Phone (optional)" name="phone" type="tel" value={f.phone} onInput={set('phone')} error={errors.phone} autocomplete="tel" hint="For text messages about your orders, e.g. +43 660 1234567." />
        <Field label="Send me text messages about my orders" name="sms_opt_in" type="checkbox" value={f.sms_opt_in} onInput={set('sms_opt_in')} />
        <Field label="Send me offers and promotions by e-mail" name="marketing_opt_in" type="checkbox" value={f.marketing_opt_in} onInput={set('marketing_opt_in')} />
        <button type="submit" class="primary" disabled={busy}>Create account</button>
      </form>
      <p>Already have an account? <Link href="/login">Log in</Link>.</p>
    </section>
  );
}
