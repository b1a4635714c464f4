import { useRef } from 'preact/hooks';
import type { MagpieSession, SessionState } from '../app/session';
import { PAPER_MODEL_NOTE, type ModelOption } from '../core/models';
import { ErrorAdvice } from './GpuPanel';
import { formatMB, percent, phaseLabel } from './format';

function optionText(m: ModelOption, cached: boolean): string {
  const parts = [m.label, m.params, m.quant, `VRAM ${formatMB(m.vramMB)}`, `download ~${formatMB(m.approxDownloadMB)}`];
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
  const { load, models, selectedModelId } = state;
  const busy = load.status === 'loading' || state.activeRunId !== null;
  const loadedId = load.status === 'ready' ? load.model.modelId : null;
  const lostDevice = load.status === 'error' && ['device-lost', 'out-of-memory', 'model-not-loaded'].includes(load.error.kind);

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
        disabled={busy || models.length === 0}
        onChange={(e) => session.selectModel(e.currentTarget.value)}
      >
        {models.length === 0 ? <option value="">{state.ready ? 'No models available' : 'Loading the model list…'}</option> : null}
        {models.map((m) => (
          <option key={m.id} value={m.id}>
            {optionText(m, state.cachedModelIds.has(m.id))}
          </option>
        ))}
      </select>
      <p class="hint">{PAPER_MODEL_NOTE}</p>
      <div class="actions">
        <button type="button" onClick={() => void session.loadModel()} disabled={busy || !selectedModelId || loadedId === selectedModelId}>
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
