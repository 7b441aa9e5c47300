import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Construct } from 'constructs';
import { distance } from '../lambda/domain/edit-distance.js';
import { buildPolicy, PolicyError } from '../lambda/domain/policy.js';
import { decimalNumber } from '../lambda/domain/quantity.js';
import { hostSettings } from '../lambda/host/script.js';
import { EXECUTION_TIMEOUT_SECONDS } from '../lambda/host/ssm-runner.js';
import { INSTANCE_ID } from '../lambda/identifiers.js';
import { redactText } from '../lambda/redact.js';
import { registryOrigin } from '../lambda/registry/address.js';

/** The context keys the stack reads (cdk.json, or `-c key=value`), beside the host settings' (CONTEXT_KEYS). */
export const CONTEXT = {
  stackName: 'stackName',
  registryUrl: 'registryUrl',
  instanceId: 'instanceId',
  instanceRoleArn: 'instanceRoleArn',
  registrySecret: 'registrySecret',
  registrySecretKmsKeyArn: 'registrySecretKmsKeyArn',
  registryCaPem: 'registryCaPem',
  schedule: 'schedule',
  timeZone: 'timeZone',
  diskThresholdPercent: 'diskThresholdPercent',
  diskPath: 'diskPath',
  diskDevice: 'diskDevice',
  diskFstype: 'diskFstype',
  notificationEmail: 'notificationEmail',
  vpcId: 'vpcId',
  subnetIds: 'subnetIds',
  securityGroupId: 'securityGroupId',
  policy: 'policy',
  emergencyPolicy: 'emergencyPolicy',
  dryRun: 'dryRun',
  maxDelete: 'maxDelete',
  logRetentionDays: 'logRetentionDays',
  reservedConcurrency: 'reservedConcurrency',
  executionTimeoutSeconds: 'executionTimeoutSeconds',
} as const;

export type ContextKey = (typeof CONTEXT)[keyof typeof CONTEXT];

/** Every key the stack reads: CONTEXT's, and the host script's settings' from its parameter table. */
export const CONTEXT_KEYS: readonly string[] = [
  ...Object.values(CONTEXT),
  ...hostSettings('context').map((setting) => setting.context),
];

/** The values cdk.json ships with for the keys every deployment must set. */
export const PLACEHOLDERS: Readonly<Partial<Record<ContextKey, string>>> = {
  registryUrl: 'https://registry.example.internal:5000',
  instanceId: 'i-0123456789abcdef0',
};

/** Context values the stack cannot use; every problem is listed with its key. */
export class ContextError extends Error {
  override readonly name = 'ContextError';
  constructor(readonly problems: readonly string[]) {
    super(
      redactText(
        `the cdk.json context is not usable:\n${problems.map((p) => `- ${p}`).join('\n')}\nSet the values in cdk.json or with -c key=value.`,
      ),
    );
  }
}

const CONTEXT_NUMBER = decimalNumber();
const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const INSTANCE_PROFILE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:instance-profile\//;
const SECRET_NAME_CHARACTERS = '[A-Za-z0-9/_+=.@-]';
const SECRET_NAME = new RegExp(`^${SECRET_NAME_CHARACTERS}{1,512}$`);
const SECRET_ARN = new RegExp(
  `^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\\d{12}:secret:${SECRET_NAME_CHARACTERS}{1,512}$`,
);
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]{1,128}$/;
const KMS_ALIAS_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:alias\//;
const VPC_ID = /^vpc-[0-9a-f]{8,17}$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;
const SECURITY_GROUP_ID = /^sg-[0-9a-f]{8,17}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const CRON_FIELD = /^[0-9A-Za-z*?,/#-]+$/;
const METRIC_DIMENSION = /^[^'\\]{1,255}$/;
const IANA_ZONE_NAME = /^[A-Z][A-Za-z0-9_+-]*(\/[A-Z0-9][A-Za-z0-9_+-]*){0,2}$/;
const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';
const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];
const TIME_ZONES = new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/UTC']);

/** What a key accepts: a pattern, or a check for what a pattern cannot say. */
type Accepts = RegExp | ((value: string) => boolean);
const test = (accepts: Accepts, value: string): boolean =>
  typeof accepts === 'function' ? accepts(value) : accepts.test(value);

const got = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
};

