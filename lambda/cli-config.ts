import { isAbsolute, join, resolve } from 'node:path';
import {
  COMMANDS,
  type Command,
  OPTIONS,
  type OptionName,
  type OptionValues,
  type ParsedArgs,
  UsageError,
  unknownWord,
} from './command-line.js';
import { compileTagPattern } from './domain/pattern.js';
import type { Plan } from './domain/plan.js';
import {
  buildPolicy,
  idleWithUntaggedOnly,
  KEEP_DAYS,
  KEEP_LAST,
  type Policy,
  PolicyError,
  type RuleInput,
  UNTAGGED_GRACE,
} from './domain/policy.js';
import { DAY_MS, duration, type Quantity, wholeNumber } from './domain/quantity.js';
import { parseSavedPlan } from './domain/saved-plan.js';
import { errorMessage } from './error-message.js';
import { type HostSetting, hostSettings, readHostParams } from './host/script.js';
import { INSTANCE_ID, REGION, S3_BUCKET, SSM_DOCUMENT } from './identifiers.js';
import type { HostParams } from './ports.js';
import { registryOrigin, withoutCredentials } from './registry/address.js';
import { CONCURRENCY } from './registry/client.js';

export type CredentialSource =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'flags' | 'env' | 'docker-config';
      readonly username: string;
      readonly password: string;
    };

export type HostConfig =
  | {
      readonly runner: 'local';
      readonly params: HostParams;
      /** Where a collection left running is recorded (clean and gc); none without a home folder. */
      readonly stateDir?: string;
    }
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
  /** --max-delete: a plan that deletes more manifests is not carried out at all. */
  readonly maxDelete?: number;
  /** clean --plan FILE: the plan to apply instead of planning again. */
  readonly savedPlan?: Plan;
  /** Only the summary lines and problems. */
  readonly quiet: boolean;
  /** Every HTTP request logged to stderr. */
  readonly verbose: boolean;
  readonly timeoutMs: number;
  /** How the host script runs: for garbage collection (`--gc`) and `--storage-from-host`. */
  readonly host?: HostConfig;
  /** Collect garbage: gc, or clean with --gc local|ssm. */
  readonly collectGarbage: boolean;
  readonly storageFromHost: boolean;
  /** --html FILE: where the report goes as an HTML page too. */
  readonly html?: string;
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
  /** Why a file could not be written at this path; undefined when it could. */
  cannotWrite(path: string): Promise<string | undefined>;
}

const DEFAULT_CONCURRENCY = 8;
const DEFAULT_TIMEOUT = '1h';
// Node's timers hold at most 2^31-1 ms (24.8 days); a longer delay fires at once.
export const TIMEOUT = duration({ positive: true, max: 24 * DAY_MS, examples: ['30m', '2h'] });
/** The flags that set fields of the command line's rule. */
const RULE_FLAGS: Partial<Record<keyof RuleInput, OptionName>> = {
  keepLast: 'keep-last',
  keepDays: 'keep-days',
  keepTags: 'keep-tag',
};

/** A flag's value read by its quantity; a problem names the flag. */
function readFlag(
  flag: OptionName,
  text: string | undefined,
  quantity: Quantity,
  problems: string[],
): number | undefined {
  if (text === undefined) return undefined;
  const reading = quantity.read(text);
  if (reading.ok) return reading.value;
  problems.push(`--${flag}: ${reading.problem}`);
  return undefined;
}

