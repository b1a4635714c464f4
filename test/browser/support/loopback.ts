/** Shared by the guarded worker and the tests: what counts as staying on this machine. */
export const REQUEST_CHANNEL = 'magpie-web:test:worker-requests';

export interface RequestSeen {
  url: string;
  via: 'fetch' | 'cache.add' | 'xhr' | 'resource-timing' | 'page-resource-timing';
  loopback: boolean;
}

/** http(s) to localhost, 127.0.0.0/8 or [::1]; data: and blob: never touch the network. */
export function isLoopbackUrl(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'data:' || u.protocol === 'blob:') return true;
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'ws:' && u.protocol !== 'wss:') return false;
  const host = u.hostname;
  return host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}
