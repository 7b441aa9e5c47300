import { z } from 'zod';
import { buildPolicy, type Policy, PolicyError } from '../domain/policy.js';
import { duration, type Quantity, wholeNumber } from '../domain/quantity.js';
import { readHostParams } from '../host/script.js';
import { EXECUTION_TIMEOUT_SECONDS } from '../host/ssm-runner.js';
import { ARN, INSTANCE_ID, S3_BUCKET, SSM_DOCUMENT } from '../identifiers.js';
import type { HostParams } from '../ports.js';
import { registryOrigin, withoutCredentials } from '../registry/address.js';
import { CONCURRENCY } from '../registry/client.js';

/**
 * The function's environment variables: the contract between the CDK construct (which sets them) and the
 * handler (which reads them once per container). Names are exported so the construct uses the same ones; the
 * host script's settings have theirs in its parameter table (HOST_PARAMETERS).
 */
export const ENV = {
  registryUrl: 'REGISTRY_URL',
  registrySecretArn: 'REGISTRY_SECRET_ARN',
  instanceId: 'INSTANCE_ID',
  ssmDocument: 'SSM_DOCUMENT_NAME',
  bucket: 'OUTPUT_BUCKET',
  policy: 'POLICY_JSON',
  emergencyPolicy: 'EMERGENCY_POLICY_JSON',
  dryRun: 'DRY_RUN',
  repositories: 'REPOSITORIES',
  excludeRepositories: 'EXCLUDE_REPOSITORIES',
  topicArn: 'TOPIC_ARN',
  diskAlarmName: 'DISK_ALARM_NAME',
  metricsNamespace: 'METRICS_NAMESPACE',
  concurrency: 'CONCURRENCY',
  gcWaitSeconds: 'GC_WAIT_SECONDS',
  executionTimeoutSeconds: 'EXECUTION_TIMEOUT_SECONDS',
  maxDelete: 'MAX_DELETE',
} as const;

export interface FunctionConfig {
  readonly registryUrl: string;
  readonly registrySecretArn?: string;
  readonly instanceId: string;
  readonly ssmDocument?: string;
  /** Full SSM command output (`ssm/`) and run history (`runs/`). */
  readonly bucket?: string;
  readonly host: HostParams;
  readonly policy: Policy;
  /** A stricter policy for runs the disk alarm starts; the normal policy when unset. */
  readonly emergencyPolicy?: Policy;
  /** The policy as JSON, so an event can override single fields of its defaults. */
  readonly policyDocument: unknown;
  readonly dryRun: boolean;
  readonly repositories: readonly string[];
  readonly excludeRepositories: readonly string[];
  readonly topicArn?: string;
  readonly diskAlarmName?: string;
  readonly metricsNamespace: string;
  readonly concurrency: number;
  /** How long one invocation waits for garbage collection before leaving it to the status-change event. */
  readonly gcWaitSeconds: number;
  /** How long SSM lets the host script run; unset, the document's own execution timeout applies. */
  readonly executionTimeoutSeconds?: number;
  /** A run whose plan deletes more manifests deletes none. */
  readonly maxDelete?: number;
}

export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
  constructor(readonly problems: readonly string[]) {
    super(`the function is misconfigured:\n${problems.map((p) => `- ${p}`).join('\n')}`);
  }
}

function json(text: string | undefined, name: string, problems: string[]): unknown {
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    problems.push(`${name}: not valid JSON (${(error as Error).message})`);
    return undefined;
  }
}

const GC_WAIT = duration({ unit: 's', min: 10_000, max: 840_000, examples: ['600', '10m', '7m30s'] });
const EXECUTION_TIMEOUT = wholeNumber({
  min: EXECUTION_TIMEOUT_SECONDS.min,
  max: EXECUTION_TIMEOUT_SECONDS.max,
});

const globList = z.array(z.string().min(1).max(256)).max(100);

