import type { MagpieSession } from '../app/session';
import { CustomModel } from './CustomModel';
import { EnginePanel } from './EnginePanel';
import { InterruptedRunsBanner, LongRunPanel } from './Durability';
import { GpuPanel } from './GpuPanel';
import { ModelPicker } from './ModelPicker';
import { PreferenceReview } from './PreferenceReview';
import { QuirksSettings } from './QuirksSettings';
import { RecordsList } from './RecordsList';
import { RunPanel } from './RunPanel';
import { RunsList } from './RunsList';
import { SettingsForm } from './SettingsForm';
import { useSessionState } from './useSession';

export function App({ session }: { session: MagpieSession }) {
  const state = useSessionState(session);
  return (
    <>
      <header class="site">
        <h1>magpie-web</h1>
        <p>
          Synthetic instruction data with the Magpie method: an aligned Llama-3 model, given only the start of a user
          turn, writes the user’s query, then answers it. Everything runs on your GPU; records stay in this browser.
        </p>
      </header>
      {state.notice ? (
        <div class="banner" role="alert">
          <span>{state.notice}</span>
          <button type="button" class="secondary" onClick={() => session.dismissNotice()}>
            Dismiss
          </button>
        </div>
      ) : null}
      <InterruptedRunsBanner session={session} state={state} />
      <main class="layout">
        <div class="column setup">
          <GpuPanel gpu={state.gpu} />
          <EnginePanel session={session} state={state}>
            <ModelPicker session={session} state={state} />
            <CustomModel session={session} state={state} />
          </EnginePanel>
          <QuirksSettings session={session} state={state} />
          <SettingsForm session={session} state={state} />
          <LongRunPanel session={session} state={state} />
        </div>
        <div class="column output">
          <RunPanel session={session} state={state} />
          <PreferenceReview session={session} records={state.records} />
          <RecordsList
            records={state.records}
            total={state.recordsTotal}
            onLoadMore={() => void session.loadMoreRecords()}
          />
          <RunsList session={session} state={state} />
        </div>
      </main>
    </>
  );
}

/** Shown instead of the app when the store cannot open (e.g. a newer version of the app upgraded it). */
export function FatalError({ message, advice }: { message: string; advice: string }) {
  return (
    <main class="layout single">
      <section class="panel" role="alert">
        <h1>magpie-web cannot start</h1>
        <p>{advice}</p>
        <details>
          <summary>Details</summary>
          <code>{message}</code>
        </details>
      </section>
    </main>
  );
}
