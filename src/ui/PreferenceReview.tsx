/**
 * Hand-made preference judgements: for each record of a preference run, pick the chosen and the rejected response.
 * Two responses with the same text cannot be paired. Model text is rendered as text nodes only.
 */
import { useState } from 'preact/hooks';
import type { MagpieSession } from '../app/session';
import { checkManualPair } from '../core/modes/judge';
import type { MagpieRecord, PreferenceJudgement } from '../core/record';

/** Who judged, and for the model how its answer was read (grammar-constrained JSON or the raw-text fallback). */
export function judgementText(j: PreferenceJudgement | undefined): string {
  if (!j) return 'Not judged yet';
  const how = j.by === 'manual' ? 'hand' : j.via === 'constrained' ? 'the model (constrained JSON)' : j.via === 'raw' ? 'the model (raw-text fallback)' : 'the model';
  return `Judged by ${how}: chosen ${j.chosen + 1}, rejected ${j.rejected + 1}`;
}

function RecordChoice({ session, record }: { session: MagpieSession; record: MagpieRecord }) {
  const candidates = record.candidates ?? [];
  const [chosen, setChosen] = useState<number>(record.judgement?.chosen ?? -1);
  const [rejected, setRejected] = useState<number>(record.judgement?.rejected ?? -1);
  const problem = checkManualPair(candidates.map((c) => c.text), chosen, rejected);
  const name = `pref-${record.uuid}`;
  return (
    <li data-seq={record.seq}>
      <fieldset>
        <legend>
          #{record.seq} {record.instruction}
        </legend>
        <p class="hint" data-testid="judgement-status">
          {judgementText(record.judgement)}
        </p>
        <ol class="candidates">
          {candidates.map((c, i) => (
            <li key={i}>
              <div class="response">{c.text}</div>
              <span class="choice">
                <input type="radio" id={`${name}-c-${i}`} name={`${name}-chosen`} checked={chosen === i} onChange={() => setChosen(i)} />
                <label for={`${name}-c-${i}`}>Chosen: response {i + 1} of record {record.seq}</label>
                <input type="radio" id={`${name}-r-${i}`} name={`${name}-rejected`} checked={rejected === i} onChange={() => setRejected(i)} />
                <label for={`${name}-r-${i}`}>Rejected: response {i + 1} of record {record.seq}</label>
              </span>
            </li>
          ))}
        </ol>
        <button type="button" disabled={problem !== null} aria-describedby={problem ? `${name}-why` : undefined} onClick={() => void session.markPreference(record.uuid, chosen, rejected)}>
          Save choice for record {record.seq}
        </button>
        {problem && (chosen >= 0 || rejected >= 0) ? (
          <small id={`${name}-why`} class="hint">
            {problem}
          </small>
        ) : null}
      </fieldset>
    </li>
  );
}

export function PreferenceReview({ session, records }: { session: MagpieSession; records: readonly MagpieRecord[] }) {
  const withCandidates = records.filter((r) => r.candidates !== undefined);
  if (withCandidates.length === 0) return null;
  const open = withCandidates.filter((r) => !r.judgement).length;
  return (
    <section class="panel" aria-labelledby="preference-heading">
      <h2 id="preference-heading">
        Preference pairs <span class="count">({open} not judged)</span>
      </h2>
      <p class="hint">Records not judged yet are left out of every export except full metadata.</p>
      <ol class="preference-records">
        {withCandidates.map((r) => (
          <RecordChoice key={r.uuid} session={session} record={r} />
        ))}
      </ol>
    </section>
  );
}
