import { useEffect } from 'preact/hooks';
import type { MagpieSession, SessionState } from '../app/session';
import { quirksSummary } from '../app/template-choice';
import { exportFormatsFor } from '../core/export';
import type { Run } from '../core/record';
import { isActiveStatus, isResumable } from '../core/run-state';
import { RunDurability } from './Durability';
import { ErrorAdvice } from './GpuPanel';
import { formatDuration, formatRate } from './format';
import { stepLabel } from './steps';

const STATUS_TEXT: Record<Run['status'], string> = {
  queued: 'queued',
  loading: 'loading model',
  running: 'running',
  paused: 'paused',
  done: 'done',
  failed: 'failed',
  // Version-1 rows (the database upgrade renames them; kept for rows read before it).
  created: 'queued',
  stopped: 'paused',
};

export function statusText(run: Run, active: boolean): string {
  // Orphaned runs are marked paused at start-up, so a loading/running run this tab is not running is another tab's.
  if (isActiveStatus(run.status) && !active) return 'running in another tab';
  return STATUS_TEXT[run.status];
}

export function RunPanel({ session, state }: { session: MagpieSession; state: SessionState }) {
  const run = state.runs.find((r) => r.id === state.selectedRunId);
  const active = run !== undefined && state.activeRunId === run.id;

  useEffect(() => {
    if (!active) return;
    // ETA and rates move between records too.
    const timer = setInterval(() => session.refreshStats(), 1000);
    return () => clearInterval(timer);
  }, [active, session]);

  if (!run) {
    return (
      <section class="panel" aria-labelledby="run-heading">
        <h2 id="run-heading">Run</h2>
        <p class="hint">No run yet. Load a model, check the settings and press Start.</p>
      </section>
    );
  }

  const c = run.counters;
  const blocker = active ? null : session.resumeBlocker(run);
  const canResume = !active && isResumable(run) && !state.elsewhere.has(run.id);
  const live = active ? state.live : null;
  const stats = state.statsRunId === run.id ? state.stats : null;

  return (
    <section class="panel run" aria-labelledby="run-heading">
      <h2 id="run-heading">
        Run <span class="run-label">{run.label}</span>
      </h2>
      <p class="meta">
        <span class={`badge status-${run.status}`} data-testid="run-status">
          {statusText(run, active)}
        </span>{' '}
        {run.modelId} · template <span data-testid="run-template">{run.templateId}</span>
        {run.customTemplate ? ` (custom model, ${run.customTemplate.source === 'conv_template' ? 'from its conv_template' : 'hand-written pre-query'})` : ''} · seed{' '}
        {run.settings.seed ?? 'none'}
        {run.quirks ? (
          <>
            <br />
            <span data-testid="run-quirks">quirks: {quirksSummary(run.quirks)}</span>
          </>
        ) : null}
      </p>
      <div class="actions">
        {active ? (
          <button type="button" class="danger" onClick={() => session.stop()}>
            Pause
          </button>
        ) : null}
        {canResume ? (
          <button type="button" disabled={blocker !== null} onClick={() => void session.resumeRun(run.id)} aria-describedby="resume-why">
            Resume
          </button>
        ) : null}
        {canResume && blocker ? (
          <small id="resume-why" class="hint">
            {blocker}
          </small>
        ) : null}
      </div>
      <RunDurability session={session} state={state} run={run} active={active} />
      <progress class="run-progress" aria-label="Run progress" max={run.settings.count} value={c.accepted} />
      <dl class="counters">
        <div>
          <dt>Accepted</dt>
          <dd data-testid="accepted">
            {c.accepted} / {run.settings.count}
          </dd>
        </div>
        <div>
          <dt>Rejected</dt>
          <dd data-testid="rejected">
            {c.rejectedEmpty + c.rejectedLength}
            <small class="sub">
              {c.rejectedEmpty} empty · {c.rejectedLength} cut
            </small>
          </dd>
        </div>
        <div>
          <dt>Tokens/s</dt>
          <dd>{stats ? formatRate(stats.tokensPerSecond) : '—'}</dd>
        </div>
        <div>
          <dt>Records/min</dt>
          <dd>{stats ? formatRate(stats.recordsPerMinute) : '—'}</dd>
        </div>
        <div>
          <dt>ETA</dt>
          <dd>{run.status === 'done' ? 'done' : stats && active ? formatDuration(stats.etaSeconds) : '—'}</dd>
        </div>
      </dl>
      {active ? (
        <div class="live" aria-live="polite" aria-busy={live?.text ? 'true' : 'false'} data-testid="live">
          <p class="live-step">
            {stepLabel(live?.step, live?.attempt ?? 0)}
          </p>
          <pre class="stream">{live?.text ?? ''}</pre>
        </div>
      ) : null}
      {!active && state.runError && state.selectedRunId === run.id ? <ErrorAdvice error={state.runError} title="The run failed." /> : null}
      {!active && run.status === 'failed' && run.error && !state.runError ? (
        <p class="problem" role="status">
          Failed: {run.error}
        </p>
      ) : null}
      <div class="downloads" role="group" aria-label="Download records as JSONL">
        <span class="downloads-title">Download JSONL:</span>
        {exportFormatsFor(run).map((f) => (
          <button
            key={f.id}
            type="button"
            class="secondary"
            title={f.description}
            disabled={c.accepted === 0}
            onClick={() => void session.download(run.id, f.id)}
          >
            {f.label}
          </button>
        ))}
      </div>
    </section>
  );
}
