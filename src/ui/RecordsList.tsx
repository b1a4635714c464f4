import type { MagpieRecord } from '../core/record';

export interface RecordsListProps {
  records: readonly MagpieRecord[];
  total: number;
  onLoadMore?: () => void;
}

/** Records, newest first. Model text is only ever rendered as text nodes, never parsed as HTML. */
export function RecordsList({ records, total, onLoadMore }: RecordsListProps) {
  return (
    <section class="panel" aria-labelledby="records-heading">
      <h2 id="records-heading">
        Records <span class="count">({total})</span>
      </h2>
      {records.length === 0 ? <p class="hint">No records yet.</p> : null}
      <ol class="records" reversed>
        {records.map((r) => (
          <li key={r.uuid} data-seq={r.seq}>
            <details>
              <summary>
                <span class="seq">#{r.seq}</span> <span class="instruction">{r.instruction}</span>
              </summary>
              <div class="response">{r.response}</div>
              <p class="hint">
                {r.instructionStep.completionTokens + r.responseStep.completionTokens} tokens · response{' '}
                {r.responseStep.finishReason === 'length' ? 'cut by max tokens' : 'complete'}
              </p>
            </details>
          </li>
        ))}
      </ol>
      {records.length < total && onLoadMore ? (
        <button type="button" class="secondary" onClick={onLoadMore}>
          Load more ({total - records.length} older)
        </button>
      ) : null}
    </section>
  );
}
