import { parseArgs } from 'node:util';
import { INSTANCE_ID, REGION, S3_BUCKET, SSM_DOCUMENT } from './aws/identifiers.js';
import { buildPolicy, type Policy, PolicyError, parseDuration, type RuleInput } from './domain/policy.js';
import { HostParameterError, hostEnvironment } from './host/script.js';
import type { HostParams } from './ports.js';

export const COMMANDS = ['plan', 'clean', 'verify'] as const;
export type Command = (typeof COMMANDS)[number];

export type CredentialSource =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'flags' | 'env' | 'docker-config';
      readonly username: string;
      readonly password: string;
    };

export type HostConfig =
  | { readonly runner: 'local'; readonly params: HostParams }
  | {
      readonly runner: 'ssm';
      readonly params: HostParams;
      readonly instanceId: string;
      readonly region?: string;
      readonly document?: string;
      readonly outputBucket?: string;
    };

export interface CliConfig {
  readonly command: Command;
  readonly registryUrl: string;
  readonly insecureTls: boolean;
  readonly ca?: string;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly policy: Policy;
  readonly storageRoot?: string;
  readonly credentials: CredentialSource;
  readonly concurrency: number;
  readonly json: boolean;
  readonly yes: boolean;
  readonly planFile?: string;
  readonly timeoutMs: number;
  /** How the host script runs: for garbage collection (`--gc`) and `--storage-from-host`. */
  readonly host?: HostConfig;
  /** Collect garbage after deleting (clean with --gc local|ssm). */
  readonly collectGarbage: boolean;
  readonly storageFromHost: boolean;
  /** Things worth telling a person that do not stop the run. */
  readonly warnings: readonly string[];
}

