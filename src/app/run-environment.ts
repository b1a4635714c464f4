/**
 * The browser services a long run leans on: storage space (estimate, persistence, WebLLM's model caches), the
 * Screen Wake Lock, and a notification when a run ends. Each one is optional and fails soft: a run never stops
 * because one of these is missing or refused.
 */

/** Cache API caches WebLLM 0.2.86 fills with the default "cache" backend (see deleteModelAllInfoInCache). */
export const WEBLLM_CACHE_NAMES = ['webllm/model', 'webllm/wasm', 'webllm/config'] as const;

export interface StorageReport {
  /** Bytes this origin uses, and may use, as the browser estimates them. */
  usage: number;
  quota: number;
  /** IndexedDB bytes (runs and records), when the browser breaks usage down (Chromium). */
  dataBytes?: number;
  /** Cache API bytes (WebLLM's model weights, wasm and configs), when the browser breaks usage down. */
  modelCacheBytes?: number;
  /** Which of WEBLLM_CACHE_NAMES exist. */
  modelCaches: string[];
  /** Whether the browser promised not to evict this origin's data; null when unknown. */
  persisted: boolean | null;
}

/** Chromium's non-standard breakdown of StorageEstimate.usage. */
interface UsageDetails {
  indexedDB?: number;
  caches?: number;
}

function usageDetails(estimate: StorageEstimate): UsageDetails | undefined {
  const details: unknown = (estimate as { usageDetails?: unknown }).usageDetails;
  return details && typeof details === 'object' ? (details as UsageDetails) : undefined;
}

export async function readStorageReport(): Promise<StorageReport | undefined> {
  const storage = globalThis.navigator?.storage;
  if (!storage || typeof storage.estimate !== 'function') return undefined;
  try {
    const estimate = await storage.estimate();
    const details = usageDetails(estimate);
    const report: StorageReport = {
      usage: estimate.usage ?? 0,
      quota: estimate.quota ?? 0,
      modelCaches: [],
      persisted: typeof storage.persisted === 'function' ? await storage.persisted().catch(() => null) : null,
    };
    if (details?.indexedDB !== undefined) report.dataBytes = details.indexedDB;
    if (details?.caches !== undefined) report.modelCacheBytes = details.caches;
    if (typeof caches !== 'undefined') {
      const names = await caches.keys().catch(() => [] as string[]);
      report.modelCaches = WEBLLM_CACHE_NAMES.filter((n) => names.includes(n));
    }
    return report;
  } catch {
    return undefined;
  }
}

/** Bytes the site may still write (quota minus usage), never negative. */
export function availableBytes(report: StorageReport): number {
  return Math.max(0, report.quota - report.usage);
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Holds a screen wake lock while a run is active. The browser drops the lock whenever the page is hidden, so it is
 * asked for again when the page becomes visible while still wanted.
 */
export class WakeLockKeeper {
  private sentinel: WakeLockSentinel | null = null;
  private wanted = false;
  private readonly onVisible = (): void => {
    if (this.wanted && document.visibilityState === 'visible') void this.request();
  };

  static get supported(): boolean {
    return typeof navigator !== 'undefined' && 'wakeLock' in navigator;
  }

  get held(): boolean {
    return this.sentinel !== null && !this.sentinel.released;
  }

  async hold(): Promise<void> {
    if (this.wanted || !WakeLockKeeper.supported) return;
    this.wanted = true;
    document.addEventListener('visibilitychange', this.onVisible);
    await this.request();
  }

  release(): void {
    this.wanted = false;
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.onVisible);
    const s = this.sentinel;
    this.sentinel = null;
    if (s && !s.released) void s.release().catch(() => undefined);
  }

  private async request(): Promise<void> {
    try {
      const sentinel = await navigator.wakeLock.request('screen');
      if (!this.wanted) {
        void sentinel.release();
        return;
      }
      this.sentinel = sentinel;
    } catch {
      // Refused (battery saver, hidden page, policy): the run goes on, the screen may sleep.
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------

export function notificationsSupported(): boolean {
  return typeof Notification !== 'undefined';
}

/** Asks for permission (only call from the user's click on the checkbox); true when granted. */
export async function askNotificationPermission(): Promise<boolean> {
  if (!notificationsSupported()) return false;
  if (Notification.permission === 'granted') return true;
  if (Notification.permission === 'denied') return false;
  try {
    return (await Notification.requestPermission()) === 'granted';
  } catch {
    return false;
  }
}

/** Shows a notification when allowed; silently does nothing otherwise. */
export function notify(title: string, body: string): void {
  if (!notificationsSupported() || Notification.permission !== 'granted') return;
  try {
    new Notification(title, { body, tag: 'magpie-run' });
  } catch {
    // Some browsers allow notifications only from a service worker; the run's status is on the page anyway.
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface RunPreferences {
  /** Keep the screen awake while a run is active. */
  wakeLock: boolean;
  /** Notify when a run ends (done, failed, or paused by a problem). */
  notifyOnEnd: boolean;
}

const PREFS_KEY = 'magpie-web:run-preferences';

export function loadPreferences(): RunPreferences {
  const fallback: RunPreferences = { wakeLock: false, notifyOnEnd: false };
  try {
    const raw: unknown = JSON.parse(globalThis.localStorage?.getItem(PREFS_KEY) ?? 'null');
    if (!raw || typeof raw !== 'object') return fallback;
    const r = raw as Partial<Record<keyof RunPreferences, unknown>>;
    return { wakeLock: r.wakeLock === true, notifyOnEnd: r.notifyOnEnd === true };
  } catch {
    return fallback;
  }
}

export function savePreferences(prefs: RunPreferences): void {
  try {
    globalThis.localStorage?.setItem(PREFS_KEY, JSON.stringify(prefs));
  } catch {
    // Private mode or storage full: the choice lasts for this page only.
  }
}