/** Reads and checks every variable at once; a ConfigurationError lists each problem with the variable's name. */
export function readFunctionConfig(env: NodeJS.ProcessEnv): FunctionConfig {
  const problems: string[] = [];
  const get = (name: string) => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const check = (name: string, pattern: RegExp, example: string): string | undefined => {
    const value = get(name);
    if (value !== undefined && !pattern.test(value)) {
      problems.push(`${name}: expected ${example}, got ${JSON.stringify(value.slice(0, 80))}`);
      return undefined;
    }
    return value;
  };

  const registryText = get(ENV.registryUrl);
  const registryUrl = registryText === undefined ? undefined : registryOrigin(registryText);
  const bare = registryText === undefined ? undefined : withoutCredentials(registryText);
  if (registryText === undefined)
    problems.push(`${ENV.registryUrl}: required, e.g. https://registry.internal:5000`);
  else if (bare !== undefined) {
    problems.push(
      `${ENV.registryUrl}: credentials do not belong in the address, got ${JSON.stringify(registryText)}: set ${bare} and keep the user name and password in the secret that ${ENV.registrySecretArn} names`,
    );
  } else if (registryUrl === undefined) {
    problems.push(
      `${ENV.registryUrl}: expected an http:// or https:// address with no path, got ${JSON.stringify(registryText)}`,
    );
  }
  const instanceId = check(ENV.instanceId, INSTANCE_ID, 'an EC2 instance id such as i-0123456789abcdef0');
  if (get(ENV.instanceId) === undefined)
    problems.push(`${ENV.instanceId}: required, the registry host's instance id`);
  const registrySecretArn = check(ENV.registrySecretArn, ARN, 'a Secrets Manager secret ARN');
  const ssmDocument = check(ENV.ssmDocument, SSM_DOCUMENT, 'an SSM document name');
  const bucket = check(ENV.bucket, S3_BUCKET, 'an S3 bucket name');
  const topicArn = check(ENV.topicArn, ARN, 'an SNS topic ARN');
  const diskAlarmName = get(ENV.diskAlarmName);

  const host = readHostParams('variable', (setting) =>
    check(setting.variable, setting.pattern, setting.description),
  );

  const policyDocument = json(get(ENV.policy), ENV.policy, problems);
  const emergencyDocument = json(get(ENV.emergencyPolicy), ENV.emergencyPolicy, problems);
  let policy: Policy | undefined;
  let emergencyPolicy: Policy | undefined;
  if (get(ENV.policy) === undefined) {
    problems.push(`${ENV.policy}: required, the retention policy, e.g. {"defaults":{"keepLast":10}}`);
  } else if (policyDocument !== undefined) {
    try {
      policy = buildPolicy(policyDocument, {}, ENV.policy);
    } catch (error) {
      if (error instanceof PolicyError) problems.push(...error.problems);
      else throw error;
    }
  }
  if (emergencyDocument !== undefined) {
    try {
      emergencyPolicy = buildPolicy(emergencyDocument, {}, ENV.emergencyPolicy);
    } catch (error) {
      if (error instanceof PolicyError) problems.push(...error.problems);
      else throw error;
    }
  }

  const dryRunText = get(ENV.dryRun) ?? 'false';
  if (dryRunText !== 'true' && dryRunText !== 'false') {
    problems.push(`${ENV.dryRun}: expected true or false, got ${JSON.stringify(dryRunText)}`);
  }
  const globs = (name: string): string[] => {
    const parsed = globList.safeParse(json(get(name), name, problems) ?? []);
    if (!parsed.success) {
      problems.push(`${name}: expected a JSON array of repository globs, e.g. ["web/*"]`);
      return [];
    }
    return parsed.data;
  };
  const repositories = globs(ENV.repositories);
  const excludeRepositories = globs(ENV.excludeRepositories);
  const number = (name: string, fallback: number, quantity: Quantity): number => {
    const text = get(name);
    if (text === undefined) return fallback;
    const reading = quantity.read(text);
    if (reading.ok) return reading.value;
    problems.push(`${name}: ${reading.problem}`);
    return fallback;
  };
  const concurrency = number(ENV.concurrency, 8, CONCURRENCY);
  const gcWaitSeconds = Math.round(number(ENV.gcWaitSeconds, 600_000, GC_WAIT) / 1000);
  const executionTimeoutSeconds =
    get(ENV.executionTimeoutSeconds) === undefined
      ? undefined
      : number(ENV.executionTimeoutSeconds, EXECUTION_TIMEOUT_SECONDS.default, EXECUTION_TIMEOUT);
  const maxDelete = get(ENV.maxDelete) === undefined ? undefined : number(ENV.maxDelete, 0, wholeNumber());
  const metricsNamespace = get(ENV.metricsNamespace) ?? 'RegistryJanitor';

  if (problems.length > 0 || !registryUrl || !instanceId || !policy) throw new ConfigurationError(problems);
  return {
    registryUrl,
    instanceId,
    host,
    policy,
    policyDocument: policyDocument ?? {},
    dryRun: dryRunText === 'true',
    repositories,
    excludeRepositories,
    metricsNamespace,
    concurrency,
    gcWaitSeconds,
    ...(registrySecretArn ? { registrySecretArn } : {}),
    ...(ssmDocument ? { ssmDocument } : {}),
    ...(bucket ? { bucket } : {}),
    ...(emergencyPolicy ? { emergencyPolicy } : {}),
    ...(topicArn ? { topicArn } : {}),
    ...(diskAlarmName ? { diskAlarmName } : {}),
    ...(maxDelete !== undefined ? { maxDelete } : {}),
    ...(executionTimeoutSeconds !== undefined ? { executionTimeoutSeconds } : {}),
  };
}