/** Everything the configuration reads besides argv and the environment, so tests can feed it. */
export interface ConfigSources {
  readonly env: NodeJS.ProcessEnv;
  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
  /** Credentials the Docker CLI would use for a host, from its credential helper or its config file. */
  dockerCredentials(host: string): Promise<{ username: string; password: string } | undefined>;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

export const OPTIONS = {
  registry: { type: 'string' },
  'insecure-tls': { type: 'boolean' },
  'ca-file': { type: 'string' },
  repo: { type: 'string', multiple: true },
  'exclude-repo': { type: 'string', multiple: true },
  'keep-last': { type: 'string' },
  'keep-days': { type: 'string' },
  'keep-tag': { type: 'string', multiple: true },
  'untagged-grace': { type: 'string' },
  policy: { type: 'string' },
  'storage-root': { type: 'string' },
  username: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  concurrency: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  plan: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  gc: { type: 'string' },
  'gc-mode': { type: 'string' },
  container: { type: 'string' },
  'registry-config': { type: 'string' },
  'no-restart': { type: 'boolean' },
  'instance-id': { type: 'string' },
  region: { type: 'string' },
  'ssm-document': { type: 'string' },
  'ssm-output-bucket': { type: 'string' },
  'storage-from-host': { type: 'boolean' },
  'registry-port': { type: 'string' },
  'upload-wait': { type: 'string' },
  'lock-file': { type: 'string' },
  'log-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

const DEFAULT_CONCURRENCY = 8;
const DEFAULT_TIMEOUT = '1h';

function wholeNumber(
  value: string | undefined,
  flag: string,
  problems: string[],
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
) {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || number < min || number > max) {
    problems.push(`--${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return number;
}

/** http(s) origin of the registry; a trailing `/` or `/v2/` is accepted and dropped. */
export function registryOrigin(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password || url.search || url.hash) return undefined;
  if (!['', '/', '/v2', '/v2/'].includes(url.pathname)) return undefined;
  return url.origin;
}

export type ParsedArgs = { command: string | undefined; values: Record<string, unknown> };

export function parseArgv(argv: readonly string[]): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length > 1)
      throw new UsageError([`unexpected argument ${JSON.stringify(positionals[1])}`]);
    return { command: positionals[0], values };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError([(error as Error).message.split('\n')[0] ?? 'invalid arguments']);
  }
}

/** Turns the command line and environment into a validated configuration, listing every problem at once. */
export async function loadCliConfig(parsed: ParsedArgs, sources: ConfigSources): Promise<CliConfig> {
  const problems: string[] = [];
  const v = parsed.values as {
    [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true }
      ? string[]
      : (typeof OPTIONS)[K] extends { type: 'boolean' }
        ? boolean
        : string;
  };
  const command = parsed.command;
  if (!COMMANDS.includes(command as Command)) {
    problems.push(
      command === undefined
        ? `a command is needed: ${COMMANDS.join(', ')}`
        : `unknown command ${JSON.stringify(command)}: use ${COMMANDS.join(', ')}`,
    );
  }

  const registryText = v.registry ?? sources.env.REGISTRY_URL;
  const registryUrl = registryText === undefined ? undefined : registryOrigin(registryText);
  if (registryText === undefined)
    problems.push('--registry: required, e.g. --registry http://127.0.0.1:5000');
  else if (registryUrl === undefined) {
    problems.push(
      `--registry: expected an http:// or https:// address with no path, e.g. https://registry.example.com:5000, got ${JSON.stringify(registryText)}`,
    );
  }

  const problemsBeforeRule = problems.length;
  const flagRule: RuleInput = {};
  const keepLast = wholeNumber(v['keep-last'], 'keep-last', problems);
  if (keepLast !== undefined) flagRule.keepLast = keepLast;
  if (v['keep-days'] !== undefined) {
    const days = Number(v['keep-days']);
    if (!Number.isFinite(days) || days < 0 || v['keep-days'].trim() === '') {
      problems.push(`--keep-days: expected a number of days ≥ 0, got ${JSON.stringify(v['keep-days'])}`);
    } else flagRule.keepDays = days;
  }
  if (v['keep-tag']) flagRule.keepTags = v['keep-tag'];
  if (v['untagged-grace'] !== undefined) {
    if (parseDuration(v['untagged-grace']) === undefined) {
      problems.push(
        `--untagged-grace: expected a duration such as 0, 90m, 2h or 7d, got ${JSON.stringify(v['untagged-grace'])}`,
      );
    } else flagRule.untaggedGrace = v['untagged-grace'];
  }

  let policyFile: unknown;
  if (v.policy !== undefined) {
    try {
      policyFile = JSON.parse(await sources.readFile(v.policy));
    } catch (error) {
      const reason = error instanceof SyntaxError ? `is not valid JSON (${error.message})` : 'cannot be read';
      problems.push(`--policy: ${v.policy} ${reason}`);
    }
  }
  let policy: Policy | undefined;
  // A policy flag already reported as wrong would make the policy look empty: no second error for it.
  if (problems.length === problemsBeforeRule) {
    try {
      // verify needs no policy, and a saved plan carries its decisions: a policy is then only checked if given.
      const unneeded =
        command === 'verify' ||
        (v.plan !== undefined && policyFile === undefined && Object.keys(flagRule).length === 0);
      policy = buildPolicy(policyFile, unneeded ? { keepLast: 0 } : flagRule, v.policy ?? 'policy file');
    } catch (error) {
      if (error instanceof PolicyError) problems.push(...error.problems);
      else throw error;
    }
  }

  const concurrency = wholeNumber(v.concurrency, 'concurrency', problems, 1, 64) ?? DEFAULT_CONCURRENCY;
  const timeoutText = v.timeout ?? DEFAULT_TIMEOUT;
  const timeoutMs = parseDuration(timeoutText);
  if (timeoutMs === undefined || timeoutMs === 0) {
    problems.push(`--timeout: expected a duration such as 30m or 2h, got ${JSON.stringify(timeoutText)}`);
  }

  let ca: string | undefined;
  if (v['ca-file'] !== undefined) {
    try {
      ca = await sources.readFile(v['ca-file']);
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
        problems.push(`--ca-file: ${v['ca-file']} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
      }
    } catch {
      problems.push(`--ca-file: ${v['ca-file']} cannot be read`);
    }
  }
  if (v['insecure-tls'] && v['ca-file'] !== undefined)
    problems.push('--insecure-tls and --ca-file: give one, not both');

  if (command !== 'clean') {
    for (const flag of ['plan', 'yes', 'gc', 'gc-mode', 'no-restart'] as const) {
      if (v[flag] !== undefined) problems.push(`--${flag}: only for clean`);
    }
  }
  const host = hostConfig(v, problems);
  const gc = v.gc ?? 'none';
  if (!['local', 'ssm', 'none'].includes(gc))
    problems.push(`--gc: expected local, ssm or none, got ${JSON.stringify(gc)}`);
  if (v['storage-from-host'] && v['storage-root'] !== undefined) {
    problems.push('--storage-root and --storage-from-host: give one, not both');
  }

  const warnings: string[] = [];
  const credentials = await resolveCredentials(v, registryUrl, sources, problems);
  if (problems.length > 0 || !policy || !registryUrl) throw new UsageError(problems);
  return {
    command: command as Command,
    registryUrl,
    insecureTls: v['insecure-tls'] ?? false,
    ...(ca !== undefined ? { ca } : {}),
    include: v.repo ?? [],
    exclude: v['exclude-repo'] ?? [],
    policy,
    ...(v['storage-root'] !== undefined ? { storageRoot: v['storage-root'] } : {}),
    credentials,
    concurrency,
    json: v.json ?? false,
    yes: v.yes ?? false,
    ...(v.plan !== undefined ? { planFile: v.plan } : {}),
    timeoutMs: timeoutMs ?? 0,
    ...(host ? { host } : {}),
    collectGarbage: gc !== 'none',
    storageFromHost: v['storage-from-host'] ?? false,
    warnings,
  };
}

async function resolveCredentials(
  v: { username?: string; 'password-stdin'?: boolean },
  registryUrl: string | undefined,
  sources: ConfigSources,
  problems: string[],
): Promise<CredentialSource> {
  if (v.username !== undefined || v['password-stdin']) {
    if (v.username === undefined || !v['password-stdin']) {
      problems.push('--username and --password-stdin go together (the password is read from standard input)');
      return { kind: 'none' };
    }
    const password = (await sources.readStdin()).replace(/\r?\n$/, '');
    if (!password) problems.push('--password-stdin: standard input was empty');
    return { kind: 'flags', username: v.username, password };
  }
  const { REGISTRY_USERNAME: username, REGISTRY_PASSWORD: password } = sources.env;
  if (username !== undefined || password !== undefined) {
    if (!username || !password) {
      problems.push('REGISTRY_USERNAME and REGISTRY_PASSWORD: set both, or neither');
      return { kind: 'none' };
    }
    return { kind: 'env', username, password };
  }
  if (!registryUrl) return { kind: 'none' };
  try {
    const found = await sources.dockerCredentials(new URL(registryUrl).host);
    return found ? { kind: 'docker-config', ...found } : { kind: 'none' };
  } catch (error) {
    problems.push(
      `${(error as Error).message}; instead of the Docker config, pass --username with --password-stdin, or set REGISTRY_USERNAME and REGISTRY_PASSWORD`,
    );
    return { kind: 'none' };
  }
}

type HostFlags = {
  gc?: string;
  'gc-mode'?: string;
  container?: string;
  'registry-config'?: string;
  'no-restart'?: boolean;
  'instance-id'?: string;
  region?: string;
  'ssm-document'?: string;
  'ssm-output-bucket'?: string;
  'storage-from-host'?: boolean;
  'registry-port'?: string;
  'upload-wait'?: string;
  'lock-file'?: string;
  'log-dir'?: string;
};

const HOST_FLAGS: Record<string, string> = {
  container: '--container',
  registryConfig: '--registry-config',
  gcMode: '--gc-mode',
  registryPort: '--registry-port',
  uploadWaitSeconds: '--upload-wait',
  lockFile: '--lock-file',
  logDir: '--log-dir',
};

/** Where and how the host script runs, from --gc, --storage-from-host and the host flags. */
function hostConfig(v: HostFlags, problems: string[]): HostConfig | undefined {
  const wanted = (v.gc !== undefined && v.gc !== 'none') || v['storage-from-host'] === true;
  const ssmFlags = (['instance-id', 'region', 'ssm-document', 'ssm-output-bucket'] as const).filter(
    (f) => v[f] !== undefined,
  );
  const runner = v.gc === 'ssm' || (v.gc !== 'local' && ssmFlags.length > 0) ? 'ssm' : 'local';
  if (!wanted) {
    const hostFlags = [
      'container',
      'registry-config',
      'gc-mode',
      'no-restart',
      'registry-port',
      'upload-wait',
      'lock-file',
      'log-dir',
    ] as const;
    for (const flag of [...ssmFlags, ...hostFlags]) {
      if (v[flag] !== undefined) problems.push(`--${flag}: only with --gc local|ssm or --storage-from-host`);
    }
    return undefined;
  }
  if (v['gc-mode'] !== undefined && !['online', 'stopped'].includes(v['gc-mode'])) {
    problems.push(`--gc-mode: expected online or stopped, got ${JSON.stringify(v['gc-mode'])}`);
  }
  const params: { -readonly [K in keyof HostParams]: HostParams[K] } = {
    ...(v.container !== undefined ? { container: v.container } : {}),
    ...(v['registry-config'] !== undefined ? { registryConfig: v['registry-config'] } : {}),
    ...(v['gc-mode'] === 'online' || v['gc-mode'] === 'stopped' ? { gcMode: v['gc-mode'] } : {}),
    ...(v['no-restart'] ? { restart: false } : {}),
    ...(v['lock-file'] !== undefined ? { lockFile: v['lock-file'] } : {}),
    ...(v['log-dir'] !== undefined ? { logDir: v['log-dir'] } : {}),
  };
  if (v['registry-port'] !== undefined) {
    const port = wholeNumber(v['registry-port'], 'registry-port', problems, 1, 65_535);
    if (port !== undefined) params.registryPort = port;
  }
  if (v['upload-wait'] !== undefined) {
    const ms = parseDuration(v['upload-wait']);
    if (ms === undefined) {
      problems.push(
        `--upload-wait: expected a duration such as 0, 90s or 5m, got ${JSON.stringify(v['upload-wait'])}`,
      );
    } else params.uploadWaitSeconds = Math.round(ms / 1000);
  }
  try {
    hostEnvironment('collect', params);
  } catch (error) {
    if (!(error instanceof HostParameterError)) throw error;
    // The script names its variables; a person typed flags.
    problems.push(
      ...error.problems.map((p) =>
        p.replace(/^(\w+) \(RJ_\w+\)/, (m, param: string) => HOST_FLAGS[param] ?? m),
      ),
    );
  }
  if (runner === 'local') {
    if (ssmFlags.length > 0) problems.push(`--${ssmFlags[0]}: only with --gc ssm`);
    return { runner, params };
  }
  const instanceId = v['instance-id'];
  if (instanceId === undefined)
    problems.push('--instance-id: required with --gc ssm, e.g. --instance-id i-0123456789abcdef0');
  else if (!INSTANCE_ID.test(instanceId)) {
    problems.push(
      `--instance-id: expected an EC2 instance id such as i-0123456789abcdef0, got ${JSON.stringify(instanceId)}`,
    );
  }
  if (v.region !== undefined && !REGION.test(v.region)) {
    problems.push(`--region: expected an AWS region such as eu-west-1, got ${JSON.stringify(v.region)}`);
  }
  if (v['ssm-document'] !== undefined && !SSM_DOCUMENT.test(v['ssm-document'])) {
    problems.push(
      `--ssm-document: expected an SSM document name or ARN, got ${JSON.stringify(v['ssm-document'])}`,
    );
  }
  if (v['ssm-output-bucket'] !== undefined && !S3_BUCKET.test(v['ssm-output-bucket'])) {
    problems.push(
      `--ssm-output-bucket: expected an S3 bucket name, got ${JSON.stringify(v['ssm-output-bucket'])}`,
    );
  }
  return {
    runner,
    params,
    instanceId: instanceId ?? '',
    ...(v.region !== undefined ? { region: v.region } : {}),
    ...(v['ssm-document'] !== undefined ? { document: v['ssm-document'] } : {}),
    ...(v['ssm-output-bucket'] !== undefined ? { outputBucket: v['ssm-output-bucket'] } : {}),
  };
}
