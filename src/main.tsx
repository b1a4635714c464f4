import { render } from 'preact';
import { MagpieSession } from './app/session';
import { EngineClient } from './engine/worker-client';
import { MagpieStore, StorageVersionError } from './storage/db';
import { App, FatalError } from './ui/App';
import './ui/styles.css';

async function start(root: HTMLElement): Promise<void> {
  let store: MagpieStore;
  try {
    store = await MagpieStore.open(undefined, {
      onVersionChange: () =>
        render(
          <FatalError
            message="The database connection was closed by a newer version of the app."
            advice="Another tab upgraded magpie-web. Reload this page to continue."
          />,
          root,
        ),
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const advice =
      err instanceof StorageVersionError
        ? 'Your saved runs were written by a newer version of magpie-web. Reload the page to get the newest version.'
        : 'The browser refused IndexedDB storage (private mode or blocked site data?). Allow site data and reload.';
    render(<FatalError message={message} advice={advice} />, root);
    return;
  }
  const engine = new EngineClient();
  // The define drops this branch, and the hooks module, from production builds.
  const testHooks = __MAGPIE_TEST_BUILD__ ? (await import('./app/test-hooks')).installTestHooks(engine) : undefined;
  const session = new MagpieSession(engine, store, testHooks ? { extraModelIds: testHooks.extraModelIds } : {});
  render(<App session={session} />, root);
  await session.init();
}

const root = document.getElementById('app');
if (root) void start(root);
