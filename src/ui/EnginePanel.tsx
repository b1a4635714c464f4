import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { MagpieSession, SessionState } from '../app/session';
import { ServerEngineController, type EngineKind, type ServerEngineState } from '../app/server-engine';
import { listTemplates, templateIdForModel } from '../core/templates/registry';
import { ErrorAdvice } from './GpuPanel';
import './engine-panel.css';

const TEMPLATES = listTemplates();

const ENGINE_KINDS: ReadonlyArray<{ kind: EngineKind; label: string }> = [
  { kind: 'webgpu', label: 'This browser (WebGPU)' },
  { kind: 'server', label: 'OpenAI-compatible server' },
];

function templateLabel(id: string | undefined): string {
  return TEMPLATES.find((t) => t.id === id)?.label ?? id ?? 'unknown';
}

/** Asks before anything is sent to a server: the app never sends prompts off the machine without a yes. */
function ConsentDialog({ origins, onAnswer }: { origins: string[]; onAnswer: (yes: boolean) => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby="consent-title"
      aria-describedby="consent-text"
      onCancel={(e) => {
        e.preventDefault();
        onAnswer(false);
      }}
    >
      <h2 id="consent-title">Send prompts to {origins.length === 1 ? 'this server' : 'these servers'}?</h2>
      <ul class="origins">
        {origins.map((o) => (
          <li key={o}>
            <code>{o}</code>
          </li>
        ))}
      </ul>
      <p id="consent-text">
        magpie-web will send the prompts and sampling settings of your runs (and the API key, if you entered one) to{' '}
        {origins.length === 1 ? 'this origin' : 'these origins'}, and store what comes back in this browser. Nothing is
        sent until you agree. You are asked once per origin per browser session.
      </p>
      <div class="actions">
        <button type="button" onClick={() => onAnswer(true)}>
          Send to {origins.length === 1 ? 'this server' : 'these servers'}
        </button>
        <button type="button" class="secondary" onClick={() => onAnswer(false)}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}

function statusText(s: ServerEngineState): string {
  switch (s.status) {
    case 'idle':
      return 'Not connected.';
    case 'consent':
      return 'Waiting for your answer…';
    case 'connecting':
      return 'Listing models…';
    case 'probing':
      return 'Checking how the server handles the begin-of-sequence token…';
    case 'ready':
      return `Connected: ${s.modelId} · ${s.baseUrls.length} server${s.baseUrls.length === 1 ? '' : 's'} · the server ${s.addsBos ? 'adds' : 'does not add'} BOS itself.`;
    case 'error':
      return 'Not connected.';
  }
}

function ServerSettings({ controller, s, locked }: { controller: ServerEngineController; s: ServerEngineState; locked: boolean }) {
  const busy = locked || s.status === 'connecting' || s.status === 'probing' || s.status === 'consent';
  const detected = templateIdForModel(s.modelId);
  return (
    <div class="server-settings">
      <div class="field">
        <label for="server-base-urls">Server base URL(s)</label>
        <textarea
          id="server-base-urls"
          rows={2}
          spellcheck={false}
          autoComplete="off"
          placeholder="http://localhost:8000"
          value={s.baseUrlsText}
          disabled={locked}
          aria-describedby="server-base-urls-hint"
          onInput={(e) => controller.setBaseUrls(e.currentTarget.value)}
        />
        <small id="server-base-urls-hint" class="hint">
          One per line. Several servers of the same model share the load (each request goes to the least busy one).
          Raw prompts go to /v1/completions, so they stay byte-exact.
        </small>
      </div>
      <div class="field">
        <label for="server-api-key">API key (optional)</label>
        <input
          id="server-api-key"
          type="password"
          autoComplete="off"
          value={s.apiKey}
          disabled={locked}
          aria-describedby="server-api-key-hint"
          onInput={(e) => controller.setApiKey(e.currentTarget.value)}
        />
        <label class="check">
          <input
            type="checkbox"
            checked={s.rememberKey}
            disabled={locked}
            onChange={(e) => controller.setRememberKey(e.currentTarget.checked)}
          />{' '}
          Remember on this device
        </label>
        <small id="server-api-key-hint" class="hint">
          Kept in memory only and forgotten on reload, unless you tick “Remember”: then it is stored unencrypted in
          this browser’s localStorage, readable by anyone using this browser profile. It is never saved with runs or
          exports.
        </small>
      </div>
      <div class={s.concurrencyError ? 'field invalid' : 'field'}>
        <label for="server-concurrency">Concurrency (requests in flight)</label>
        <input
          id="server-concurrency"
          type="text"
          inputMode="numeric"
          autoComplete="off"
          value={s.concurrencyText}
          disabled={locked}
          aria-invalid={s.concurrencyError ? 'true' : 'false'}
          aria-describedby="server-concurrency-hint"
          onInput={(e) => controller.setConcurrency(e.currentTarget.value)}
        />
        {s.concurrencyError ? <small class="error">{s.concurrencyError}</small> : null}
        <small id="server-concurrency-hint" class="hint">
          The server batches concurrent requests (vLLM and SGLang gain most). A browser opens at most 6 HTTP/1.1
          connections per origin, and each streamed request holds one: above 6, list several base URLs or serve over
          HTTP/2.
        </small>
      </div>
      <div class="actions">
        <button type="button" disabled={busy} onClick={() => void controller.connect()}>
          Connect
        </button>
        <span class={s.status === 'ready' ? 'status ok' : 'status'} data-testid="server-status" aria-live="polite">
          {statusText(s)}
        </span>
      </div>
      {s.note ? <p class="hint">{s.note}</p> : null}
      {s.error ? <ErrorAdvice error={s.error} title="Could not use the server." /> : null}
      {s.models.length > 0 ? (
        <div class="grid two">
          <div class="field">
            <label for="server-model">Server model</label>
            <select id="server-model" value={s.modelId} disabled={busy} onChange={(e) => controller.selectModel(e.currentTarget.value)}>
              {s.models.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="server-template">Chat template family</label>
            <select
              id="server-template"
              value={s.templateOverride}
              disabled={busy}
              onChange={(e) => controller.setTemplateOverride(e.currentTarget.value)}
            >
              <option value="">{detected ? `Detected: ${templateLabel(detected)}` : 'Not detected: pick one'}</option>
              {TEMPLATES.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.label} ({t.id})
                </option>
              ))}
            </select>
          </div>
        </div>
      ) : null}
    </div>
  );
}

