import type { Metrics } from '../ports.js';
import type { FunctionReport } from '../report/function.js';

/** Metric names, shared with the stack's alarms and dashboard. */
export const METRICS = {
  manifestsDeleted: 'ManifestsDeleted',
  bytesReclaimed: 'BytesReclaimed',
  diskUsedPercentBefore: 'DiskUsedPercentBefore',
  diskUsedPercentAfter: 'DiskUsedPercentAfter',
  integrityFailures: 'IntegrityFailures',
  runFailed: 'RunFailed',
  runSucceeded: 'RunSucceeded',
  durationSeconds: 'DurationSeconds',
} as const;

export type MetricKey = keyof typeof METRICS;

export const METRIC_UNITS: Readonly<Record<MetricKey, 'Count' | 'Bytes' | 'Percent' | 'Seconds'>> = {
  manifestsDeleted: 'Count',
  bytesReclaimed: 'Bytes',
  diskUsedPercentBefore: 'Percent',
  diskUsedPercentAfter: 'Percent',
  integrityFailures: 'Count',
  runFailed: 'Count',
  runSucceeded: 'Count',
  durationSeconds: 'Seconds',
};

/** The one dimension every metric carries; its value is registryDimension(REGISTRY_URL). */
export const REGISTRY_DIMENSION = 'Registry';

/** The Registry dimension's value for a registry address: its host and port, as the stack computes it too. */
export function registryDimension(registryUrl: string | undefined): string {
  if (registryUrl === undefined) return 'unknown';
  try {
    return new URL(registryUrl).host || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The metric values of a run; a value the run did not measure is absent. */
export function metricValues(report: FunctionReport): Partial<Record<MetricKey, number>> {
  const f = report.figures;
  const values: Partial<Record<MetricKey, number>> = {
    manifestsDeleted: f.manifestsDeleted,
    bytesReclaimed: f.bytesReclaimed ?? 0,
    integrityFailures: f.integrityFailures,
    runFailed: report.outcome === 'failed' ? 1 : 0,
    runSucceeded: report.outcome === 'succeeded' ? 1 : 0,
    durationSeconds: report.durationSeconds,
  };
  if (f.diskUsedPercentBefore !== undefined) values.diskUsedPercentBefore = f.diskUsedPercentBefore;
  if (f.diskUsedPercentAfter !== undefined) values.diskUsedPercentAfter = f.diskUsedPercentAfter;
  return values;
}

/**
 * One CloudWatch embedded metric format document for a run, with the run's outcome beside the metrics. It is
 * stamped with the time it is published, not the run's start: a run ends up to 15 minutes after it started, and
 * a point stamped that far back can miss the evaluation of a 5-minute alarm.
 */
export function emfDocument(
  namespace: string,
  report: FunctionReport,
  publishedAt: number,
): Record<string, unknown> {
  const values = metricValues(report);
  const keys = (Object.keys(METRICS) as MetricKey[]).filter((key) => values[key] !== undefined);
  return {
    _aws: {
      Timestamp: publishedAt,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [[REGISTRY_DIMENSION]],
          Metrics: keys.map((key) => ({ Name: METRICS[key], Unit: METRIC_UNITS[key] })),
        },
      ],
    },
    [REGISTRY_DIMENSION]: registryDimension(report.registry),
    ...Object.fromEntries(keys.map((key) => [METRICS[key], values[key]])),
    requestId: report.requestId,
    trigger: report.trigger.kind,
    outcome: report.outcome,
    headline: report.headline,
    ...(report.historyLocation !== undefined ? { historyLocation: report.historyLocation } : {}),
  };
}

export interface EmfMetricsOptions {
  readonly namespace: string;
  /** Receives one line of JSON per run; Lambda sends stdout to CloudWatch Logs, which extracts the metrics. */
  readonly writeLine: (line: string) => void;
  /** Milliseconds since the epoch, the points' timestamp. @default Date.now */
  readonly now?: () => number;
}

/** Metrics as one embedded-metric-format line per run: no API call, no extra latency, no extra permission. */
export class EmfMetrics implements Metrics {
  constructor(private readonly options: EmfMetricsOptions) {}

  publish(report: FunctionReport): void {
    const publishedAt = (this.options.now ?? Date.now)();
    this.options.writeLine(JSON.stringify(emfDocument(this.options.namespace, report, publishedAt)));
  }
}
