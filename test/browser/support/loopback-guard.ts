/// <reference lib="webworker" />
/**
 * Loaded first in the guarded engine worker: every request the worker makes (fetch, Cache.add/addAll, XHR) is
 * checked before it leaves, a request to anything but loopback is refused there, and each URL is reported to the
 * page over a BroadcastChannel so the test can assert the full list. Resource Timing entries are reported too, as
 * a second witness for loads that bypass these entry points.
 */
import { isLoopbackUrl, REQUEST_CHANNEL, type RequestSeen } from './loopback';

const channel = new BroadcastChannel(REQUEST_CHANNEL);

function report(url: string, via: RequestSeen['via']): void {
  const absolute = new URL(url, self.location.href).href;
  const seen: RequestSeen = { url: absolute, via, loopback: isLoopbackUrl(absolute) };
  channel.postMessage(seen);
  if (!seen.loopback) throw new TypeError(`Blocked a request that would leave the machine: ${absolute}`);
}

function urlOf(input: RequestInfo | URL): string {
  return input instanceof Request ? input.url : String(input);
}

const realFetch = self.fetch.bind(self);
self.fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  try {
    report(urlOf(input), 'fetch');
  } catch (err) {
    return Promise.reject(err);
  }
  return realFetch(input, init);
};

const realAdd = Cache.prototype.add;
Cache.prototype.add = function add(this: Cache, request: RequestInfo | URL): Promise<void> {
  try {
    report(urlOf(request), 'cache.add');
  } catch (err) {
    return Promise.reject(err);
  }
  return realAdd.call(this, request);
};

const realAddAll = Cache.prototype.addAll;
Cache.prototype.addAll = function addAll(this: Cache, requests: Iterable<RequestInfo>): Promise<void> {
  const list = [...requests];
  try {
    for (const r of list) report(urlOf(r), 'cache.add');
  } catch (err) {
    return Promise.reject(err);
  }
  return realAddAll.call(this, list);
};

const realOpen = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function open(this: XMLHttpRequest, method: string, url: string | URL, ...rest: unknown[]): void {
  report(String(url), 'xhr');
  (realOpen as (...args: unknown[]) => void).call(this, method, url, ...rest);
};

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    channel.postMessage({ url: entry.name, via: 'resource-timing', loopback: isLoopbackUrl(entry.name) } satisfies RequestSeen);
  }
}).observe({ type: 'resource', buffered: true });
