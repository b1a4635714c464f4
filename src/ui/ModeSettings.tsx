/**
 * The "Mode" section of the run settings: generation mode, system-prompt steering (presets, weighted mixture,
 * "describe your dataset"), multi-turn and preference options, imported instructions, mixed sampling, and recipe
 * export / import. All model and file text is rendered as text nodes, never as HTML.
 */
import { useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { MagpieSession, SessionState } from '../app/session';
import { TextField } from './TextField';
import type { ModeForm, ModeFormErrors, ModeFormResult, MixRow, SystemPromptRow } from '../core/modes/form';
import { modeFormFrom } from '../core/modes/form';
import { parseInstructionFile } from '../core/modes/instructions-file';
import { SYSTEM_PROMPT_PRESETS } from '../core/modes/system-prompts';
import { parseRecipe, recipeHash, recipeModes, type ModeKind, type Recipe, type RecipeFieldError } from '../core/recipe';

const MODES: ReadonlyArray<{ id: ModeKind; label: string }> = [
  { id: 'pair', label: 'Instruction + response (classic Magpie)' },
  { id: 'instruction-only', label: 'Instructions only' },
  { id: 'multi-turn', label: 'Multi-turn conversations' },
  { id: 'preference', label: 'Preference pairs (DPO)' },
];


function Check({ id, label, checked, onChange }: { id: string; label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <div class="field check">
      <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.currentTarget.checked)} />
      <label for={id}>{label}</label>
    </div>
  );
}

function FieldError({ id, error }: { id: string; error: string | undefined }) {
  return error ? (
    <p id={id} class="error" role="alert">
      {error}
    </p>
  ) : null;
}

async function readText(input: HTMLInputElement): Promise<{ name: string; text: string } | undefined> {
  const file = input.files?.[0];
  if (!file) return undefined;
  return { name: file.name, text: await file.text() };
}

