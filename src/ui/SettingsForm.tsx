import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { MagpieSession, SessionState } from '../app/session';
import { prefillSampling } from '../app/template-choice';
import { defaultModeForm, parseModeForm, type ModeForm } from '../core/modes/form';
import { ModeSettings } from './ModeSettings';
import { TextField } from './TextField';
import {
  defaultSettings,
  parseSettings,
  randomSeed,
  settingsToForm,
  type SettingsField,
  type SettingsForm as FormValues,
} from '../core/settings';

interface FieldProps {
  field: SettingsField;
  label: string;
  values: FormValues;
  errors: Partial<Record<SettingsField, string>>;
  onInput: (field: SettingsField, value: string) => void;
  inputMode?: 'numeric' | 'decimal';
  hint?: string;
}

function Field({ field, label, values, errors, onInput, inputMode = 'decimal', hint }: FieldProps) {
  return (
    <TextField
      id={`setting-${field}`}
      label={label}
      value={values[field]}
      error={errors[field]}
      inputMode={inputMode}
      onInput={(v) => onInput(field, v)}
      {...(hint ? { hint } : {})}
    />
  );
}

export function SettingsForm({ session, state }: { session: MagpieSession; state: SessionState }) {
  const [values, setValues] = useState<FormValues>(() => settingsToForm(defaultSettings(randomSeed())));
  const contextWindow = state.load.status === 'ready' ? state.load.model.contextWindow : undefined;
  const parsed = useMemo(() => parseSettings(values, contextWindow), [values, contextWindow]);
  const errors = parsed.ok ? {} : parsed.errors;
  const [modeForm, setModeForm] = useState<ModeForm>(defaultModeForm);
  const loadedModelId = state.load.status === 'ready' ? state.load.model.modelId : undefined;
  // System prompts are checked against the loaded model's template (Gemma-2 has no system role).
  const template = useMemo(() => (loadedModelId === undefined ? undefined : session.templateFor(loadedModelId)), [session, loadedModelId]);
  const modeResult = useMemo(
    () => parseModeForm(modeForm, { ...(template ? { template } : {}), ...(parsed.ok ? { count: parsed.settings.count } : {}) }),
    [modeForm, template, parsed],
  );
  const loaded = state.load.status === 'ready';
  const running = state.activeRunId !== null;
  const canStart = loaded && parsed.ok && modeResult.ok && !running;

  // Fields the user typed in keep their value when the model changes; the others take the family's sampling.
  const edited = useRef<Set<SettingsField>>(new Set());
  const familyTemplate = state.selectedModelId ? session.templateFor(state.selectedModelId) : undefined;
  const familyId = familyTemplate?.id;
  useEffect(() => {
    const sampling = familyTemplate?.defaultSampling;
    if (sampling) setValues((v) => prefillSampling(v, edited.current, sampling));
    // Keyed by template id: a new template object for the same family must not re-run the prefill.
  }, [familyId]);
  const onInput = (field: SettingsField, value: string) => {
    edited.current.add(field);
    setValues((v) => ({ ...v, [field]: value }));
  };
  const common = { values, errors, onInput };

  const why = !loaded
    ? 'Load a model to start.'
    : running
      ? 'A run is in progress.'
      : !parsed.ok || !modeResult.ok
        ? 'Fix the highlighted settings to start.'
        : '';

  return (
    <section class="panel" aria-labelledby="settings-heading">
      <h2 id="settings-heading">Run settings</h2>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (canStart && parsed.ok && modeResult.ok) void session.startRun(parsed.settings, modeResult.modes);
        }}
      >
        <div class="grid two">
          <Field field="count" label="Records to generate" inputMode="numeric" {...common} />
          <div class="seed-row">
            <Field field="seed" label="Seed" inputMode="numeric" hint="Blank: no seed." {...common} />
            <button type="button" class="secondary" onClick={() => onInput('seed', String(randomSeed()))}>
              Random seed
            </button>
          </div>
        </div>
        <fieldset>
          <legend>Instruction step (the model writes the user query)</legend>
          <div class="grid three">
            <Field field="instructionTemperature" label="Temperature" {...common} />
            <Field field="instructionTopP" label="top_p" {...common} />
            <Field field="instructionMaxTokens" label="Max tokens" inputMode="numeric" {...common} />
          </div>
        </fieldset>
        <fieldset>
          <legend>Response step (the model answers it)</legend>
          <div class="grid three">
            <Field field="responseTemperature" label="Temperature" {...common} />
            <Field field="responseTopP" label="top_p" {...common} />
            <Field field="responseMaxTokens" label="Max tokens" inputMode="numeric" {...common} />
          </div>
        </fieldset>
        <ModeSettings session={session} state={state} form={modeForm} result={modeResult} onChange={setModeForm} />
        <div class="actions">
          <button type="submit" disabled={!canStart} aria-describedby={why ? 'start-why' : undefined}>
            Start
          </button>
          {why ? (
            <small id="start-why" class="hint">
              {why}
            </small>
          ) : null}
        </div>
      </form>
    </section>
  );
}
