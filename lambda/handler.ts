import { randomUUID } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import { parseEvent, requestFor } from './aws/events.js';
import { ConfigurationError, ENV, type FunctionConfig, readFunctionConfig } from './aws/function-config.js';
import { S3History } from './aws/history.js';
import { type RunnerTuning, SsmHostCommands } from './aws/host-commands.js';
import { S3RunLease } from './aws/lease.js';
import { EmfMetrics } from './aws/metrics.js';
import { SnsNotifier } from './aws/notify.js';
import { type CredentialSource, SecretCredentials } from './aws/secrets.js';
import { cleanup, outcomeOf } from './cleanup.js';
import { printable } from './domain/names.js';
import { usage } from './domain/usage.js';
import { describeError } from './error-message.js';
import { HostStorage } from './host/host-storage.js';
import { ARN } from './identifiers.js';
import type {
  HostAction,
  Metrics,
  Notifier,
  PendingCollections,
  Registry,
  RunArchive,
  RunDetails,
} from './ports.js';
import { Redactor } from './redact.js';
import { createRegistryClient, type RegistryClient } from './registry/client.js';
import { configurationFailure, type FunctionReport, functionReport } from './report/function.js';

/** Where a report goes once the engine made it. */
export interface FunctionOutputs {
  readonly archive?: RunArchive;
  readonly notifier?: Notifier;
  readonly metrics: Metrics;
}

/** What the handler uses of the Lambda context. */
export interface InvocationContext {
  readonly awsRequestId?: string;
  getRemainingTimeInMillis?(): number;
}

export interface HandlerDeps {
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  readonly ssm?: SSMClient;
  readonly s3?: S3Client;
  readonly sns?: SNSClient;
  readonly secretsManager?: SecretsManagerClient;
  /** Receives the metrics line of each run, redacted. @default process.stdout, bypassing the runtime's log prefix */
  readonly writeLine?: (line: string) => void;
  /** Receives each warning, redacted. @default console.warn */
  readonly warn?: (message: string) => void;
  readonly now?: () => Date;
  /** Time kept back from the function's remaining time for verification and reporting. @default SAFETY_MARGIN_MS */
  readonly safetyMarginMs?: number;
  readonly secretTtlMs?: number;
  /** How the SSM runner polls and tells time. */
  readonly ssmTuning?: RunnerTuning;
}

export type Handler = (event: unknown, context?: InvocationContext) => Promise<FunctionReport>;

const REPORT_MARGIN_MS = 10_000;
export const SAFETY_MARGIN_MS = 60_000;
/** The remaining time assumed without a Lambda context: the longest a function may run. */
const LAMBDA_MAX_MS = 15 * 60_000;

interface Ready {
  readonly config: FunctionConfig;
  readonly registry: (deadline: AbortSignal) => Promise<Registry>;
  readonly pending?: PendingCollections;
  readonly lease?: S3RunLease;
  readonly outputs: FunctionOutputs;
}

interface Misconfigured {
  readonly error: ConfigurationError;
  readonly outputs: FunctionOutputs;
}

/**
 * The Lambda handler over the given clients and environment. The configuration is read on the first invocation
 * and kept for the container's life, as are the clients and the registry client (rebuilt when the secret
 * changes). An event the function does not accept throws an EventError; everything else ends in a report.
 * Whatever leaves an invocation (log lines, the report, its saved copy, the notification, the metrics, a thrown
 * error) goes through that invocation's Redactor, which knows the secret and the tokens the client obtained.
 */