/** Turns the command line and environment into a validated configuration, listing every problem at once. */
export async function loadCliConfig(parsed: ParsedArgs, sources: ConfigSources): Promise<CliConfig> {
  const problems: string[] = [];
  const v = parsed.values;
  const word = parsed.command;
  const given = (Object.keys(v) as OptionName[]).filter((name) => v[name] !== undefined);
  let command: Command | undefined;
  if (word === undefined) problems.push(`a command is needed: ${COMMANDS.join(', ')}`);
  else if (!COMMANDS.includes(word as Command)) {
    // Nothing else can be judged without knowing the command.
    throw new UsageError([unknownWord('command', word, COMMANDS)]);
  } else {
    command = word as Command;
    for (const name of given) {
      const commands: readonly Command[] = OPTIONS[name].commands;
      if (!commands.includes(command))
        problems.push(`--${name}: not an option of ${command} (only of ${commands.join(', ')})`);
    }
  }
  if (parsed.rest.length > 0) problems.push(`unexpected argument ${JSON.stringify(parsed.rest[0])}`);

  let savedPlan: Plan | undefined;
  if (v.plan !== undefined) {
    const ignored = given.filter(
      (name) => ['Policy', 'Selection'].includes(OPTIONS[name].group) || name.startsWith('storage-'),
    );
    for (const name of ignored)
      problems.push(
        `--${name}: a saved plan already holds its selection and decisions; plan again to change them`,
      );
    if (v['dry-run'])
      problems.push(
        '--dry-run and --plan: the saved plan is what clean would do; show it with jq, or plan again',
      );
    savedPlan = await readSavedPlan(v.plan, sources, problems);
  }

  const registryText = v.registry ?? sources.env.REGISTRY_URL ?? savedPlan?.registry;
  const registryUrl = registryText === undefined ? undefined : registryOrigin(registryText);
  const registryField =
    v.registry === undefined && sources.env.REGISTRY_URL !== undefined ? 'REGISTRY_URL' : '--registry';
  const bare = registryText === undefined ? undefined : withoutCredentials(registryText);
  if (registryText === undefined)
    problems.push('--registry: required, e.g. --registry http://127.0.0.1:5000');
  else if (bare !== undefined) {
    problems.push(
      `${registryField}: credentials do not belong in the address, got ${JSON.stringify(registryText)}: give ${bare} and pass --username with --password-stdin, or set REGISTRY_USERNAME and REGISTRY_PASSWORD`,
    );
  } else if (registryUrl === undefined) {
    problems.push(
      `${registryField}: expected an http:// or https:// address with no path, e.g. https://registry.example.com:5000, got ${JSON.stringify(registryText)}`,
    );
  } else if (savedPlan && savedPlan.registry !== registryUrl) {
    problems.push(
      `--plan: ${v.plan} was made for ${savedPlan.registry}, not ${registryUrl}; plan again for this registry`,
    );
  }

  const problemsBeforeRule = problems.length;
  const flagRule: RuleInput = {};
  const keepLast = readFlag('keep-last', v['keep-last'], KEEP_LAST, problems);
  if (keepLast !== undefined) flagRule.keepLast = keepLast;
  const keepDays = v['keep-days'];
  if (readFlag('keep-days', keepDays, KEEP_DAYS, problems) !== undefined) flagRule.keepDays = keepDays;
  const grace = v['untagged-grace'];
  if (readFlag('untagged-grace', grace, UNTAGGED_GRACE, problems) !== undefined)
    flagRule.untaggedGrace = grace;
  for (const source of v['keep-tag'] ?? []) {
    const reading = compileTagPattern(source);
    if (!reading.ok) problems.push(`--keep-tag: ${reading.problem}`);
  }
  if (v['keep-tag']) flagRule.keepTags = v['keep-tag'];
  if (v['untagged-only']) flagRule.untaggedOnly = true;
  for (const field of idleWithUntaggedOnly(flagRule)) {
    problems.push(
      `--${RULE_FLAGS[field] ?? field}: does nothing with --untagged-only, which keeps every tagged image: give one of them`,
    );
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
      // verify, gc and du need no policy, and a saved plan carries its decisions.
      const unneeded =
        command === 'verify' || command === 'gc' || command === 'du' || savedPlan !== undefined;
      // gc plans only to know what must still resolve after collecting: it keeps everything.
      const rule: RuleInput = command === 'gc' ? { protect: true } : unneeded ? { keepLast: 0 } : flagRule;
      policy = buildPolicy(policyFile, rule, v.policy ?? 'policy file');
    } catch (error) {
      if (error instanceof PolicyError) problems.push(...error.problems);
      else throw error;
    }
  }

  const concurrency = readFlag('concurrency', v.concurrency, CONCURRENCY, problems) ?? DEFAULT_CONCURRENCY;
  const maxDelete = readFlag('max-delete', v['max-delete'], wholeNumber(), problems);
  const timeoutMs = readFlag('timeout', v.timeout ?? DEFAULT_TIMEOUT, TIMEOUT, problems);

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

  const gc = v.gc ?? (command === 'gc' ? 'local' : 'none');
  if (!['local', 'ssm', 'none'].includes(gc))
    problems.push(`--gc: expected local, ssm or none, got ${JSON.stringify(gc)}`);
  else if (command === 'gc' && gc === 'none') problems.push('--gc: gc collects garbage: use local or ssm');
  const host = hostConfig({ ...v, gc }, problems, sources.env);
  if (v['storage-from-host'] && v['storage-root'] !== undefined) {
    problems.push('--storage-root and --storage-from-host: give one, not both');
  }

  if (v.html !== undefined) {
    const reason = await sources.cannotWrite(v.html);
    if (reason !== undefined)
      problems.push(`--html: cannot write ${v.html}: ${reason}; give a file in a folder you may write to`);
  }

  const warnings: string[] = [];
  const untaggedOnly = policy
    ? [policy.defaults, ...policy.rules.map((entry) => entry.rule)].filter(
        (r) => r.untaggedOnly && !r.protect,
      )
    : [];
  const storageSeen = v['storage-root'] !== undefined || v['storage-from-host'] === true;
  if (untaggedOnly.length > 0 && !storageSeen && (command === 'plan' || command === 'clean') && !savedPlan) {
    const which = v['untagged-only']
      ? '--untagged-only'
      : `${untaggedOnly.map((r) => r.source).join(', ')} of ${v.policy}`;
    warnings.push(
      `${which}: only untagged manifests are deleted, and the scan sees them only with --storage-root or --storage-from-host; without one, it deletes nothing`,
    );
  }
  const credentials = await resolveCredentials(v, registryUrl, sources, problems);
  if (problems.length > 0 || !policy || !registryUrl || !command) throw new UsageError(problems);
  return {
    // clean --dry-run shows what clean would do: the plan.
    command: command === 'clean' && v['dry-run'] ? 'plan' : command,
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
    ...(maxDelete !== undefined ? { maxDelete } : {}),
    ...(savedPlan ? { savedPlan } : {}),
    quiet: v.quiet ?? false,
    verbose: v.verbose ?? false,
    timeoutMs: timeoutMs ?? 0,
    ...(host ? { host } : {}),
    collectGarbage: gc !== 'none',
    storageFromHost: v['storage-from-host'] ?? false,
    ...(v.html !== undefined ? { html: v.html } : {}),
    warnings,
  };
}

