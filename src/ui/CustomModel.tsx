import { useState } from 'preact/hooks';
import type { MagpieSession, SessionState } from '../app/session';
import {
  bosTokenFor,
  buildCustomModel,
  checkAbsoluteUrl,
  derivedPreQuery,
  effectiveModelUrl,
  fetchConvTemplate,
  mlcChatConfigUrl,
  type CustomModelField,
  type CustomModelForm,
  type CustomTemplateBase,
} from '../app/custom-models';
import { showTemplateText } from '../app/template-choice';
import { checkPreQueryTemplate } from '../core/conv-template';
import { customBaseTemplate } from '../core/custom-template';
import { listTemplates } from '../core/templates/registry';
import './templates.css';

const EMPTY_FORM: CustomModelForm = { kind: 'url', name: '', modelUrl: '', modelLibUrl: '', vram: '', preQuery: '', bosToken: '' };
const KNOWN_FORMATS = listTemplates();

type FetchState =
  | { status: 'idle' }
  | { status: 'asking'; configUrl: string; origin: string }
  | { status: 'fetching'; configUrl: string }
  | { status: 'error'; message: string };

function baseSpec(base: CustomTemplateBase, bosToken: string) {
  return 'convTemplate' in base
    ? { convTemplate: base.convTemplate, ...(bosToken.trim() ? { bosToken: bosToken.trim() } : {}) }
    : { baseTemplateId: base.baseTemplateId };
}

