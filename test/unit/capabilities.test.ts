import { describe, expect, it } from 'vitest';
import { detectGpu, type NavigatorWithGpu } from '../../src/engine/capabilities';

function adapterStub(features: string[], info: Record<string, unknown>): GPUAdapter {
  return { features: new Set(features), limits: { maxBufferSize: 1 << 30 }, info } as unknown as GPUAdapter;
}

describe('detectGpu (stubbed navigator; the real adapter is checked in the browser test)', () => {
  it('reports webgpu-unavailable without navigator.gpu', async () => {
    const caps = await detectGpu({});
    expect(caps.webgpu).toBe(false);
    expect(caps.problem?.kind).toBe('webgpu-unavailable');
  });

  it('reports no-adapter when requestAdapter returns null', async () => {
    const nav: NavigatorWithGpu = { gpu: { requestAdapter: async () => null } };
    const caps = await detectGpu(nav);
    expect(caps).toMatchObject({ webgpu: true, problem: { kind: 'no-adapter' } });
    expect(caps.adapter).toBeUndefined();
  });

  it('reads adapter info, shader-f16 and the buffer limit', async () => {
    const info = { vendor: 'acme', architecture: 'rdna', description: 'Acme GPU', isFallbackAdapter: false };
    const caps = await detectGpu({ gpu: { requestAdapter: async () => adapterStub(['shader-f16'], info) } });
    expect(caps).toEqual({
      webgpu: true,
      adapter: { vendor: 'acme', architecture: 'rdna', description: 'Acme GPU', isFallbackAdapter: false, shaderF16: true, maxBufferSize: 1 << 30 },
    });
    const noF16 = await detectGpu({ gpu: { requestAdapter: async () => adapterStub([], { ...info, isFallbackAdapter: true }) } });
    expect(noF16.adapter).toMatchObject({ shaderF16: false, isFallbackAdapter: true });
  });

  it('classifies a throwing requestAdapter', async () => {
    const caps = await detectGpu({
      gpu: {
        requestAdapter: async () => {
          throw new Error('Unable to find a compatible GPU');
        },
      },
    });
    expect(caps.problem?.kind).toBe('no-adapter');
  });
});
