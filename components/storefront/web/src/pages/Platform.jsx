// The console's view of the platform under the store (admin only): the components with
// their deploy history and rollback, and the dead letters with replay.
// API: the `console` component, /api/platform/... (components/console/src/lib.rs).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, explain, formatTime } from '../api.js';
import { Link } from '../router.jsx';
import { ErrorBox, Loading, Notice } from '../ui.jsx';

/** How many dead letters of a topic are listed at once (the API's default, too). */
const DEAD_LETTER_LIMIT = 50;
/** A payload longer than this (characters or lines) starts collapsed. */
const LONG_PAYLOAD_CHARS = 400;
const LONG_PAYLOAD_LINES = 12;

/** The short form of a version (sha-256 hex): its first 12 characters. */
export function shortVersion(v) {
  return String(v || '').slice(0, 12);
}

/** A platform error in words for an operator: the problem's detail is worth showing here. */
function platformError(err, { notFound, conflict } = {}) {
  if (!(err instanceof ApiError)) return explain(err).message;
  const detail = err.problem.detail ? ` (${err.problem.detail})` : '';
  switch (err.status) {
    case 404: return notFound || `We cannot find that${detail}.`;
    case 409: return conflict || `That cannot be done right now${detail}.`;
    case 503: return `The platform cannot do that right now${detail}. Please try again in a moment.`;
    default:
      return err.status >= 500 ? `The platform failed to do that${detail}. Please try again in a moment.` : explain(err).message;
  }
}

export function PlatformOverview() {
  return (
    <section>
      <h1>Platform</h1>
      <p>The WebAssembly components the store runs on, and the messages they could not handle.</p>
      <PlatformTiles />
    </section>
  );
}

export function PlatformTiles() {
  return (
    <ul class="tiles" aria-label="Platform">
      <li><Link href="/console/platform/components">Components</Link><p>The version each component serves, its triggers and deploy history; roll one back.</p></li>
      <li><Link href="/console/platform/dead-letters">Dead letters</Link><p>Messages a component gave up on, with the error they carried; replay them after a fix.</p></li>
    </ul>
  );
}

// ---- Components ---------------------------------------------------------------------

/** The version serving in a component's history (-1 if never deployed), and the one before it. */
function servingIndex(c) {
  const h = Array.isArray(c.history) ? c.history : [];
  const i = h.findIndex((v) => v.serving);
  return i >= 0 ? i : h.findIndex((v) => v.version === c.version);
}

/** A modal confirmation in the page (a <dialog>): Escape or Cancel closes it. */
function ConfirmDialog({ open, title, children, confirmLabel, busy, onConfirm, onCancel }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    else if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title"
      onCancel={(e) => { e.preventDefault(); if (!busy) onCancel(); }}>
      {open ? (
        <>
          <h2 id="confirm-title">{title}</h2>
          {children}
          <p class="actions">
            <button type="button" class="primary danger-fill" disabled={busy} onClick={onConfirm}>{confirmLabel}</button>
            <button type="button" autofocus disabled={busy} onClick={onCancel}>Cancel</button>
          </p>
        </>
      ) : null}
    </dialog>
  );
}

