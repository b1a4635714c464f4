import type { MagpieSession, SessionState } from '../app/session';
import {
  availableBan,
  familyVariants,
  instructionStops,
  isQuirkOn,
  registryTemplate,
  showTemplateText,
  type QuirkKey,
} from '../app/template-choice';
import { QUIRK_INFO } from '../core/quirks';
import './templates.css';

const QUIRK_ORDER: readonly QuirkKey[] = ['firstTokenBan', 'earlyStopNewline', 'assistantStopWord', 'sanitize'];

/**
 * The selected model's template variant and per-family quirks, each a visible option with the family's reference
 * default, and the pre-query template and stop strings they produce, escaped so nothing is hidden.
 */
export function QuirksSettings({ session, state }: { session: MagpieSession; state: SessionState }) {
  const choice = state.templateChoice;
  const template = choice ? session.choiceTemplate(choice) : undefined;
  if (!choice || !template) return null;
  const custom = session.customModelFor(choice.modelId);
  // The family's reference defaults, from the official template of the selected model.
  const defaults = custom ? template : (session.templateFor(choice.modelId) ?? template);
  const variants = custom ? [] : familyVariants(choice.templateId);
  const busy = state.activeRunId !== null;
  const ban = availableBan(template);
  const stops = instructionStops(template, choice.quirks);
  let preQuery: string;
  try {
    preQuery = template.preQuery();
  } catch (err) {
    preQuery = err instanceof Error ? err.message : String(err);
  }

  return (
    <section class="panel" aria-labelledby="quirks-heading" data-testid="quirks-settings">
      <h2 id="quirks-heading">Template and quirks</h2>
      {custom ? (
        <p class="hint" data-testid="template-variant-custom">
          Template of the custom model {custom.modelId}:{' '}
          {custom.template.source === 'conv_template' ? 'derived from its conv_template' : 'a pre-query written by hand'}.
        </p>
      ) : variants.length > 1 ? (
        <fieldset>
          <legend>Pre-query template</legend>
          {variants.map((v) => (
            <label key={v.id} class="radio">
              <input
                type="radio"
                name="template-variant"
                value={v.id}
                checked={choice.templateId === v.id}
                disabled={busy}
                onChange={() => session.setTemplateVariant(v.id)}
              />{' '}
              {v.preQuery === 'official' ? 'Official chat template' : 'Magpie reference'} <code>{v.id}</code>
              <small class="hint"> {registryTemplate(v.id)?.label ?? v.label}</small>
            </label>
          ))}
        </fieldset>
      ) : (
        <p class="hint">
          Pre-query template: <code>{choice.templateId}</code> (the model&rsquo;s official chat template).
        </p>
      )}
      <p class="hint">What the model continues to write a query{template.bosToken ? ` (BOS ${template.bosToken} goes in front once, unless the engine adds it)` : ''}:</p>
      <pre class="template-text" data-testid="pre-query">{showTemplateText(preQuery)}</pre>
      <fieldset>
        <legend>Quirks (defaults: the Magpie reference for this family)</legend>
        {QUIRK_ORDER.map((key) => {
          const info = QUIRK_INFO[key];
          const id = `quirk-${key}`;
          const unavailable = key === 'firstTokenBan' && ban === null;
          const on = isQuirkOn(choice.quirks, key);
          const byDefault = isQuirkOn(defaults.quirks, key);
          return (
            <div class="field checkbox" key={key}>
              <label for={id}>
                <input
                  id={id}
                  type="checkbox"
                  checked={on}
                  disabled={busy || unavailable}
                  aria-describedby={`${id}-hint`}
                  onChange={(e) => session.setQuirk(key, e.currentTarget.checked)}
                />{' '}
                {info.label}
              </label>
              <small id={`${id}-hint`} class="hint">
                {info.description} Default here: {byDefault ? 'on' : 'off'}.
                {unavailable ? ' Not available: no header-token list is known for this tokenizer.' : ''}
                {key === 'firstTokenBan' && ban ? ` Banned first tokens: ${ban.strings.join(' ')} (ids ${ban.tokenIds.join(', ')}).` : ''}
              </small>
            </div>
          );
        })}
      </fieldset>
      <p class="hint">Stop strings of the query step:</p>
      <ul class="stop-list" data-testid="stop-list">
        {stops.map((s) => (
          <li key={s}>
            <code>{showTemplateText(s)}</code>
          </li>
        ))}
      </ul>
    </section>
  );
}
