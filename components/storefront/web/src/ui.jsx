// Small building blocks shared by the pages.
import { Link } from './router.jsx';
import { useEffect, useRef } from 'preact/hooks';


/** A labelled input with its error sentence next to it. */
export function Field({ label, name, error, hint, type = 'text', value, onInput, required, ...rest }) {
  const id = `f-${name}`;
  const errId = `${id}-error`;
  const hintId = `${id}-hint`;
  const described = [error ? errId : null, hint ? hintId : null].filter(Boolean).join(' ') || undefined;
  const input = type === 'checkbox'
    ? <input id={id} name={name} type="checkbox" checked={!!value}
        onChange={(e) => onInput(e.currentTarget.checked)} aria-describedby={described} {...rest} />
    : type === 'textarea'
      ? <textarea id={id} name={name} value={value} required={required}
          onInput={(e) => onInput(e.currentTarget.value)} aria-invalid={error ? 'true' : undefined}
          aria-describedby={described} {...rest} />
      : <input id={id} name={name} type={type} value={value} required={required}
          onInput={(e) => onInput(e.currentTarget.value)} aria-invalid={error ? 'true' : undefined}
          aria-describedby={described} {...rest} />;
  return (
    <div class={`field${type === 'checkbox' ? ' field-check' : ''}${error ? ' has-error' : ''}`}>
      {type === 'checkbox' ? <>{input}<label for={id}>{label}</label></> : <><label for={id}>{label}</label>{input}</>}
      {hint ? <p class="hint" id={hintId}>{hint}</p> : null}
      {error ? <p class="field-error" id={errId}>{error}</p> : null}
    </div>
  );
}

/** The form's message at the top; focused when it appears so it is read out. */
export function ErrorBox({ message }) {
  const ref = useRef(null);
  useEffect(() => { if (message && ref.current) ref.current.focus(); }, [message]);
  if (!message) return null;
  return <div class="error-box" role="alert" tabIndex={-1} ref={ref}>{message}</div>;
}

export function Notice({ message }) {
  if (!message) return null;
  return <div class="notice" role="status">{message}</div>;
}

export function Loading({ what = 'Loading' }) {
  return <p class="loading" role="status">{what}…</p>;
}

export function usePageTitle(title) {
  useEffect(() => { document.title = title ? `${title} · Electronic Store` : 'Electronic Store'; }, [title]);
}

export function StatusBadge({ status }) {
  return <span class={`badge status-${String(status || '').toLowerCase()}`}>{status}</span>;
}

export function Pager({ page, size, total, onPage, label = 'Pages' }) {
  const pages = Math.max(1, Math.ceil((total || 0) / (size || 1)));
  if (pages <= 1) return null;
  return (
    <nav class="pager" aria-label={label}>
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>Previous</button>
      <span>Page {page} of {pages}</span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)}>Next</button>
    </nav>
  );
}



/** Shown instead of a page that needs a logged-in user. */
export function PleaseLogIn({ what = 'see this page' }) {
  const next = encodeURIComponent(location.pathname + location.search);
  return (
    <section class="narrow">
      <h1>Please log in</h1>
      <p>Please log in to {what}.</p>
      <p><Link href={`/login?next=${next}`} class="button primary">Log in</Link> or <Link href={`/register?next=${next}`}>create an account</Link>.</p>
    </section>
  );
}
