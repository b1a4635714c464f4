import { afterEach } from 'vitest';
import { EngineClient } from '../../../src/engine/worker-client';

/** The scripted model every worker test loads (test builds list it in the real worker). */
export const SCRIPTED_MODEL = 'scripted:Llama-3.2-1B-Instruct-q4f32_1-MLC';
/** A one-token probe for the BOS check at load. */
export const PROBE = '<|eot_id|>';

/** A factory of real-worker EngineClients, each terminated after the test that made it. */
export function engineClients(): () => EngineClient {
  const clients: EngineClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.terminate();
  });
  return () => {
    const c = new EngineClient();
    clients.push(c);
    return c;
  };
}