/** The stack's name from the `stackName` key, or the default with the problem when the key's value is unusable. */
export function stackNameFromContext(
  scope: Construct,
  fallback: string,
): { readonly stackName: string; readonly problem?: string } {
  const value: unknown = scope.node.tryGetContext(CONTEXT.stackName);
  if (value === undefined || value === null || value === '') return { stackName: fallback };
  if (typeof value === 'string' && STACK_NAME.test(value)) return { stackName: value };
  return {
    stackName: fallback,
    problem: `${CONTEXT.stackName}: expected a CloudFormation stack name (a letter, then up to 127 letters, digits and '-'), got ${got(value)}`,
  };
}

/** Why a time zone is not one EventBridge Scheduler takes: ICU's IANA names, their aliases (Asia/Kolkata), UTC. */
function timeZoneProblem(value: string): string | undefined {
  if (TIME_ZONES.has(value)) return undefined;
  let resolved: string | undefined;
  try {
    resolved = new Intl.DateTimeFormat('en', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    resolved = undefined;
  }
  if (resolved !== undefined && IANA_ZONE_NAME.test(value)) return undefined;
  const near = [...TIME_ZONES]
    .map((zone) => ({ zone, edits: distance(zone.toLowerCase(), value.toLowerCase()) }))
    .sort((a, b) => a.edits - b.edits)[0];
  const suggestion =
    resolved !== undefined ? resolved : near !== undefined && near.edits <= 3 ? near.zone : undefined;
  return `${CONTEXT.timeZone}: expected an IANA time zone such as Europe/Berlin, America/New_York or UTC, got ${got(value)}${suggestion !== undefined ? ` (did you mean ${suggestion}?)` : ''}`;
}

/** Why an expression is not an EventBridge Scheduler cron: six fields, `?` in exactly one of the two day fields. */
function cronProblem(value: string): string | undefined {
  const fields = /^cron\((.*)\)$/.exec(value.trim())?.[1]?.trim().split(/\s+/);
  if (
    fields !== undefined &&
    fields.length === 6 &&
    fields.every((field) => CRON_FIELD.test(field)) &&
    (fields[2] === '?') !== (fields[4] === '?')
  ) {
    return undefined;
  }
  return `${CONTEXT.schedule}: expected an EventBridge Scheduler cron expression of six fields (minutes hours day-of-month month day-of-week year, with ? in exactly one of the two day fields) such as cron(0 3 * * ? *), got ${got(value)}`;
}

/**
 * Reads context values: empty strings and nulls count as unset; `-c` hands every value over as a string, so
 * strings are also read as numbers, booleans, JSON or comma-separated lists. Each problem names its key, the
 * value received and what is accepted.
 */
class ContextReader {
  readonly problems: string[] = [];

  constructor(private readonly scope: Construct) {}

  private raw(key: string): unknown {
    const value: unknown = this.scope.node.tryGetContext(key);
    return value === null || (typeof value === 'string' && value.trim() === '') ? undefined : value;
  }

  private has(key: string): boolean {
    return this.problems.some((problem) => problem.startsWith(`${key}:`));
  }

  expected(key: string, accepted: string, value: unknown): undefined {
    this.problems.push(`${key}: expected ${accepted}, got ${got(value)}`);
    return undefined;
  }

  string(key: string): string | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value === 'string') return value.trim();
    return this.expected(key, 'a string', value);
  }

  /** A string that `accepts`, described by `accepted`. */
  matching(key: string, accepts: Accepts, accepted: string): string | undefined {
    const value = this.string(key);
    if (value === undefined || test(accepts, value)) return value;
    return this.expected(key, accepted, value);
  }

  /** A key every deployment sets: refused when empty, or when it still holds cdk.json's placeholder. */
  required(key: ContextKey, what: string, accepts: Accepts, accepted: string): string | undefined {
    const value = this.string(key);
    if (value === undefined) {
      if (!this.has(key)) this.problems.push(`${key}: required: ${what}, e.g. ${accepted}`);
      return undefined;
    }
    if (value === PLACEHOLDERS[key]) {
      this.problems.push(
        `${key}: ${got(value)} is the placeholder cdk.json ships with: set ${what}, e.g. ${accepted}`,
      );
      return undefined;
    }
    if (!test(accepts, value)) return this.expected(key, `${what}, e.g. ${accepted}`, value);
    return value;
  }

  number(key: ContextKey): number | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    const reading = CONTEXT_NUMBER.read(value);
    return reading.ok ? reading.value : this.expected(key, 'a number', value);
  }

  wholeNumber(key: ContextKey, min: number, max: number, accepted: string): number | undefined {
    const value = this.number(key);
    if (value === undefined || (Number.isInteger(value) && value >= min && value <= max)) return value;
    return this.expected(key, accepted, this.raw(key));
  }

  boolean(key: ContextKey): boolean | undefined {
    const value = this.raw(key);
    if (value === undefined || typeof value === 'boolean') return value;
    if (value === 'true' || value === 'false') return value === 'true';
    return this.expected(key, 'true or false', value);
  }

  /** A list given as a JSON array (cdk.json, or `-c key='["a","b"]'`) or as a comma-separated string. */
  list(key: ContextKey, item: RegExp, accepted: string): string[] | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    let items: unknown = value;
    if (typeof value === 'string') {
      const text = value.trim();
      if (text.startsWith('[')) {
        try {
          items = JSON.parse(text);
        } catch (error) {
          this.problems.push(
            `${key}: not a valid JSON array (${(error as Error).message}), got ${got(value)}`,
          );
          return undefined;
        }
      } else {
        items = text.split(',').map((part) => part.trim());
      }
    }
    if (!Array.isArray(items)) {
      return this.expected(key, `a JSON array or a comma-separated list of ${accepted}`, value);
    }
    const bad = items.filter((entry) => typeof entry !== 'string' || !item.test(entry));
    if (bad.length > 0) {
      this.problems.push(`${key}: expected each item to be ${accepted}, got ${bad.map(got).join(', ')}`);
      return undefined;
    }
    return items.length > 0 ? (items as string[]) : undefined;
  }

  /** A JSON object, given as an object (cdk.json) or as JSON text (-c). */
  object(key: ContextKey): Record<string, unknown> | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    let parsed: unknown = value;
    if (typeof value === 'string') {
      try {
        parsed = JSON.parse(value);
      } catch (error) {
        this.problems.push(`${key}: not valid JSON (${(error as Error).message}), got ${got(value)}`);
        return undefined;
      }
    }
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
    return this.expected(key, 'a JSON object', value);
  }

  /** A retention policy, checked as the function will check it. */
  policy(key: ContextKey, required: boolean): Record<string, unknown> | undefined {
    const value = this.object(key);
    if (value === undefined) {
      if (required && !this.has(key)) {
        this.problems.push(
          `${key}: required: the retention policy as in a policy file (policy.schema.json), e.g. {"defaults": {"keepLast": 10, "keepTags": ["^latest$"]}}`,
        );
      }
      return undefined;
    }
    try {
      buildPolicy(value, {}, key);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      for (const problem of error.problems) {
        this.problems.push(
          problem.startsWith('no retention rule')
            ? `${key}: no retention rule: give "defaults" a keepLast, keepDays or keepTags, e.g. {"defaults": {"keepLast": 10}}; keepLast 0 keeps nothing by count on purpose`
            : problem.startsWith(`${key}:`)
              ? problem
              : `${key}: ${problem}`,
        );
      }
      return undefined;
    }
    return value;
  }

  /** One of CloudWatch Logs' retention periods, in days. */
  retentionDays(key: ContextKey): number | undefined {
    const value = this.number(key);
    if (value === undefined || RETENTION_DAYS.includes(value)) return value;
    return this.expected(
      key,
      `one of CloudWatch Logs' retention periods in days (${RETENTION_DAYS.join(', ')})`,
      this.raw(key),
    );
  }

  timeZone(key: ContextKey): string | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const problem = timeZoneProblem(value);
    if (problem === undefined) return value;
    this.problems.push(problem);
    return undefined;
  }

  cron(key: ContextKey): string | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const problem = cronProblem(value);
    if (problem === undefined) return value;
    this.problems.push(problem);
    return undefined;
  }

  /** The path of a PEM file, relative to the directory cdk runs in; answers the absolute path. */
  pemFile(key: ContextKey): string | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const path = resolve(value);
    let text: string;
    try {
      if (!statSync(path).isFile()) {
        this.problems.push(
          `${key}: ${got(value)} is not a file: expected the path of a PEM file of CA certificates`,
        );
        return undefined;
      }
      text = readFileSync(path, 'utf8');
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      this.problems.push(
        `${key}: ${got(value)} cannot be read (${typeof code === 'string' ? code : (error as Error).message}): expected the path of a PEM file of CA certificates, relative to the directory cdk runs in`,
      );
      return undefined;
    }
    if (!text.includes(PEM_CERTIFICATE)) {
      this.problems.push(
        `${key}: ${got(value)} holds no PEM certificate (${PEM_CERTIFICATE}): expected the CA certificates that sign the registry's certificate`,
      );
      return undefined;
    }
    return path;
  }

  /** Keys that look like a misspelt key the stack reads: a value set there would be ignored silently. */
  misspeltKeys(): void {
    const known = CONTEXT_KEYS;
    for (const key of Object.keys(this.scope.node.getAllContext())) {
      if (known.includes(key) || key.includes(':') || key.startsWith('@')) continue;
      const near = known
        .map((candidate) => ({ candidate, edits: distance(candidate.toLowerCase(), key.toLowerCase()) }))
        .sort((a, b) => a.edits - b.edits)[0];
      if (near !== undefined && near.edits <= Math.min(3, Math.floor(key.length / 3))) {
        this.problems.push(
          `${key}: not a key registry-janitor reads, so its value would be ignored: did you mean ${near.candidate}?`,
        );
      }
    }
  }
}

