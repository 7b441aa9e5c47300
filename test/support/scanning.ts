import type { Inventory } from '../../lambda/domain/inventory.js';
import type { StorageLister } from '../../lambda/ports.js';
import { createRegistryClient, type HttpExchange } from '../../lambda/registry/client.js';
import { type Scanned, scan } from '../../lambda/scan.js';
import type { TestRegistry } from './registry.js';

export interface RecordedScan {
  readonly scanned: Scanned;
  /** Every HTTP exchange the scan had with the registry. */
  readonly requests: readonly HttpExchange[];
}

/** Scans the registry with this storage, recording every request. */
export async function scanWith(reg: TestRegistry, storage: StorageLister, now: Date): Promise<RecordedScan> {
  const requests: HttpExchange[] = [];
  const registry = createRegistryClient({
    url: reg.url,
    concurrency: 4,
    onRequest: (exchange) => requests.push(exchange),
  });
  try {
    const scanned = await scan({
      registry,
      storage,
      clock: { now: () => now },
    });
    return { scanned, requests };
  } finally {
    await registry.close();
  }
}

/** Manifest and blob GETs, as `GET <repository> manifests|blobs <reference>`. */
export function contentReads(requests: readonly HttpExchange[]): string[] {
  return requests.flatMap((request) => {
    const match = /\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)$/.exec(request.url);
    return request.method === 'GET' && match ? [`GET ${match[1]} ${match[2]} ${match[3]}`] : [];
  });
}

export const repositoryOf = (inventory: Inventory, name: string) =>
  inventory.repositories.find((repository) => repository.name === name);