async function readSavedPlan(
  file: string,
  sources: ConfigSources,
  problems: string[],
): Promise<Plan | undefined> {
  let json: unknown;
  try {
    json = JSON.parse(await sources.readFile(file));
  } catch (error) {
    problems.push(`--plan: ${file} cannot be read as JSON (${errorMessage(error)})`);
    return undefined;
  }
  try {
    return parseSavedPlan(json, `--plan: ${file}`);
  } catch (error) {
    problems.push(errorMessage(error));
    return undefined;
  }
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

/** --state-dir, else `$XDG_STATE_HOME/registry-janitor`, else `~/.local/state/registry-janitor`. */
function stateFolder(
  given: string | undefined,
  env: NodeJS.ProcessEnv,
  problems: string[],
): string | undefined {
  if (given !== undefined) {
    if (given.trim() === '') problems.push('--state-dir: expected a folder, got ""');
    return resolve(given);
  }
  // The XDG base directory rules ignore a relative $XDG_STATE_HOME.
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'registry-janitor');
  const home = env.HOME;
  return home !== undefined && isAbsolute(home)
    ? join(home, '.local', 'state', 'registry-janitor')
    : undefined;
}

const SSM_FLAGS = ['instance-id', 'region', 'ssm-document', 'ssm-output-bucket'] as const;

/** A host setting's flag read into the text the script takes; a problem names the flag. */
function readHostFlag(setting: HostSetting<'flag'>, v: OptionValues, problems: string[]): string | undefined {
  const { name, sets, seconds } = setting.flag;
  const given = v[name];
  if (given === undefined || given === false || Array.isArray(given)) return undefined;
  if (given === true) return sets;
  let text = given;
  if (seconds !== undefined) {
    const ms = readFlag(name, given, seconds, problems);
    if (ms === undefined) return undefined;
    text = String(Math.round(ms / 1000));
  }
  if (setting.pattern.test(text)) return text;
  problems.push(`--${name}: expected ${setting.description}, got ${JSON.stringify(given)}`);
  return undefined;
}

/** Where and how the host script runs, from --gc, --storage-from-host and the host flags. */
function hostConfig(
  v: OptionValues & { gc: string },
  problems: string[],
  env: NodeJS.ProcessEnv,
): HostConfig | undefined {
  const wanted = v.gc !== 'none' || v['storage-from-host'] === true;
  const ssmFlags = SSM_FLAGS.filter((f) => v[f] !== undefined);
  const runner = v.gc === 'ssm' || (v.gc !== 'local' && ssmFlags.length > 0) ? 'ssm' : 'local';
  if (!wanted) {
    const hostFlags = hostSettings('flag').map((setting) => setting.flag.name);
    for (const flag of [...ssmFlags, ...hostFlags]) {
      if (v[flag] !== undefined) problems.push(`--${flag}: only with --gc local|ssm or --storage-from-host`);
    }
    return undefined;
  }
  if (v['state-dir'] !== undefined && v.gc !== 'local') problems.push('--state-dir: only with --gc local');
  const params = readHostParams('flag', (setting) => readHostFlag(setting, v, problems));
  if (runner === 'local') {
    if (ssmFlags.length > 0) problems.push(`--${ssmFlags[0]}: only with --gc ssm`);
    const stateDir = v.gc === 'local' ? stateFolder(v['state-dir'], env, problems) : undefined;
    return { runner, params, ...(stateDir !== undefined ? { stateDir } : {}) };
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