/** The deployment as the context describes it, every value checked. */
export interface StackSettings {
  readonly registryUrl: string;
  readonly instanceId: string;
  readonly instanceRoleArn: string;
  readonly registrySecret?: string;
  readonly registrySecretKmsKeyArn?: string;
  /** The absolute path of the PEM file. */
  readonly registryCaPem?: string;
  readonly schedule?: string;
  readonly timeZone?: string;
  readonly diskThresholdPercent?: number;
  readonly diskPath: string;
  readonly diskDevice?: string;
  readonly diskFstype?: string;
  readonly notificationEmail?: string;
  readonly network?: {
    readonly vpcId: string;
    readonly subnetIds: readonly string[];
    readonly securityGroupId?: string;
  };
  readonly policy: Record<string, unknown>;
  readonly emergencyPolicy?: Record<string, unknown>;
  /** The construct's props for the host script's settings, by prop name, each checked as the script checks it. */
  readonly hostProps: Readonly<Record<string, string>>;
  readonly dryRun?: boolean;
  readonly maxDelete?: number;
  readonly logRetentionDays?: number;
  readonly reservedConcurrency?: number;
  readonly executionTimeoutSeconds?: number;
}

const ROLE_EXAMPLE = 'arn:aws:iam::123456789012:role/registry-host';

