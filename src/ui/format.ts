/** Small display formatters shared by the UI components. */
import type { LoadProgress } from '../engine/worker-api';

export function formatMB(mb: number | undefined): string {
  if (mb === undefined || !Number.isFinite(mb)) return '?';
  return mb >= 1000 ? `${(mb / 1024).toFixed(1)} GB` : `${Math.round(mb)} MB`;
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatRate(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

const PHASE_LABEL: Record<LoadProgress['phase'], string> = {
  fetch: 'Downloading',
  cache: 'Loading from cache',
  shader: 'Compiling shaders',
  ready: 'Ready',
  other: 'Loading',
};

export function phaseLabel(phase: LoadProgress['phase']): string {
  return PHASE_LABEL[phase];
}

export function percent(fraction: number): number {
  return Math.round(Math.min(1, Math.max(0, fraction)) * 100);
}
