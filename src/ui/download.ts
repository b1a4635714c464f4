/**
 * Streamed JSONL download: records are read from IndexedDB a batch at a time and piped into a Blob through a
 * ReadableStream, so an export never builds the whole file as one JavaScript string.
 */
import { exportFileName, jsonlLines, type ExportFormat } from '../core/export';
import type { MagpieRecord, Run } from '../core/record';

export interface RecordSource {
  iterateRecords(runId: string): AsyncIterable<MagpieRecord>;
}

/** A byte stream of the run's export, one JSON line per record. */
export function exportStream(source: RecordSource, run: Run, format: ExportFormat): ReadableStream<Uint8Array> {
  const lines = jsonlLines(source.iterateRecords(run.id), format, run);
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await lines.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    async cancel() {
      await lines.return(undefined);
    },
  });
}

/** The export as a Blob (the browser may keep it on disk); useful for tests and for the download below. */
export async function exportBlob(source: RecordSource, run: Run, format: ExportFormat): Promise<Blob> {
  const response = new Response(exportStream(source, run, format), {
    headers: { 'Content-Type': 'application/jsonl; charset=utf-8' },
  });
  return response.blob();
}

/** Saves the run's export through a temporary <a download>; returns the file name used. */
export async function downloadRun(source: RecordSource, run: Run, format: ExportFormat): Promise<string> {
  const blob = await exportBlob(source, run, format);
  const url = URL.createObjectURL(blob);
  const fileName = exportFileName(run, format);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.append(a);
  try {
    a.click();
  } finally {
    a.remove();
    // Revoke after the click has been handled: some browsers start reading the URL asynchronously.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
  return fileName;
}