/** The pre-query's problem as the user types it, or null. */
function preQueryProblem(base: CustomTemplateBase | undefined, bosToken: string, text: string): string | null {
  if (!base) return null;
  try {
    checkPreQueryTemplate(text, customBaseTemplate(baseSpec(base, bosToken)));
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * "Add a model": a model by URL (weights + model library), or a prebuilt model the registry does not know. Its
 * pre-query template is derived from its conv_template (fetched only after the user agrees) or from a known
 * format, shown escaped and editable, validated at the field, and saved in localStorage.
 */
export function CustomModel({ session, state }: { session: MagpieSession; state: SessionState }) {
  const [form, setForm] = useState<CustomModelForm>(EMPTY_FORM);
  const [base, setBase] = useState<CustomTemplateBase | undefined>(undefined);
  const [fetchState, setFetchState] = useState<FetchState>({ status: 'idle' });
  const [errors, setErrors] = useState<Partial<Record<CustomModelField | 'base', string>>>({});
  const [saved, setSaved] = useState<string | null>(null);
  const busy = state.activeRunId !== null;
  const prebuilt = session.unknownPrebuiltModels();

  const set = (patch: Partial<CustomModelForm>): void => {
    setForm((f) => ({ ...f, ...patch }));
    // A field's error is about its old value: typing clears it (Save checks again).
    setErrors((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !(k in patch))));
    setSaved(null);
  };
  const applyBase = (next: CustomTemplateBase, bosToken: string): void => {
    setBase(next);
    setForm((f) => ({ ...f, bosToken, preQuery: derivedPreQuery(next, bosToken) }));
    setErrors((e) => ({ ...e, base: undefined, preQuery: undefined }));
  };

  const effective = checkAbsoluteUrl(form.modelUrl, 'URL') === null ? effectiveModelUrl(form.modelUrl.trim()) : null;
  const livePreQueryError = preQueryProblem(base, form.bosToken, form.preQuery);
  // Checked as the user types, so the message always matches the text in the field.
  const preQueryError = base ? livePreQueryError : errors.preQuery;

  const askFetch = (): void => {
    const problem = checkAbsoluteUrl(form.modelUrl, 'model weights URL');
    if (problem) {
      setErrors((e) => ({ ...e, modelUrl: problem }));
      return;
    }
    const configUrl = mlcChatConfigUrl(form.modelUrl.trim());
    setFetchState({ status: 'asking', configUrl, origin: new URL(configUrl).origin });
  };

  const doFetch = async (configUrl: string): Promise<void> => {
    setFetchState({ status: 'fetching', configUrl });
    try {
      const conv = await fetchConvTemplate(configUrl);
      applyBase({ convTemplate: conv }, bosTokenFor(conv));
      setFetchState({ status: 'idle' });
    } catch (err) {
      setFetchState({ status: 'error', message: err instanceof Error ? err.message : String(err) });
    }
  };

  const save = (): void => {
    const taken = form.kind === 'url' ? session.knownModelIds() : state.customModels.map((m) => m.modelId);
    const result = buildCustomModel(form, base, taken, Date.now());
    if (!result.ok) {
      setErrors(result.errors);
      return;
    }
    session.addCustomModel(result.model);
    setErrors({});
    setSaved(result.model.modelId);
    setForm(EMPTY_FORM);
    setBase(undefined);
  };

  const fieldError = (field: CustomModelField | 'base', message = errors[field]) =>
    message ? (
      <small id={`custom-${field}-error`} class="error" role="alert">
        {message}
      </small>
    ) : null;

  return (
    <section class="panel" aria-labelledby="custom-heading">
      {/* Collapsed until wanted: most users pick from the list; saved models stay listed below it. */}
      <details>
        <summary>
          <h2 id="custom-heading" class="inline-heading">Add a model</h2>
        </summary>
        <p class="hint">
          For an MLC-compiled model the list does not have (by URL), or a listed model with no template here. Its pre-query
          template comes from the <code>conv_template</code> in its <code>mlc-chat-config.json</code>.
        </p>
        <fieldset disabled={busy}>
          <legend>Which model</legend>
          <label class="radio">
            <input type="radio" name="custom-kind" checked={form.kind === 'url'} onChange={() => set({ kind: 'url', name: '', modelUrl: '' })} /> By
            URL
          </label>
          <label class="radio">
            <input
              type="radio"
              name="custom-kind"
              checked={form.kind === 'prebuilt'}
              disabled={prebuilt.length === 0}
              onChange={() => set({ kind: 'prebuilt', name: '', modelUrl: '', modelLibUrl: '' })}
            />{' '}
            A prebuilt model with no template here ({prebuilt.length})
          </label>
          {form.kind === 'url' ? (
            <>
              <div class={errors.name ? 'field invalid' : 'field'}>
                <label for="custom-name">Name (model_id)</label>
                <input id="custom-name" type="text" value={form.name} spellcheck={false} onInput={(e) => set({ name: e.currentTarget.value })} />
                {fieldError('name')}
              </div>
              <div class={errors.modelUrl ? 'field invalid' : 'field'}>
                <label for="custom-model-url">Model weights URL</label>
                <input
                  id="custom-model-url"
                  type="url"
                  value={form.modelUrl}
                  spellcheck={false}
                  placeholder="https://huggingface.co/USER/MODEL-q4f16_1-MLC"
                  onInput={(e) => set({ modelUrl: e.currentTarget.value })}
                />
                {effective ? (
                  <small class="hint" data-testid="effective-url">
                    WebLLM loads from: <code>{effective}</code>
                  </small>
                ) : null}
                {fieldError('modelUrl')}
              </div>
              <div class={errors.modelLibUrl ? 'field invalid' : 'field'}>
                <label for="custom-lib-url">Model library URL (.wasm)</label>
                <input
                  id="custom-lib-url"
                  type="url"
                  value={form.modelLibUrl}
                  spellcheck={false}
                  onInput={(e) => set({ modelLibUrl: e.currentTarget.value })}
                />
                {fieldError('modelLibUrl')}
              </div>
              <div class={errors.vram ? 'field invalid' : 'field'}>
                <label for="custom-vram">VRAM needed (MB, optional)</label>
                <input id="custom-vram" type="text" inputMode="numeric" value={form.vram} onInput={(e) => set({ vram: e.currentTarget.value })} />
                {fieldError('vram')}
              </div>
            </>
          ) : (
            <div class={errors.name ? 'field invalid' : 'field'}>
              <label for="custom-prebuilt">Prebuilt model</label>
              <select
                id="custom-prebuilt"
                value={form.name}
                onChange={(e) => {
                  const id = e.currentTarget.value;
                  set({ name: id, modelUrl: prebuilt.find((m) => m.model_id === id)?.model_url ?? '' });
                }}
              >
                <option value="">Pick one…</option>
                {prebuilt.map((m) => (
                  <option key={m.model_id} value={m.model_id}>
                    {m.model_id}
                  </option>
                ))}
              </select>
              {fieldError('name')}
              {fieldError('modelUrl')}
            </div>
          )}
        </fieldset>
        <fieldset disabled={busy}>
          <legend>Chat template</legend>
          <div class="actions">
            <button type="button" class="secondary" onClick={askFetch} disabled={fetchState.status === 'fetching' || form.modelUrl.trim() === ''}>
              Read the template from mlc-chat-config.json
            </button>
            <label for="custom-format">or use a known format:</label>
            <select
              id="custom-format"
              value={base && 'baseTemplateId' in base ? base.baseTemplateId : ''}
              onChange={(e) => {
                const id = e.currentTarget.value;
                if (id) applyBase({ baseTemplateId: id }, '');
              }}
            >
              <option value="">—</option>
              {KNOWN_FORMATS.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.label}
                </option>
              ))}
            </select>
          </div>
          {fetchState.status === 'asking' ? (
            <div class="confirm" role="alertdialog" aria-labelledby="fetch-ask" data-testid="fetch-consent">
              <p id="fetch-ask">
                This fetches <code>{fetchState.configUrl}</code> from <strong>{fetchState.origin}</strong>: the request
                leaves this machine. Continue?
              </p>
              <div class="actions">
                <button type="button" onClick={() => void doFetch(fetchState.configUrl)}>
                  Fetch from {fetchState.origin}
                </button>
                <button type="button" class="secondary" onClick={() => setFetchState({ status: 'idle' })}>
                  Cancel
                </button>
              </div>
            </div>
          ) : null}
          {fetchState.status === 'fetching' ? <p class="hint">Fetching {fetchState.configUrl}…</p> : null}
          {fetchState.status === 'error' ? (
            <p class="problem" role="alert">
              {fetchState.message}
            </p>
          ) : null}
          {fieldError('base')}
          {base ? (
            <>
              <p class="hint" data-testid="template-base">
                {'convTemplate' in base
                  ? `From conv_template "${base.convTemplate.name ?? 'unnamed'}" (stop tokens ${base.convTemplate.stop_token_ids.join(', ') || 'none'}; prefix ids ${base.convTemplate.system_prefix_token_ids?.join(', ') ?? 'none'}).`
                  : `Responses render with the ${base.baseTemplateId} template.`}
              </p>
              {'convTemplate' in base ? (
                <div class="field">
                  <label for="custom-bos">BOS token text (for the prefix ids; blank: none)</label>
                  <input
                    id="custom-bos"
                    type="text"
                    spellcheck={false}
                    value={form.bosToken}
                    onInput={(e) => set({ bosToken: e.currentTarget.value })}
                  />
                </div>
              ) : null}
              <div class={preQueryError ? 'field invalid' : 'field'}>
                <label for="custom-pre-query">Pre-query template (edit freely; it must end where a user message begins)</label>
                <textarea
                  id="custom-pre-query"
                  rows={4}
                  spellcheck={false}
                  value={form.preQuery}
                  aria-invalid={preQueryError ? 'true' : 'false'}
                  aria-describedby={preQueryError ? 'custom-preQuery-error' : undefined}
                  onInput={(e) => set({ preQuery: e.currentTarget.value })}
                />
                <small class="hint">
                  As sent: <code data-testid="custom-pre-query-shown">{showTemplateText(form.preQuery)}</code>
                </small>
                {fieldError('preQuery', preQueryError ?? undefined)}
              </div>
            </>
          ) : null}
        </fieldset>
        <div class="actions">
          <button type="button" onClick={save} disabled={busy}>
            Save model
          </button>
          {saved ? (
            <span class="status ok" role="status">
              Saved {saved}: pick it under “Custom”.
            </span>
          ) : null}
        </div>
      </details>
      {state.customModels.length > 0 ? (
        <ul class="custom-models" aria-label="Custom models">
          {state.customModels.map((m) => (
            <li key={m.modelId}>
              <code>{m.modelId}</code> · {m.template.source === 'conv_template' ? 'derived template' : 'custom template'}{' '}
              <button type="button" class="secondary" disabled={busy} onClick={() => session.removeCustomModel(m.modelId)}>
                Remove {m.modelId}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
