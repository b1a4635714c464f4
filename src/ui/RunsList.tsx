import type { MagpieSession, SessionState } from '../app/session';
import { statusText } from './RunPanel';

export function RunsList({ session, state }: { session: MagpieSession; state: SessionState }) {
  if (state.runs.length === 0) return null;
  return (
    <section class="panel" aria-labelledby="runs-heading">
      <h2 id="runs-heading">Saved runs</h2>
      <ul class="runs">
        {state.runs.map((run) => {
          const selected = run.id === state.selectedRunId;
          const active = run.id === state.activeRunId;
          return (
            <li key={run.id} class={selected ? 'selected' : ''}>
              <button
                type="button"
                class="run-select"
                aria-pressed={selected}
                onClick={() => void session.selectRun(run.id)}
              >
                <span class="run-label">{run.label}</span>
                <span class="run-meta">
                  {statusText(run, active)} · {run.counters.accepted}/{run.settings.count}
                </span>
              </button>
              <button
                type="button"
                class="secondary danger"
                aria-label={`Delete run ${run.label}`}
                disabled={active}
                onClick={() => {
                  if (window.confirm(`Delete run “${run.label}” and its ${run.counters.accepted} records?`)) {
                    void session.deleteRun(run.id);
                  }
                }}
              >
                Delete
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
