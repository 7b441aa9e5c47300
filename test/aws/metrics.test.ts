import { describe, expect, it } from 'vitest';
import { EmfMetrics, METRICS, registryDimension } from '../../lambda/aws/metrics.js';
import { succeededReport } from './report-fixtures.js';

describe('metrics in CloudWatch embedded metric format', () => {
  it('writes one JSON line per run: every metric declared with its unit, the values at the top level', () => {
    const lines: string[] = [];
    const metrics = new EmfMetrics({
      namespace: 'RegistryJanitor',
      writeLine: (line) => lines.push(line),
      now: () => Date.parse('2026-01-01T03:00:42.500Z'),
    });

    metrics.publish(succeededReport({ historyLocation: 's3://bucket/runs/a.json' }));

    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
    expect(JSON.parse(lines[0] ?? '')).toEqual({
      _aws: {
        Timestamp: Date.parse('2026-01-01T03:00:42.500Z'),
        CloudWatchMetrics: [
          {
            Namespace: 'RegistryJanitor',
            Dimensions: [['Registry']],
            Metrics: [
              { Name: 'ManifestsDeleted', Unit: 'Count' },
              { Name: 'BytesReclaimed', Unit: 'Bytes' },
              { Name: 'DiskUsedPercentBefore', Unit: 'Percent' },
              { Name: 'DiskUsedPercentAfter', Unit: 'Percent' },
              { Name: 'IntegrityFailures', Unit: 'Count' },
              { Name: 'RunFailed', Unit: 'Count' },
              { Name: 'RunSucceeded', Unit: 'Count' },
              { Name: 'DurationSeconds', Unit: 'Seconds' },
            ],
          },
        ],
      },
      Registry: 'registry.internal:5000',
      ManifestsDeleted: 3,
      BytesReclaimed: 1_572_864,
      DiskUsedPercentBefore: 91,
      DiskUsedPercentAfter: 64,
      IntegrityFailures: 0,
      RunFailed: 0,
      RunSucceeded: 1,
      DurationSeconds: 42.5,
      requestId: 'req-1',
      trigger: 'schedule',
      outcome: 'succeeded',
      headline: 'freed 1.50 MiB, deleted 3 manifests',
      historyLocation: 's3://bucket/runs/a.json',
    });
  });

  it('stamps the points with the time they are published, so a long run still lands in the current alarm period', () => {
    const lines: string[] = [];
    const startedAt = '2026-01-01T03:00:00.000Z';
    const publishedAt = Date.parse('2026-01-01T03:14:30.000Z');
    const metrics = new EmfMetrics({
      namespace: 'N',
      writeLine: (line) => lines.push(line),
      now: () => publishedAt,
    });

    metrics.publish(succeededReport({ startedAt, durationSeconds: 870, outcome: 'failed' }));

    const document = JSON.parse(lines[0] ?? '') as { _aws: { Timestamp: number } };
    expect(document._aws.Timestamp).toBe(publishedAt);
    expect(document._aws.Timestamp).not.toBe(Date.parse(startedAt));
    expect(document).toMatchObject({ [METRICS.runFailed]: 1 });
  });

  it('leaves out what the run did not measure, and counts a failed run', () => {
    const lines: string[] = [];
    const report = succeededReport({
      outcome: 'failed',
      figures: { manifestsDeleted: 0, tagsVerified: 4, integrityFailures: 2 },
    });

    new EmfMetrics({ namespace: 'N', writeLine: (line) => lines.push(line) }).publish(report);

    const document = JSON.parse(lines[0] ?? '') as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: { Metrics: { Name: string }[] }[] };
    };
    const declared = document._aws.CloudWatchMetrics[0]?.Metrics.map((m) => m.Name);
    expect(declared).not.toContain(METRICS.diskUsedPercentBefore);
    expect(document).not.toHaveProperty(METRICS.diskUsedPercentAfter);
    expect(document).toMatchObject({
      [METRICS.bytesReclaimed]: 0,
      [METRICS.integrityFailures]: 2,
      [METRICS.runFailed]: 1,
      [METRICS.runSucceeded]: 0,
    });
  });

  it.each([
    ['https://registry.internal:5000', 'registry.internal:5000'],
    ['http://10.0.0.5', '10.0.0.5'],
    ['not a url', 'unknown'],
    [undefined, 'unknown'],
  ])('names the registry %s as %s', (url, dimension) => {
    expect(registryDimension(url)).toBe(dimension);
  });
});
