/** The durability UI: why a run is paused and how to go on, runs interrupted elsewhere, storage space and long-run options. */
import type { MagpieSession, SessionState } from '../app/session';
import { availableBytes, WakeLockKeeper, notificationsSupported } from '../app/run-environment';
import type { Run } from '../core/record';
import { recoveryOffers } from '../core/run-state';

function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return 'not reported';
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

/** Inside the run panel: another tab is generating it, or why it is paused and what to do. */
export function RunDurability({ session, state, run, active }: { session: MagpieSession; state: SessionState; run: Run; active: boolean }) {
  if (state.elsewhere.has(run.id)) {
    return (
      <p class="hint" role="status" data-testid="run-elsewhere">
        Another tab is generating this run; progress shows here. If that tab closes, this tab takes over.
      </p>
    );
  }
  if (active || run.status !== 'paused' || !run.pause || run.pause.reason === 'user') return null;
  // Only models whose template writes this run's prompts: a run never mixes prompt formats.
  const offers = run.pause.reason === 'engine-lost' ? recoveryOffers(state.models, run.modelId, (m) => session.continuation(run, m.id).ok) : {};
  const title =
    run.pause.reason === 'interrupted'
      ? 'This run was interrupted.'
      : run.pause.reason === 'storage-full'
        ? 'Paused: the browser storage is full.'
        : 'Paused: the GPU or the engine kept failing.';
  return (
    <div class="banner" role="alert" data-testid="pause-message">
      <span>
        <strong>{title}</strong> {run.pause.message}
        {run.pause.reason === 'storage-full' ? ' Free space below (delete runs or cached models), then press Resume.' : null}
      </span>
      {offers.smallerContext || offers.smallerModel ? (
        <div class="actions">
          {[offers.smallerContext, offers.smallerModel].map((m) =>
            m ? (
              <button key={m.id} type="button" onClick={() => void session.continueWithModel(run.id, m.id)}>
                Continue with {m.label}
              </button>
            ) : null,
          )}
        </div>
      ) : null}
    </div>
  );
}

/** Above the app: interrupted runs other than the one shown, one click away. */
export function InterruptedRunsBanner({ session, state }: { session: MagpieSession; state: SessionState }) {
  const others = state.runs.filter(
    (r) => r.id !== state.selectedRunId && r.status === 'paused' && r.pause?.reason === 'interrupted' && !state.elsewhere.has(r.id),
  );
  if (others.length === 0) return null;
  return (
    <div class="banner" role="status">
      <span>
        {others.length === 1 ? 'A run was' : `${others.length} runs were`} interrupted when their tab closed; the saved
        records are kept.
      </span>
      {others.slice(0, 3).map((r) => (
        <button key={r.id} type="button" class="secondary" onClick={() => void session.selectRun(r.id)}>
          Show {r.label}
        </button>
      ))}
    </div>
  );
}

/** Storage space, cached models, and the wake lock / notification options. */
export function LongRunPanel({ session, state }: { session: MagpieSession; state: SessionState }) {
  const s = state.storage;
  const loadedId = state.load.status === 'ready' ? state.load.model.modelId : null;
  const cached = state.models.filter((m) => state.cachedModelIds.has(m.id));
  return (
    <section class="panel" aria-labelledby="long-run-heading">
      <h2 id="long-run-heading">Storage and long runs</h2>
      {s ? (
        <dl class="counters" data-testid="storage">
          <div>
            <dt>Runs and records</dt>
            <dd>{formatBytes(s.dataBytes)}</dd>
          </div>
          <div>
            <dt>Cached models</dt>
            <dd>{formatBytes(s.modelCacheBytes)}</dd>
          </div>
          <div>
            <dt>Available</dt>
            <dd data-testid="storage-available">{formatBytes(availableBytes(s))}</dd>
          </div>
          <div>
            <dt>Persistent</dt>
            <dd>{s.persisted === null ? 'not reported' : s.persisted ? 'yes' : 'no'}</dd>
          </div>
        </dl>
      ) : (
        <p class="hint">This browser does not report storage use.</p>
      )}
      {cached.length > 0 ? (
        <ul class="runs" aria-label="Cached models">
          {cached.map((m) => (
            <li key={m.id}>
              <span class="run-label">{m.label}</span>
              <button
                type="button"
                class="secondary danger"
                aria-label={`Delete cached model ${m.label}`}
                disabled={state.activeRunId !== null && loadedId === m.id}
                onClick={() => void session.deleteCachedModel(m.id)}
              >
                Delete from cache
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      <label class="check">
        <input
          type="checkbox"
          checked={state.prefs.wakeLock}
          disabled={!WakeLockKeeper.supported}
          onChange={(e) => void session.setPreference('wakeLock', e.currentTarget.checked)}
        />{' '}
        Keep the screen awake while a run is active
      </label>
      <label class="check">
        <input
          type="checkbox"
          checked={state.prefs.notifyOnEnd}
          disabled={!notificationsSupported()}
          onChange={(e) => void session.setPreference('notifyOnEnd', e.currentTarget.checked)}
        />{' '}
        Notify me when a run ends
      </label>
      <p class="hint">Generation runs in a worker, so a run keeps going in a background tab.</p>
    </section>
  );
}
