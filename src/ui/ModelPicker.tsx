import { useRef } from 'preact/hooks';
import type { MagpieSession, SessionState } from '../app/session';
import type { CustomModel } from '../app/custom-models';
import { PAPER_MODEL_NOTE, preferredQuant, type ModelOption } from '../core/models';
import { ErrorAdvice } from './GpuPanel';
import { formatMB, percent, phaseLabel } from './format';
import './templates.css';

/** "0.5B" → 0.5e9, "135M" → 135e6: sizes sort by parameter count, not as text. */
function sizeValue(params: string): number {
  const m = /^(\d+(?:\.\d+)?)([MB])$/i.exec(params);
  if (!m) return Number.POSITIVE_INFINITY;
  return Number(m[1]) * (m[2]?.toUpperCase() === 'M' ? 1e6 : 1e9);
}

const isOneK = (m: ModelOption): boolean => /-1k(?:\?|$)/.test(m.id);

export function optionText(m: ModelOption, cached: boolean): string {
  const parts = [m.label, m.quant, `VRAM ${formatMB(m.vramMB)}`];
  if (m.approxDownloadMB > 0) parts.push(`download ~${formatMB(m.approxDownloadMB)}`);
  if (isOneK(m)) parts.push('for small GPUs');
  if (cached) parts.push('cached');
  return parts.join(' · ');
}

export interface ModelGroup {
  label: string;
  models: ModelOption[];
}

/**
 * One group per family (scripted test models apart), families in the order of their smallest model, models by size
 * and then full context before the 1k variant.
 */
export function groupModels(models: readonly ModelOption[]): ModelGroup[] {
  const groups = new Map<string, ModelOption[]>();
  for (const m of models) {
    const key = m.scripted ? 'Test engine (scripted)' : m.hidden ? `${m.family} (hidden: ${m.hiddenReason ?? 'not a chat model'})` : m.family;
    const list = groups.get(key) ?? [];
    list.push(m);
    groups.set(key, list);
  }
  return [...groups.entries()].map(([label, list]) => ({
    label,
    models: [...list].sort(
      (a, b) => sizeValue(a.params) - sizeValue(b.params) || Number(isOneK(a)) - Number(isOneK(b)) || a.vramMB - b.vramMB,
    ),
  }));
}

function customText(m: CustomModel, cached: boolean): string {
  const parts = [m.modelId, m.kind === 'url' ? 'by URL' : 'prebuilt, derived template'];
  if (m.vramMB !== undefined) parts.push(`VRAM ${formatMB(m.vramMB)}`);
  if (cached) parts.push('cached');
  return parts.join(' · ');
}

/** The next model down by VRAM, for the "Pick a smaller model" recovery after a lost device. */
function smallerThan(models: readonly ModelOption[], id: string): ModelOption | undefined {
  const current = models.find((m) => m.id === id);
  if (!current) return undefined;
  return models
    .filter((m) => m.vramMB < current.vramMB)
    .sort((a, b) => b.vramMB - a.vramMB)[0];
}

