import { useEffect, useState } from 'preact/hooks';
import type { MagpieSession, SessionState } from '../app/session';

/** The session's state, re-rendering on each (frame-throttled) notification. */
export function useSessionState(session: MagpieSession): SessionState {
  const [state, setState] = useState(session.state);
  useEffect(() => {
    setState(session.state);
    const unsubscribe = session.subscribe(setState);
    return () => {
      unsubscribe();
    };
  }, [session]);
  return state;
}