export function createHandler(deps: HandlerDeps = {}): Handler {
  const env = deps.env ?? process.env;
  const now = deps.now ?? (() => new Date());
  let redactor = new Redactor();
  const logWarning = deps.warn ?? ((message: string) => console.warn(message));
  const logLine = deps.writeLine ?? ((line: string) => process.stdout.write(`${line}\n`));
  const warn = (message: string) => logWarning(redactor.text(message));
  const writeLine = (line: string) => logLine(redactor.text(line));
  let ssm = deps.ssm;
  let s3 = deps.s3;
  let sns = deps.sns;
  let secretsManager = deps.secretsManager;
  const clients = {
    ssm: () => (ssm ??= new SSMClient({})),
    s3: () => (s3 ??= new S3Client({})),
    sns: () => (sns ??= new SNSClient({})),
    secretsManager: () => (secretsManager ??= new SecretsManagerClient({})),
  };
  let container: Ready | Misconfigured | undefined;

  const outputsFor = (
    namespace: string,
    topicArn: string | undefined,
    archive?: S3History,
  ): FunctionOutputs => {
    const metrics = new EmfMetrics({ namespace, writeLine, now: () => now().getTime() });
    const notifier = topicArn !== undefined ? new SnsNotifier({ sns: clients.sns(), topicArn }) : undefined;
    return {
      metrics: { publish: (report) => metrics.publish(redactor.value(report)) },
      ...(notifier ? { notifier: { notify: (report) => notifier.notify(redactor.value(report)) } } : {}),
      ...(archive
        ? {
            archive: {
              save: (report, details) =>
                archive.save(redactor.value(report), details && redactor.value(details)),
            },
          }
        : {}),
    };
  };

  const prepare = (): Ready | Misconfigured => {
    let config: FunctionConfig;
    try {
      config = readFunctionConfig(env);
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error;
      const topic = env[ENV.topicArn];
      return {
        error,
        outputs: outputsFor(
          env[ENV.metricsNamespace] || 'RegistryJanitor',
          topic !== undefined && ARN.test(topic) ? topic : undefined,
        ),
      };
    }
    const credentials: CredentialSource | undefined =
      config.registrySecretArn !== undefined
        ? new SecretCredentials({
            client: clients.secretsManager(),
            secretId: config.registrySecretArn,
            ...(deps.secretTtlMs !== undefined ? { ttlMs: deps.secretTtlMs } : {}),
          })
        : undefined;
    let client: { key: string; deadline: AbortSignal; registry: RegistryClient } | undefined;
    // One client per invocation: its deadline is the invocation's, so a slow registry still leaves time to report.
    const registry = async (deadline: AbortSignal): Promise<Registry> => {
      const found = credentials ? await credentials.credentials() : undefined;
      redactor.addCredentials(found);
      const key = found ? JSON.stringify(found) : '';
      if (client?.key !== key || client.deadline !== deadline) {
        client?.registry.close().catch(() => undefined);
        client = {
          key,
          deadline,
          registry: createRegistryClient({
            url: config.registryUrl,
            concurrency: config.concurrency,
            deadline,
            userAgent: 'registry-janitor',
            ...(found ? { credentials: found } : {}),
            onInvalidName: (kind, value) => warn(`skipped invalid ${kind} name ${printable(value)}`),
            onToken: (token) => redactor.add(token),
          }),
        };
      }
      return client.registry;
    };
    const history =
      config.bucket !== undefined ? new S3History({ s3: clients.s3(), bucket: config.bucket }) : undefined;
    const outputs = outputsFor(config.metricsNamespace, config.topicArn, history);
    const pending: PendingCollections | undefined = history && {
      read: () => history.read(),
      write: (record) => history.write(record && redactor.value(record)),
    };
    const lease =
      config.bucket !== undefined
        ? new S3RunLease({ s3: clients.s3(), bucket: config.bucket, now: () => now().getTime() })
        : undefined;
    return { config, registry, outputs, ...(pending ? { pending } : {}), ...(lease ? { lease } : {}) };
  };

  const invoke: Handler = async (event, context) => {
    const parsed = parseEvent(event);
    const requestId = context?.awsRequestId ?? randomUUID();
    const startedAt = now();
    container ??= prepare();
    if ('error' in container) {
      const report = configurationFailure({
        requestId,
        event: parsed,
        problems: container.error.problems,
        ...(env[ENV.registryUrl] ? { registry: env[ENV.registryUrl] } : {}),
        startedAt,
        finishedAt: now(),
      });
      return publishReport(container.outputs, report);
    }

    const { config } = container;
    const marginMs = deps.safetyMarginMs ?? SAFETY_MARGIN_MS;
    const budgetMs = (action: HostAction): number => {
      const left = (context?.getRemainingTimeInMillis?.() ?? LAMBDA_MAX_MS) - marginMs;
      return Math.max(0, action === 'collect' ? Math.min(config.gcWaitSeconds * 1000, left) : left);
    };
    const host = new SsmHostCommands({
      ssm: clients.ssm(),
      instanceId: config.instanceId,
      budgetMs,
      ...(config.ssmDocument !== undefined ? { documentName: config.ssmDocument } : {}),
      ...(config.bucket !== undefined ? { outputBucket: config.bucket, s3: clients.s3() } : {}),
      ...(config.executionTimeoutSeconds !== undefined
        ? { executionTimeoutSeconds: config.executionTimeoutSeconds }
        : {}),
      ...(deps.ssmTuning ? { tuning: deps.ssmTuning } : {}),
    });
    // Registry calls may use all but the few seconds that publishing the report needs.
    const remainingMs = (context?.getRemainingTimeInMillis?.() ?? LAMBDA_MAX_MS) - REPORT_MARGIN_MS;
    const deadline = AbortSignal.timeout(Math.max(1000, remainingMs));
    const { registry } = container;
    const { request, policy } = requestFor(parsed, config, {
      requestId,
      deadline: new Date(startedAt.getTime() + (context?.getRemainingTimeInMillis?.() ?? LAMBDA_MAX_MS)),
    });
    const done = await cleanup(
      {
        registry: () => registry(deadline),
        host,
        resume: host,
        storage: new HostStorage(host, config.host, { onInvalid: warn }),
        clock: { now },
        ...(container.pending ? { pending: container.pending } : {}),
        ...(container.lease ? { lease: container.lease } : {}),
      },
      request,
    );
    const report = functionReport(
      { requestId, trigger: parsed, registry: config.registryUrl, ...(policy ? { policy } : {}) },
      done,
    );
    const details: RunDetails | undefined =
      done.planned?.inventory !== undefined
        ? { plan: done.planned.plan, usage: usage(done.planned.inventory) }
        : undefined;
    return publishReport(container.outputs, report, details);
  };

  return async (event, context) => {
    redactor = new Redactor();
    try {
      return redactor.value(await invoke(event, context));
    } catch (error) {
      if (error instanceof Error) {
        error.message = redactor.text(error.message);
        if (error.stack !== undefined) error.stack = redactor.text(error.stack);
      }
      throw error;
    }
  };
}

