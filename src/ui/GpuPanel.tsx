import type { ClassifiedError } from '../core/errors';
import type { GpuCapabilities } from '../engine/worker-api';
import { formatMB } from './format';

export function ErrorAdvice({ error, title }: { error: ClassifiedError; title?: string }) {
  return (
    <div class="problem" role="alert">
      {title ? <strong>{title} </strong> : null}
      <span>{error.advice}</span>
      <details>
        <summary>Details</summary>
        <code>{error.message}</code>
      </details>
    </div>
  );
}

export function GpuPanel({ gpu }: { gpu: GpuCapabilities | null }) {
  return (
    <section class="panel" aria-labelledby="gpu-heading">
      <h2 id="gpu-heading">Your GPU</h2>
      {gpu === null ? (
        <p aria-busy="true">Checking WebGPU…</p>
      ) : (
        <>
          <dl class="facts">
            <dt>WebGPU</dt>
            <dd data-testid="webgpu-status">{gpu.webgpu ? (gpu.adapter ? 'available' : 'available, but no GPU adapter') : 'not available'}</dd>
            {gpu.adapter ? (
              <>
                <dt>Adapter</dt>
                <dd data-testid="gpu-adapter">
                  {gpu.adapter.description || [gpu.adapter.vendor, gpu.adapter.architecture].filter(Boolean).join(' ') || 'unnamed'}
                  {gpu.adapter.isFallbackAdapter ? <span class="badge warn"> software adapter</span> : null}
                </dd>
                <dt>shader-f16</dt>
                <dd data-testid="shader-f16">{gpu.adapter.shaderF16 ? 'yes' : 'no'}</dd>
                <dt>Largest buffer</dt>
                <dd>{formatMB(gpu.adapter.maxBufferSize / (1024 * 1024))}</dd>
              </>
            ) : null}
          </dl>
          {gpu.adapter && !gpu.adapter.shaderF16 ? (
            <p class="note" data-testid="f32-note">
              Your GPU has no shader-f16, so the list offers q4f32_1 models (larger and a little slower than q4f16_1).
            </p>
          ) : null}
          {gpu.adapter?.isFallbackAdapter ? (
            <p class="note">This is a software (CPU) WebGPU adapter: real models will be very slow or fail to load.</p>
          ) : null}
          {gpu.problem ? <ErrorAdvice error={gpu.problem} title="GPU problem:" /> : null}
        </>
      )}
    </section>
  );
}