/** Saves a recipe as a .json download (Blob URL; nothing is sent anywhere). */
function downloadRecipe(recipe: Recipe, label: string): void {
  const blob = new Blob([JSON.stringify(recipe, null, 2) + '\n'], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `magpie-recipe-${label.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase() || 'run'}.json`;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export interface ModeSettingsProps {
  session: MagpieSession;
  state: SessionState;
  form: ModeForm;
  result: ModeFormResult;
  onChange: (form: ModeForm) => void;
}

export function ModeSettings({ session, state, form, result, onChange }: ModeSettingsProps) {
  const errors: ModeFormErrors = result.ok ? {} : result.errors;
  const set = (patch: Partial<ModeForm>) => onChange({ ...form, ...patch });
  const setPrompt = (i: number, patch: Partial<SystemPromptRow>) =>
    set({ prompts: form.prompts.map((p, k) => (k === i ? { ...p, ...patch } : p)) });
  const setMix = (i: number, patch: Partial<MixRow>) => set({ mixRows: form.mixRows.map((m, k) => (k === i ? { ...m, ...patch } : m)) });
  const [preset, setPreset] = useState(SYSTEM_PROMPT_PRESETS[0]?.key ?? 'general');
  const [description, setDescription] = useState('');
  const [drafting, setDrafting] = useState(false);
  const [draftError, setDraftError] = useState<string | null>(null);
  const loaded = state.load.status === 'ready';
  const running = state.activeRunId !== null;

  const addPreset = () => {
    const p = SYSTEM_PROMPT_PRESETS.find((x) => x.key === preset);
    if (!p) return;
    let key = p.key;
    for (let n = 2; form.prompts.some((r) => r.key === key); n++) key = `${p.key}-${n}`;
    set({ prompts: [...form.prompts, { key, prompt: p.prompt, weight: '1' }] });
  };
  const addCustom = (prompt = '') => {
    let n = 1;
    while (form.prompts.some((r) => r.key === `custom-${n}`)) n++;
    set({ steer: true, prompts: [...form.prompts, { key: `custom-${n}`, prompt, weight: '1' }] });
  };
  const draft = async () => {
    setDrafting(true);
    setDraftError(null);
    try {
      addCustom(await session.draftSystemPrompt(description));
    } catch (err) {
      setDraftError(err instanceof Error ? err.message : String(err));
    } finally {
      setDrafting(false);
    }
  };
  const onInstructionFile = async (e: JSX.TargetedEvent<HTMLInputElement>) => {
    const file = await readText(e.currentTarget);
    if (!file) return;
    const parsed = parseInstructionFile(file.name, file.text);
    set({ imported: { fileName: file.name, instructions: parsed.instructions, errors: parsed.errors } });
  };

  return (
    <fieldset class="mode-settings">
      <legend>Mode</legend>
      <div class="field">
        <label for="mode-kind">Generation mode</label>
        <select id="mode-kind" value={form.mode} aria-describedby={errors.mode ? 'mode-kind-error' : undefined} onChange={(e) => set({ mode: e.currentTarget.value as ModeKind })}>
          {MODES.map((m) => (
            <option key={m.id} value={m.id}>
              {m.label}
            </option>
          ))}
        </select>
        <FieldError id="mode-kind-error" error={errors.mode} />
      </div>

      {form.mode === 'multi-turn' ? (
        <div class="mode-group" role="group" aria-label="Multi-turn options">
          <TextField id="mode-turns" label="Turns" inputMode="numeric" value={form.turns} error={errors.turns} onInput={(v) => set({ turns: v })} />
          {result.warnings.map((w) => (
            <p key={w} class="warning" role="status">
              {w}
            </p>
          ))}
          <TextField
            id="mode-follow-up-system"
            label="Follow-up system prompt"
            multiline
            value={form.followUpSystem}
            error={errors.followUpSystem}
            hint="Used only while the model writes follow-up questions; responses never see it. Empty: none."
            onInput={(v) => set({ followUpSystem: v })}
          />
          <Check id="mode-end-with-user" label="End each conversation with a user turn" checked={form.endWithUser} onChange={(v) => set({ endWithUser: v })} />
        </div>
      ) : null}

      {form.mode === 'preference' ? (
        <div class="mode-group" role="group" aria-label="Preference options">
          <div class="grid three">
            <TextField id="mode-candidates" label="Responses per instruction" inputMode="numeric" value={form.candidates} error={errors.candidates} onInput={(v) => set({ candidates: v })} />
            <TextField id="mode-pref-temperature" label="Response temperature" inputMode="decimal" value={form.preferenceTemperature} error={errors.preferenceTemperature} onInput={(v) => set({ preferenceTemperature: v })} />
            <TextField id="mode-pref-top-p" label="Response top_p" inputMode="decimal" value={form.preferenceTopP} error={errors.preferenceTopP} onInput={(v) => set({ preferenceTopP: v })} />
          </div>
          <div class="field">
            <label for="mode-judge">Choose chosen / rejected</label>
            <select id="mode-judge" value={form.judge} onChange={(e) => set({ judge: e.currentTarget.value === 'manual' ? 'manual' : 'model' })}>
              <option value="model">The loaded model judges (rubric, JSON scores)</option>
              <option value="manual">By hand, in the records list</option>
            </select>
          </div>
        </div>
      ) : null}

      <div class="field">
        <label for="mode-source">Instructions</label>
        <select id="mode-source" value={form.source} onChange={(e) => set({ source: e.currentTarget.value === 'imported' ? 'imported' : 'generated' })}>
          <option value="generated">Written by the model (Magpie)</option>
          <option value="imported">Imported from a file (JSONL or TXT)</option>
        </select>
      </div>
      {form.source === 'imported' ? (
        <div class={errors.imported ? 'field invalid' : 'field'}>
          <label for="mode-instruction-file">Instruction file</label>
          <input id="mode-instruction-file" type="file" accept=".jsonl,.json,.ndjson,.txt,text/plain,application/json" aria-describedby="mode-instruction-file-hint" onChange={(e) => void onInstructionFile(e)} />
          <small id="mode-instruction-file-hint" class="hint">
            JSONL with instruction, prompt, messages[0].content or conversations[0].value; or TXT with one instruction per line. Record k answers instruction k.
          </small>
          {form.imported ? (
            <p role="status" data-testid="imported-count">
              {form.imported.fileName}: {form.imported.instructions.length} instructions read
              {form.imported.errors.length > 0 ? `, ${form.imported.errors.length} lines skipped` : ''}.
            </p>
          ) : null}
          {form.imported && form.imported.errors.length > 0 ? (
            <ul class="line-errors" aria-label="Lines not imported">
              {form.imported.errors.map((e) => (
                <li key={e.line}>
                  Line {e.line}: {e.message}
                </li>
              ))}
            </ul>
          ) : null}
          <FieldError id="mode-instruction-file-error" error={errors.imported} />
        </div>
      ) : null}

      <Check id="mode-steer" label="Steer with system prompts" checked={form.steer} onChange={(v) => set({ steer: v })} />
      {form.steer ? (
        <div class="mode-group" role="group" aria-label="System prompts">
          <p class="hint">Each record draws one system prompt, with probability proportional to its weight; the drawn key is stored on the record.</p>
          <FieldError id="mode-prompts-error" error={errors.prompts} />
          <ol class="system-prompts">
            {form.prompts.map((row, i) => (
              <li key={i}>
                <div class="grid two">
                  <TextField id={`mode-prompt-key-${i}`} label={`Key of system prompt ${i + 1}`} value={row.key} error={errors[`key-${i}`]} onInput={(v) => setPrompt(i, { key: v })} />
                  <TextField id={`mode-prompt-weight-${i}`} label={`Weight of system prompt ${i + 1}`} inputMode="decimal" value={row.weight} error={errors[`weight-${i}`]} onInput={(v) => setPrompt(i, { weight: v })} />
                </div>
                <TextField id={`mode-prompt-text-${i}`} label={`System prompt ${i + 1}`} multiline value={row.prompt} error={errors[`prompt-${i}`]} onInput={(v) => setPrompt(i, { prompt: v })} />
                <button type="button" class="secondary" onClick={() => set({ prompts: form.prompts.filter((_, k) => k !== i) })}>
                  Remove system prompt {i + 1}
                </button>
              </li>
            ))}
          </ol>
          <div class="actions">
            <label for="mode-preset">Preset</label>
            <select id="mode-preset" value={preset} onChange={(e) => setPreset(e.currentTarget.value)}>
              {SYSTEM_PROMPT_PRESETS.map((p) => (
                <option key={p.key} value={p.key}>
                  {p.label}
                </option>
              ))}
            </select>
            <button type="button" class="secondary" onClick={addPreset}>
              Add preset
            </button>
            <button type="button" class="secondary" onClick={() => addCustom()}>
              Add custom prompt
            </button>
          </div>
          <Check id="mode-include-system" label="Include the system prompt in exported conversations" checked={form.includeSystem} onChange={(v) => set({ includeSystem: v })} />
          <TextField id="mode-describe" label="Describe your dataset" multiline value={description} hint="The loaded model drafts a system prompt from this; you can edit the draft." onInput={setDescription} />
          <div class="actions">
            <button type="button" class="secondary" disabled={!loaded || running || drafting || description.trim() === ''} onClick={() => void draft()}>
              {drafting ? 'Drafting…' : 'Draft system prompt'}
            </button>
          </div>
          <FieldError id="mode-draft-error" error={draftError ?? undefined} />
        </div>
      ) : null}

      <Check id="mode-mix" label="Mix instruction sampling settings" checked={form.mix} onChange={(v) => set({ mix: v })} />
      {form.mix ? (
        <div class="mode-group" role="group" aria-label="Mixed sampling settings">
          <p class="hint">Each record draws one (temperature, top_p) for its queries, in proportion to the shares; the draw is recorded.</p>
          <FieldError id="mode-mix-error" error={errors.mix} />
          {form.mixRows.map((row, i) => (
            <div key={i} class="grid three mix-row">
              <TextField id={`mode-mix-temperature-${i}`} label={`Temperature ${i + 1}`} inputMode="decimal" value={row.temperature} error={errors[`mix-${i}-temperature`]} onInput={(v) => setMix(i, { temperature: v })} />
              <TextField id={`mode-mix-top-p-${i}`} label={`top_p ${i + 1}`} inputMode="decimal" value={row.topP} error={errors[`mix-${i}-topP`]} onInput={(v) => setMix(i, { topP: v })} />
              <TextField id={`mode-mix-share-${i}`} label={`Share ${i + 1}`} inputMode="decimal" value={row.share} error={errors[`mix-${i}-share`]} onInput={(v) => setMix(i, { share: v })} />
              <button type="button" class="secondary" onClick={() => set({ mixRows: form.mixRows.filter((_, k) => k !== i) })}>
                Remove setting {i + 1}
              </button>
            </div>
          ))}
          <button type="button" class="secondary" onClick={() => set({ mixRows: [...form.mixRows, { temperature: '1', topP: '1', share: '1' }] })}>
            Add sampling setting
          </button>
        </div>
      ) : null}

      <RecipeTools session={session} state={state} onLoadModes={(recipe) => onChange(modeFormFrom(recipeModes(recipe)))} />
    </fieldset>
  );
}

/** Download the selected run's recipe; import one to start an identical run. */
function RecipeTools({ session, state, onLoadModes }: { session: MagpieSession; state: SessionState; onLoadModes: (recipe: Recipe) => void }) {
  const [imported, setImported] = useState<Recipe | null>(null);
  const [errors, setErrors] = useState<RecipeFieldError[]>([]);
  const selected = state.runs.find((r) => r.id === state.selectedRunId);
  const loaded = state.load.status === 'ready' ? state.load.model.modelId : null;
  const running = state.activeRunId !== null;
  const onFile = async (e: JSX.TargetedEvent<HTMLInputElement>) => {
    const file = await readText(e.currentTarget);
    if (!file) return;
    const parsed = parseRecipe(file.text);
    setImported(parsed.ok ? parsed.recipe : null);
    setErrors(parsed.ok ? [] : parsed.errors);
    if (parsed.ok) onLoadModes(parsed.recipe);
  };
  const blocker = !imported ? null : running ? 'A run is in progress.' : loaded !== imported.model ? `Load ${imported.model} to start this recipe.` : null;
  return (
    <div class="mode-group recipe" role="group" aria-label="Recipe">
      <div class="actions">
        <button type="button" class="secondary" disabled={!selected?.recipe} onClick={() => selected?.recipe && downloadRecipe(selected.recipe, selected.label)}>
          Download recipe
        </button>
        {selected && !selected.recipe ? <small class="hint">The selected run has no recipe (made before recipes).</small> : null}
      </div>
      <div class="field">
        <label for="mode-recipe-file">Import recipe</label>
        <input id="mode-recipe-file" type="file" accept=".json,application/json" onChange={(e) => void onFile(e)} />
      </div>
      {errors.length > 0 ? (
        <ul class="line-errors" aria-label="Recipe problems" role="alert">
          {errors.map((e, i) => (
            <li key={i}>{e.path ? `${e.path}: ${e.message}` : e.message}</li>
          ))}
        </ul>
      ) : null}
      {imported ? (
        <div class="actions">
          <span data-testid="recipe-hash" class="hint">
            Recipe {recipeHash(imported).slice(0, 12)} · {imported.model} · {imported.count} records · seed {imported.seed ?? 'none'}
          </span>
          <button type="button" disabled={blocker !== null} aria-describedby={blocker ? 'recipe-why' : undefined} onClick={() => void session.startRun({ count: imported.count, seed: imported.seed, instruction: imported.sampling.instruction, response: imported.sampling.response }, recipeModes(imported), imported)}>
            Start identical run
          </button>
          {blocker ? (
            <small id="recipe-why" class="hint">
              {blocker}
            </small>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