export function ModelPicker({ session, state }: { session: MagpieSession; state: SessionState }) {
  const select = useRef<HTMLSelectElement>(null);
  const { load, models, selectedModelId, customModels } = state;
  const busy = load.status === 'loading' || state.activeRunId !== null;
  const loadedId = load.status === 'ready' ? load.model.modelId : null;
  const lostDevice = load.status === 'error' && ['device-lost', 'engine-unresponsive', 'out-of-memory', 'model-not-loaded'].includes(load.error.kind);
  const shaderF16 = state.gpu?.adapter?.shaderF16;
  // Without an adapter no WebGPU model can load (scripted test models need none).
  const needsGpu = state.gpu !== null && !state.gpu.adapter && !selectedModelId.startsWith('scripted:');
  const customIds = new Set(customModels.map((m) => m.modelId));
  // A prebuilt model added as a custom model is listed once, under "Custom".
  const groups = groupModels(models.filter((m) => !customIds.has(m.id)));
  const selected = models.find((m) => m.id === selectedModelId);
  const selectedCustom = customModels.find((m) => m.modelId === selectedModelId);
  const noTemplate = selected !== undefined && !selectedCustom && selected.templateId === undefined;

  const pickSmaller = () => {
    const smaller = smallerThan(models, load.status === 'error' ? load.modelId : selectedModelId);
    if (smaller) session.selectModel(smaller.id);
    select.current?.focus();
  };

  return (
    <section class="panel" aria-labelledby="model-heading">
      <h2 id="model-heading">Model</h2>
      <label for="model-select">Model to generate with</label>
      <select
        id="model-select"
        ref={select}
        value={selectedModelId}
        disabled={busy || (models.length === 0 && customModels.length === 0)}
        onChange={(e) => session.selectModel(e.currentTarget.value)}
      >
        {models.length === 0 && customModels.length === 0 ? (
          <option value="">{state.ready ? 'No models available' : 'Loading the model list…'}</option>
        ) : null}
        {groups.map((g) => (
          <optgroup key={g.label} label={g.label}>
            {g.models.map((m) => (
              <option key={m.id} value={m.id}>
                {optionText(m, state.cachedModelIds.has(m.id))}
              </option>
            ))}
          </optgroup>
        ))}
        {customModels.length > 0 ? (
          <optgroup label="Custom">
            {customModels.map((m) => (
              <option key={m.modelId} value={m.modelId}>
                {customText(m, state.cachedModelIds.has(m.modelId))}
              </option>
            ))}
          </optgroup>
        ) : null}
      </select>
      {shaderF16 !== undefined ? (
        <p class="hint" data-testid="quant-choice">
          Quantization: <strong>{preferredQuant(shaderF16)}</strong>{' '}
          {shaderF16 ? '(this GPU has shader-f16: half-precision builds are smaller and faster).' : '(this GPU has no shader-f16, so only q4f32_1 builds can run).'}
        </p>
      ) : null}
      <label class="checkbox">
        <input
          type="checkbox"
          checked={state.showAllModels}
          disabled={busy}
          onChange={(e) => session.setShowAllModels(e.currentTarget.checked)}
        />{' '}
        Show all models (also base, math-only, code-only, vision and reasoning-distill builds)
      </label>
      {selected ? (
        <p class="hint" data-testid="model-details">
          {selected.label}: {selected.params ? `${selected.params} parameters, ` : ''}
          {selected.quant}, needs about {formatMB(selected.vramMB)} of GPU memory
          {selected.approxDownloadMB > 0 ? `, downloads about ${formatMB(selected.approxDownloadMB)}` : ''}, {selected.contextWindow}-token
          context{isOneK(selected) ? ' (the 1k variant uses less memory: pick it on small GPUs)' : ''}.
          {state.cachedModelIds.has(selected.id) ? ' Already in the browser cache.' : ''}
        </p>
      ) : null}
      {selected?.hidden ? (
        <p class="hint" data-testid="hidden-reason">
          Hidden by default: {selected.hiddenReason ?? 'not a chat generalist'}; Magpie needs an aligned chat model.
          {noTemplate ? ' No chat template is known for it here: add it as a custom model to derive one from its conv_template.' : ''}
        </p>
      ) : null}
      <p class="hint">{PAPER_MODEL_NOTE}</p>
      {needsGpu ? (
        <p class="hint" id="load-needs-gpu" data-testid="load-needs-gpu">
          Loading a model here needs a WebGPU adapter (see “Your GPU”). You can still generate with an
          OpenAI-compatible server: pick it under Engine.
        </p>
      ) : null}
      <div class="actions">
        <button
          type="button"
          onClick={() => void session.loadModel()}
          disabled={busy || !selectedModelId || loadedId === selectedModelId || needsGpu}
          aria-describedby={needsGpu ? 'load-needs-gpu' : undefined}
        >
          {loadedId === selectedModelId ? 'Loaded' : 'Load model'}
        </button>
        {loadedId ? (
          <span class="status ok" data-testid="loaded-model">
            Loaded: {loadedId}
          </span>
        ) : null}
      </div>
      {load.status === 'loading' ? (
        <div class="load-progress">
          <progress aria-label="Model loading progress" max={1} value={load.progress?.fraction ?? undefined} />
          <p aria-live="polite">
            {load.progress ? `${phaseLabel(load.progress.phase)}: ${percent(load.progress.fraction)}%` : 'Starting…'}
          </p>
          {load.progress?.text ? <p class="hint">{load.progress.text}</p> : null}
        </div>
      ) : null}
      {load.status === 'error' ? (
        <>
          <ErrorAdvice error={load.error} title={`Could not load ${load.modelId}.`} />
          {lostDevice ? (
            <div class="actions">
              <button type="button" onClick={() => void session.loadModel(load.modelId)}>
                Reload model
              </button>
              <button type="button" onClick={pickSmaller}>
                Pick a smaller model
              </button>
            </div>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
