import type { FunctionReport } from '../../lambda/report/function.js';

/** A finished scheduled run: 3 manifests deleted, 1.5 MiB measured, disk 91 % → 64 %. */
export function succeededReport(overrides: Partial<FunctionReport> = {}): FunctionReport {
  return {
    requestId: 'req-1',
    trigger: { kind: 'schedule' },
    outcome: 'succeeded',
    headline: 'freed 1.50 MiB, deleted 3 manifests',
    registry: 'https://registry.internal:5000',
    startedAt: '2026-01-01T03:00:00.000Z',
    durationSeconds: 42.5,
    figures: {
      manifestsDeleted: 3,
      bytesReclaimed: 1_572_864,
      bytesEstimated: 1_572_864,
      diskUsedPercentBefore: 91,
      diskUsedPercentAfter: 64,
      tagsVerified: 12,
      integrityFailures: 0,
    },
    problems: [],
    notes: [],
    policy: 'configured',
    ...overrides,
  };
}