export const handler: Handler = createHandler();

function withProblem(report: FunctionReport, problem: string): FunctionReport {
  const problems = [...report.problems, problem];
  return {
    ...report,
    problems,
    outcome: outcomeOf({ problems }),
    headline: report.outcome === 'failed' ? report.headline : `FAILED - ${problem}`,
  };
}

/**
 * Saves the report, sends the notification and publishes the metrics. A report that has nothing to say (an
 * alarm back to OK, another command's status change) only publishes metrics. A failed delivery fails the run.
 */
async function publishReport(
  outputs: FunctionOutputs,
  report: FunctionReport,
  details?: RunDetails,
): Promise<FunctionReport> {
  let final = report;
  if (report.outcome !== 'nothing to do') {
    if (outputs.archive) {
      try {
        const saved = await outputs.archive.save(final, details);
        final = {
          ...final,
          historyLocation: saved.report,
          ...(saved.page !== undefined ? { reportPage: saved.page } : {}),
        };
      } catch (error) {
        final = withProblem(final, `the report could not be saved: ${describeError(error)}`);
      }
    }
    if (outputs.notifier) {
      try {
        await outputs.notifier.notify(final);
      } catch (error) {
        final = withProblem(final, `the notification could not be sent: ${describeError(error)}`);
      }
    }
  }
  outputs.metrics.publish(final);
  return final;
}