export function Components() {
  const [components, setComponents] = useState(null);
  const [error, setError] = useState('');
  const [msg, setMsg] = useState('');
  const [confirming, setConfirming] = useState(null);
  const [busy, setBusy] = useState(false);

  const load = () => api('/api/platform/components')
    .then((d) => { setComponents(Array.isArray(d) ? d : []); })
    .catch((e) => { setComponents((c) => c || []); setError(platformError(e)); });
  useEffect(() => { load(); }, []);

  const rollBack = async () => {
    const c = confirming;
    setBusy(true); setError(''); setMsg('');
    try {
      const r = await api(`/api/platform/components/${encodeURIComponent(c.id)}/rollback`, { method: 'POST' });
      const v = (r && r.version) || {};
      setMsg(`${(r && r.component) || c.id} now runs version ${shortVersion(v.version)}${v.deployed_at ? ` (deployed ${formatTime(v.deployed_at)})` : ''}.`);
    } catch (err) {
      setError(platformError(err, {
        conflict: `${c.id} has no earlier version to roll back to.`,
        notFound: `There is no running component called ${c.id}.`,
      }));
    } finally {
      setBusy(false); setConfirming(null);
      load();
    }
  };

  if (!components) return <Loading what="Loading the components" />;
  const target = confirming ? confirming.history[servingIndex(confirming) - 1] : null;
  return (
    <section>
      <h1>Components</h1>
      <ErrorBox message={error} />
      <Notice message={msg} />
      <p class="actions"><button type="button" onClick={() => { setError(''); load(); }}>Refresh</button></p>
      {components.length === 0 && !error ? <p>No components are running.</p> : null}
      <div class="table-wrap">
        <table class="components">
          <thead><tr>
            <th scope="col">Component</th><th scope="col">Serving version</th><th scope="col">Triggers</th>
            <th scope="col"><abbr title="HTTP requests served / messages handled">Req. / msg.</abbr></th><th scope="col">History</th><th scope="col"><span class="visually-hidden">Actions</span></th>
          </tr></thead>
          <tbody>
            {components.map((c) => {
              const history = Array.isArray(c.history) ? c.history : [];
              const serving = servingIndex(c);
              const canRollBack = serving > 0;
              return (
                <tr key={c.id} data-testid={`component-row-${c.id}`}>
                  <th scope="row">{c.id}</th>
                  <td>
                    <code title={c.version} data-testid="serving-version">{shortVersion(c.version)}</code>
                    <div class="muted small">deployed <time dateTime={c.deployed_at}>{formatTime(c.deployed_at)}</time></div>
                  </td>
                  <td><ul class="plain triggers">{(c.triggers || []).map((t) => <li key={t}><code>{t}</code></li>)}</ul></td>
                  <td class="num">{c.requests ?? 0} / {c.messages ?? 0}</td>
                  <td>
                    {history.length ? (
                      <details data-testid={`history-${c.id}`}>
                        <summary>{history.length} {history.length === 1 ? 'version' : 'versions'}<span class="visually-hidden"> of {c.id}</span></summary>
                        <ol class="history versions">
                          {history.map((v, i) => (
                            <li key={`${v.version}-${i}`} class={v.serving ? 'serving' : ''}>
                              <code title={v.version}>{shortVersion(v.version)}</code>{' '}
                              {v.serving ? <span class="badge note-sent">serving</span> : null}
                              <div class="muted">deployed <time dateTime={v.deployed_at}>{formatTime(v.deployed_at)}</time></div>
                              <div class="muted source">from <code>{v.source}</code></div>
                            </li>
                          ))}
                        </ol>
                      </details>
                    ) : <span class="muted small">Only the version it started with</span>}
                  </td>
                  <td>
                    <button type="button" class="danger" disabled={!canRollBack || busy}
                      title={canRollBack ? undefined : 'There is no earlier version to roll back to.'}
                      onClick={() => { setMsg(''); setError(''); setConfirming(c); }}>Roll back {c.id}</button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <ConfirmDialog open={!!confirming} busy={busy} title={confirming ? `Roll back ${confirming.id}?` : ''}
        confirmLabel={confirming ? `Yes, roll back ${confirming.id}` : ''} onConfirm={rollBack} onCancel={() => setConfirming(null)}>
        {confirming && target ? (
          <p>
            {confirming.id} will stop serving version <code>{shortVersion(confirming.version)}</code> and serve
            version <code>{shortVersion(target.version)}</code> again (deployed {formatTime(target.deployed_at)}), on every host.
          </p>
        ) : null}
      </ConfirmDialog>
    </section>
  );
}

// ---- Dead letters -------------------------------------------------------------------

function prettyPayload(payload) {
  if (typeof payload === 'string') return payload;
  try { return JSON.stringify(payload, null, 2); } catch (_) { return String(payload); }
}

function Payload({ payload }) {
  const text = prettyPayload(payload);
  const lines = text.split('\n').length;
  const pre = <pre class="payload">{text}</pre>;
  if (text.length <= LONG_PAYLOAD_CHARS && lines <= LONG_PAYLOAD_LINES) return pre;
  return <details><summary>Payload ({lines} {lines === 1 ? 'line' : 'lines'}, {text.length} characters)</summary>{pre}</details>;
}

function DeadLetter({ letter, onReplayed, onError }) {
  const [busy, setBusy] = useState(false);
  const replay = async () => {
    setBusy(true);
    try {
      const r = await api(`/api/platform/dead-letters/${encodeURIComponent(letter.topic)}/${letter.partition}/${letter.offset}/replay`, { method: 'POST' });
      onReplayed(letter, r || {});
    } catch (err) {
      onError(platformError(err, { notFound: `That dead letter of ${letter.topic} is no longer there. Refresh the list.` }));
    } finally { setBusy(false); }
  };
  const where = `partition ${letter.partition}, offset ${letter.offset}`;
  return (
    <li class="dead-letter" data-testid="dead-letter" aria-label={`Dead letter of ${letter.topic} at ${where}`}>
      <p class="dead-letter-head">
        <strong>{letter.topic}</strong> <span class="muted">{where}</span>
        <button type="button" class="primary" disabled={busy} onClick={replay}
          aria-label={`Replay the dead letter of ${letter.topic} at ${where}`}>Replay</button>
      </p>
      <p class="reason" data-testid="dead-letter-error">{letter.error || 'No error was recorded.'}</p>
      <dl class="facts">
        <dt>Component</dt><dd data-testid="dead-letter-component">{letter.component}</dd>
        <dt>Attempts</dt><dd>{letter.attempts}</dd>
        <dt>Dead-lettered</dt><dd><time dateTime={letter.dead_lettered_at}>{formatTime(letter.dead_lettered_at)}</time></dd>
        <dt>Key</dt><dd>{letter.key ? <code>{letter.key}</code> : <span class="muted">none</span>}</dd>
      </dl>
      <Payload payload={letter.payload} />
    </li>
  );
}

export function DeadLetters({ query }) {
  const topic = (query && query.get('topic')) || '';
  const [topics, setTopics] = useState(null);
  const [letters, setLetters] = useState(null);
  const [error, setError] = useState('');
  const [msg, setMsg] = useState('');
  const [loading, setLoading] = useState(false);

  const loadTopics = () => api('/api/platform/dead-letters')
    .then((d) => setTopics((d && Array.isArray(d.topics)) ? d.topics : []))
    .catch((e) => { setTopics((t) => t || []); setError(platformError(e)); });
  const loadLetters = () => {
    if (!topic) { setLetters(null); return Promise.resolve(); }
    return api('/api/platform/dead-letters', { query: { topic, limit: DEAD_LETTER_LIMIT } })
      .then((d) => setLetters({ topic, items: (d && Array.isArray(d.items)) ? d.items : [] }))
      .catch((e) => { setLetters({ topic, items: [] }); setError(platformError(e)); });
  };
  const refresh = async () => {
    setLoading(true); setError('');
    try { await Promise.all([loadTopics(), loadLetters()]); } finally { setLoading(false); }
  };
  useEffect(() => { loadTopics(); }, []);
  useEffect(() => { setMsg(''); setError(''); setLetters(null); loadLetters(); }, [topic]);

  if (!topics) return <Loading what="Loading the dead letters" />;
  const total = topics.reduce((n, t) => n + (t.dead_letters || 0), 0);
  const shown = letters && letters.topic === topic ? letters : null;
  return (
    <section>
      <h1>Dead letters</h1>
      <p>Messages a component gave up on after its retries, with the error they carried. Fix the cause, then replay them: they are published again to their topic.</p>
      <ErrorBox message={error} />
      <Notice message={msg} />
      <p class="actions"><button type="button" onClick={refresh} disabled={loading}>Refresh</button></p>
      <h2 id="h-topics">Topics</h2>
      {total === 0 && !error ? <p class="muted">No dead letters on any topic: every message was handled.</p> : null}
      <ul class="topics" aria-labelledby="h-topics">
        {topics.map((t) => (
          <li key={t.topic} class={t.dead_letters ? '' : 'empty'}>
            <Link href={`/console/platform/dead-letters?topic=${encodeURIComponent(t.topic)}`}
              aria-current={t.topic === topic ? 'page' : undefined} data-testid={`topic-${t.topic}`}>
              {t.topic} <span class="dl-count" data-testid={`topic-count-${t.topic}`}
                aria-label={`, ${t.dead_letters} dead ${t.dead_letters === 1 ? 'letter' : 'letters'}`}>{t.dead_letters}{t.dead_letters >= DEAD_LETTER_LIMIT ? '+' : ''}</span>
            </Link>
          </li>
        ))}
      </ul>
      {topic ? (
        <section aria-labelledby="h-letters" data-testid="dead-letters">
          <h2 id="h-letters">Dead letters of {topic}</h2>
          {!shown ? <Loading what={`Loading the dead letters of ${topic}`} /> : shown.items.length === 0
            ? <p class="muted">No dead letters on {topic}.</p>
            : (
              <>
                <p class="muted">{shown.items.length} {shown.items.length === 1 ? 'dead letter' : 'dead letters'}{shown.items.length >= DEAD_LETTER_LIMIT ? ` (the first ${DEAD_LETTER_LIMIT})` : ''}</p>
                <ol class="dead-letters">
                  {shown.items.map((l) => (
                    <DeadLetter key={`${l.partition}-${l.offset}`} letter={l}
                      onError={(m) => { setMsg(''); setError(m); }}
                      onReplayed={(letter, r) => { setError(''); setMsg(`Sent again to ${r.topic || letter.topic} (offset ${r.offset}).`); }} />
                  ))}
                </ol>
              </>
            )}
        </section>
      ) : <p>Choose a topic to see its dead letters.</p>}
    </section>
  );
}