/** Reads every key the stack uses; throws a ContextError that lists every problem at once. */
export function readSettings(scope: Construct): StackSettings {
  const context = new ContextReader(scope);
  const given = (key: ContextKey) => {
    const value: unknown = scope.node.tryGetContext(key);
    return !(
      value === undefined ||
      value === null ||
      (typeof value === 'string' && value.trim() === '') ||
      (Array.isArray(value) && value.length === 0)
    );
  };
  const registryUrl = context.required(
    CONTEXT.registryUrl,
    'the address the function reaches the registry at: http:// or https://, a host and a port, no path',
    (value) => registryOrigin(value) !== undefined,
    'https://registry.internal:5000',
  );
  const instanceId = context.required(
    CONTEXT.instanceId,
    'the id of the EC2 instance that runs the registry container',
    INSTANCE_ID,
    'i-0abc1234def567890',
  );
  const roleText: unknown = scope.node.tryGetContext(CONTEXT.instanceRoleArn);
  const instanceRoleArn = context.required(
    CONTEXT.instanceRoleArn,
    "the ARN of the registry instance's IAM role (the role in its instance profile), which is allowed to write command output to the stack's bucket",
    ROLE_ARN,
    typeof roleText === 'string' && INSTANCE_PROFILE_ARN.test(roleText.trim())
      ? `${ROLE_EXAMPLE} (an instance profile's ARN names no role: give the ARN of the role in the profile)`
      : ROLE_EXAMPLE,
  );
  const registrySecret = context.matching(
    CONTEXT.registrySecret,
    (value) => (value.startsWith('arn:') ? SECRET_ARN.test(value) : SECRET_NAME.test(value)),
    "a Secrets Manager secret's name (1 to 512 letters, digits and / _ + = . @ -) or its ARN",
  );
  const kmsKeyText = context.string(CONTEXT.registrySecretKmsKeyArn);
  let registrySecretKmsKeyArn: string | undefined;
  if (kmsKeyText !== undefined) {
    if (KMS_KEY_ARN.test(kmsKeyText)) registrySecretKmsKeyArn = kmsKeyText;
    else {
      context.expected(
        CONTEXT.registrySecretKmsKeyArn,
        `the ARN of the customer-managed KMS key the secret is encrypted with, such as arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab${KMS_ALIAS_ARN.test(kmsKeyText) ? " (an alias's ARN does not grant the key it names: give the key's ARN, as aws kms describe-key --key-id <alias> shows)" : ''}`,
        kmsKeyText,
      );
    }
    if (!given(CONTEXT.registrySecret)) {
      context.problems.push(
        `${CONTEXT.registrySecretKmsKeyArn}: only used with ${CONTEXT.registrySecret}: set the secret it encrypts, or leave it empty`,
      );
    }
  }
  const registryCaPem = context.pemFile(CONTEXT.registryCaPem);
  const schedule = context.cron(CONTEXT.schedule);
  const timeZone = context.timeZone(CONTEXT.timeZone);
  const diskThresholdPercent = context.number(CONTEXT.diskThresholdPercent);
  if (diskThresholdPercent !== undefined && !(diskThresholdPercent > 0 && diskThresholdPercent < 100)) {
    context.expected(
      CONTEXT.diskThresholdPercent,
      'a percentage above 0 and below 100, e.g. 85',
      scope.node.tryGetContext(CONTEXT.diskThresholdPercent),
    );
  }
  const dimension = "1 to 255 characters without ' or \\";
  const diskPath = context.matching(
    CONTEXT.diskPath,
    (value) => value.startsWith('/') && METRIC_DIMENSION.test(value),
    `the mount point of the registry's volume as the CloudWatch agent reports it (its path dimension), an absolute path of ${dimension}, e.g. /srv/registry`,
  );
  const diskDevice = context.matching(
    CONTEXT.diskDevice,
    METRIC_DIMENSION,
    `the CloudWatch agent's device dimension, ${dimension}, e.g. nvme1n1`,
  );
  const diskFstype = context.matching(
    CONTEXT.diskFstype,
    METRIC_DIMENSION,
    `the CloudWatch agent's fstype dimension, ${dimension}, e.g. xfs`,
  );
  const notificationEmail = context.matching(
    CONTEXT.notificationEmail,
    EMAIL,
    'an email address such as ops@example.com',
  );
  const vpcId = context.matching(CONTEXT.vpcId, VPC_ID, 'a VPC id such as vpc-0123456789abcdef0');
  const subnetIds = context.list(
    CONTEXT.subnetIds,
    SUBNET_ID,
    'a subnet id such as subnet-0123456789abcdef0',
  );
  const securityGroupId = context.matching(
    CONTEXT.securityGroupId,
    SECURITY_GROUP_ID,
    'a security group id such as sg-0123456789abcdef0',
  );
  if (given(CONTEXT.vpcId) !== given(CONTEXT.subnetIds)) {
    context.problems.push(
      `${CONTEXT.vpcId} and ${CONTEXT.subnetIds}: give both to run the function in a VPC, or neither`,
    );
  }
  if (given(CONTEXT.securityGroupId) && !given(CONTEXT.vpcId)) {
    context.problems.push(
      `${CONTEXT.securityGroupId}: only used with ${CONTEXT.vpcId} and ${CONTEXT.subnetIds}`,
    );
  }
  const policy = context.policy(CONTEXT.policy, true);
  const emergencyPolicy = context.policy(CONTEXT.emergencyPolicy, false);
  const hostProps: Record<string, string> = {};
  for (const setting of hostSettings('context')) {
    const value = context.matching(setting.context, setting.pattern, setting.description);
    if (value !== undefined && setting.prop !== undefined) hostProps[setting.prop.name] = value;
  }
  const dryRun = context.boolean(CONTEXT.dryRun);
  const maxDelete = context.wholeNumber(
    CONTEXT.maxDelete,
    0,
    Number.MAX_SAFE_INTEGER,
    'a whole number ≥ 0: the most manifests one run may delete (empty for no cap)',
  );
  const logRetentionDays = context.retentionDays(CONTEXT.logRetentionDays);
  const reservedConcurrency = context.wholeNumber(
    CONTEXT.reservedConcurrency,
    0,
    1000,
    '0 (no reservation: runs that would overlap skip themselves) or a whole number of executions to reserve, e.g. 1',
  );
  const executionTimeoutSeconds = context.wholeNumber(
    CONTEXT.executionTimeoutSeconds,
    EXECUTION_TIMEOUT_SECONDS.min,
    EXECUTION_TIMEOUT_SECONDS.max,
    `a whole number of seconds from ${EXECUTION_TIMEOUT_SECONDS.min} to ${EXECUTION_TIMEOUT_SECONDS.max}: how long SSM lets the host script run, e.g. ${EXECUTION_TIMEOUT_SECONDS.default}`,
  );
  context.misspeltKeys();

  if (
    context.problems.length > 0 ||
    registryUrl === undefined ||
    instanceId === undefined ||
    instanceRoleArn === undefined ||
    policy === undefined
  ) {
    throw new ContextError(context.problems);
  }
  return {
    registryUrl,
    instanceId,
    instanceRoleArn,
    registrySecret,
    registrySecretKmsKeyArn,
    registryCaPem,
    schedule,
    timeZone,
    diskThresholdPercent,
    diskPath: diskPath ?? '/',
    diskDevice,
    diskFstype,
    notificationEmail,
    network:
      vpcId !== undefined && subnetIds !== undefined ? { vpcId, subnetIds, securityGroupId } : undefined,
    policy,
    emergencyPolicy,
    hostProps,
    dryRun,
    maxDelete,
    logRetentionDays,
    reservedConcurrency,
    executionTimeoutSeconds,
  };
}