/**
 * The engine choice: this browser's GPU (WebLLM; `children` is its model picker) or an OpenAI-compatible server.
 */
export function EnginePanel({ session, state, children }: { session: MagpieSession; state: SessionState; children: ComponentChildren }) {
  const [controller] = useState(() => new ServerEngineController(session));
  const [s, setS] = useState(controller.state);
  useEffect(() => controller.subscribe(setS), [controller]);
  const locked = state.activeRunId !== null;

  return (
    <>
      <section class="panel" aria-labelledby="engine-heading">
        <h2 id="engine-heading">Engine</h2>
        <div role="radiogroup" aria-labelledby="engine-heading" class="engine-choice">
          {ENGINE_KINDS.map(({ kind, label }) => (
            <label class="check" key={kind}>
              <input
                type="radio"
                name="engine-kind"
                value={kind}
                checked={s.kind === kind}
                disabled={locked}
                onChange={() => controller.setKind(kind)}
              />{' '}
              {label}
            </label>
          ))}
        </div>
        {s.kind === 'server' ? (
          <>
            <p class="hint">
              vLLM, SGLang, llama.cpp server, Ollama or TGI. The server must allow this page’s origin (CORS); see the
              README.
            </p>
            <ServerSettings controller={controller} s={s} locked={locked} />
          </>
        ) : null}
      </section>
      {s.kind === 'webgpu' ? children : null}
      {s.status === 'consent' ? <ConsentDialog origins={s.consentOrigins} onAnswer={(yes) => controller.answerConsent(yes)} /> : null}
    </>
  );
}
