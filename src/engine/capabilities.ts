/**
 * WebGPU capability check, usable in the page and in the worker (both have navigator.gpu in Chromium).
 * WebLLM itself checks nothing about shader-f16 for most models, so the app reads it here and picks q4f32_1.
 */
import { classifyEngineError } from '../core/errors';
import type { GpuCapabilities } from './worker-api';

/** Structural view of navigator, so tests can pass a stub. */
export interface NavigatorWithGpu {
  gpu?: Pick<GPU, 'requestAdapter'>;
}

export async function detectGpu(
  nav: NavigatorWithGpu = globalThis.navigator as NavigatorWithGpu,
): Promise<GpuCapabilities> {
  const gpu = nav?.gpu;
  if (!gpu) {
    return {
      webgpu: false,
      problem: classifyEngineError({ kind: 'webgpu-unavailable', message: 'navigator.gpu is not available.' }),
    };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return { webgpu: true, problem: classifyEngineError(err) };
  }
  if (!adapter) {
    return {
      webgpu: true,
      problem: classifyEngineError({ kind: 'no-adapter', message: 'navigator.gpu.requestAdapter() returned null.' }),
    };
  }
  const info = adapter.info;
  // Older Chromium put isFallbackAdapter on the adapter itself rather than on adapter.info.
  const legacyFallback = (adapter as unknown as { isFallbackAdapter?: unknown }).isFallbackAdapter;
  const infoFallback: unknown = info?.isFallbackAdapter;
  return {
    webgpu: true,
    adapter: {
      vendor: info?.vendor ?? '',
      architecture: info?.architecture ?? '',
      description: info?.description ?? '',
      isFallbackAdapter: infoFallback === true || legacyFallback === true,
      shaderF16: adapter.features.has('shader-f16'),
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  };
}
