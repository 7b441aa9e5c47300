import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { OptionName } from '../command-line.js';
import { printable } from '../domain/names.js';
import { DAY_MS, duration, type Quantity } from '../domain/quantity.js';
import type { HostAction, HostParams } from '../ports.js';

/** The command line's build embeds the script's text under this name; other builds read the file. */
declare const RJ_EMBEDDED_MAINTENANCE_SCRIPT: string | undefined;

/** The host script beside this module; the function's bundle ships `maintenance.sh` next to its output. */
export function maintenanceScriptPath(): string {
  return fileURLToPath(new URL('./maintenance.sh', import.meta.url));
}

let scriptText: string | undefined;

/** The host script's text, read once. */
export function maintenanceScript(): string {
  scriptText ??=
    typeof RJ_EMBEDDED_MAINTENANCE_SCRIPT === 'string'
      ? RJ_EMBEDDED_MAINTENANCE_SCRIPT
      : readFileSync(maintenanceScriptPath(), 'utf8');
  return scriptText;
}

/** How the command line sets a host script parameter. */
export interface HostFlag {
  readonly name: OptionName;
  /** A switch: giving it sets the parameter to this value. */
  readonly sets?: string;
  /** A duration, read by this quantity in milliseconds, that the script takes in whole seconds. */
  readonly seconds?: Quantity;
}

/**
 * One input of the host script: the HostParams field, the variable the script reads, what it accepts, and the
 * names it is set by on each surface: the command line's flag, the function's environment variable, the CDK
 * context key, and the construct's prop that sets the function's variable.
 */
export interface HostParameter {
  readonly param: 'action' | keyof HostParams;
  readonly env: `RJ_${string}`;
  /** The whole accepted form, anchored; the script checks the same form with `case` patterns. */
  readonly pattern: RegExp;
  /** The accepted form in words, exactly as the script's error summary says it after "expected". */
  readonly description: string;
  /** The script's default for an unset or empty variable; undefined: required, or chosen by the script. */
  readonly default?: string;
  /** How HostParams holds the value. */
  readonly type: 'string' | 'number' | 'boolean';
  readonly flag?: HostFlag;
  /** The function's environment variable. */
  readonly variable?: string;
  /** The `cdk.json` context key. */
  readonly context?: string;
  /**
   * The construct's prop. With `showsDefault`, an unset prop still gives the function the script's default, so
   * the function's configuration shows the value in use.
   */
  readonly prop?: { readonly name: string; readonly showsDefault?: true };
}

/**
 * A pattern whose length limit is checked beside the regular expression, which can then do without lookaheads:
 * SSM's allowedPattern takes `source` as it is, and `maxLength` becomes the document parameter's maxChars.
 */
class LengthLimitedPattern extends RegExp {
  static override get [Symbol.species]() {
    return RegExp;
  }

  constructor(
    source: string,
    readonly maxLength: number,
  ) {
    super(source);
  }

  override exec(text: string): RegExpExecArray | null {
    return text.length > this.maxLength ? null : super.exec(text);
  }
}

/** A parameter that takes one of a few words: `online or stopped`. */
function oneOf(...words: readonly string[]): Pick<HostParameter, 'pattern' | 'description'> {
  return {
    pattern: new RegExp(`^(${words.join('|')})$`),
    description: `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`,
  };
}

const PATH = {
  type: 'string',
  pattern: new LengthLimitedPattern('^/(([A-Za-z0-9_/-]|\\.[A-Za-z0-9_/-])+\\.?|\\.)$', 256),
  description: "an absolute path of 2 to 256 characters from A-Z a-z 0-9 '.' '_' '/' '-', without '..'",
} as const;
const COUNT = {
  type: 'number',
  pattern: /^(0|[1-9][0-9]{0,4})$/,
  description: 'a whole number from 0 to 99999, without leading zeros',
} as const;

/** Every input of the host script, in the order the script checks them. */
export const HOST_PARAMETERS: readonly HostParameter[] = [
  { param: 'action', env: 'RJ_ACTION', type: 'string', ...oneOf('inventory', 'collect', 'recover') },
  {
    param: 'container',
    env: 'RJ_CONTAINER',
    type: 'string',
    pattern: /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/,
    description: "a container name or id: a letter or digit, then up to 127 letters, digits, '_', '.' or '-'",
    default: 'registry',
    flag: { name: 'container' },
    variable: 'REGISTRY_CONTAINER',
    context: 'container',
    prop: { name: 'container', showsDefault: true },
  },
  { param: 'registryBinary', env: 'RJ_REGISTRY_BINARY', ...PATH, default: '/bin/registry' },
  {
    param: 'registryConfig',
    env: 'RJ_REGISTRY_CONFIG',
    ...PATH,
    flag: { name: 'registry-config' },
    variable: 'REGISTRY_CONFIG_PATH',
    context: 'registryConfigPath',
    prop: { name: 'registryConfigPath' },
  },
  {
    param: 'storageRoot',
    env: 'RJ_STORAGE_ROOT',
    ...PATH,
    default: '/var/lib/registry',
    variable: 'REGISTRY_STORAGE_ROOT',
    context: 'storageRoot',
    prop: { name: 'storageRoot' },
  },
  {
    param: 'gcMode',
    env: 'RJ_GC_MODE',
    type: 'string',
    ...oneOf('online', 'stopped'),
    default: 'online',
    flag: { name: 'gc-mode' },
    variable: 'GC_MODE',
    context: 'gcMode',
    prop: { name: 'gcMode', showsDefault: true },
  },
  {
    param: 'restart',
    env: 'RJ_RESTART',
    type: 'boolean',
    ...oneOf('true', 'false'),
    default: 'true',
    flag: { name: 'no-restart', sets: 'false' },
  },
  {
    param: 'registryPort',
    env: 'RJ_REGISTRY_PORT',
    type: 'number',
    pattern: /^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$/,
    description: 'a port number from 1 to 65535',
    default: '5000',
    flag: { name: 'registry-port' },
  },
  {
    param: 'uploadWaitSeconds',
    env: 'RJ_UPLOAD_WAIT_SECONDS',
    ...COUNT,
    default: '300',
    flag: { name: 'upload-wait', seconds: duration({ max: DAY_MS, examples: ['0', '90s', '5m'] }) },
  },
  { param: 'uploadRecentMinutes', env: 'RJ_UPLOAD_RECENT_MINUTES', ...COUNT, default: '60' },
  {
    param: 'pollSeconds',
    env: 'RJ_POLL_SECONDS',
    type: 'number',
    pattern: /^[1-9][0-9]{0,2}$/,
    description: 'a whole number from 1 to 999, without leading zeros',
    default: '5',
  },
  { param: 'readySeconds', env: 'RJ_READY_SECONDS', ...COUNT, default: '120' },
  {
    param: 'lockFile',
    env: 'RJ_LOCK_FILE',
    ...PATH,
    default: '/var/lock/registry-janitor.lock',
    flag: { name: 'lock-file' },
    variable: 'HOST_LOCK_FILE',
    prop: { name: 'hostLockFile' },
  },
  {
    param: 'logDir',
    env: 'RJ_LOG_DIR',
    ...PATH,
    default: '/var/log/registry-janitor',
    flag: { name: 'log-dir' },
    variable: 'HOST_LOG_DIR',
    prop: { name: 'hostLogDir' },
  },
];

/** The parameters a surface sets: those with a flag, a variable, a context key or a prop. */
export type HostSetting<Surface extends 'flag' | 'variable' | 'context' | 'prop'> = HostParameter &
  Required<Pick<HostParameter, Surface>> & { readonly param: keyof HostParams };

export function hostSettings<Surface extends 'flag' | 'variable' | 'context' | 'prop'>(
  surface: Surface,
): HostSetting<Surface>[] {
  return HOST_PARAMETERS.filter(
    (parameter): parameter is HostSetting<Surface> =>
      parameter[surface] !== undefined && parameter.param !== 'action',
  );
}

/**
 * HostParams from the texts a surface gives, one per setting: `read` checks a text against the parameter's
 * pattern, names the problem as the user set it, and answers the text accepted or undefined.
 */
export function readHostParams<Surface extends 'flag' | 'variable' | 'context'>(
  surface: Surface,
  read: (setting: HostSetting<Surface>) => string | undefined,
): HostParams {
  const params: Record<string, string | number | boolean> = {};
  for (const setting of hostSettings(surface)) {
    const text = read(setting);
    if (text === undefined) continue;
    params[setting.param] =
      setting.type === 'number' ? Number(text) : setting.type === 'boolean' ? text === 'true' : text;
  }
  return params as HostParams;
}

/** Host script parameters that the script would refuse; every problem is listed. */
export class HostParameterError extends Error {
  override readonly name = 'HostParameterError';
  readonly code = 'RJ_HOST_PARAMETER';
  constructor(readonly problems: readonly string[]) {
    super(`invalid host script parameters:\n  ${problems.join('\n  ')}`);
  }
}

/** The `RJ_*` environment for the host script: the parameters given; the script defaults the rest. */
export function hostEnvironment(action: HostAction, params: HostParams): Record<string, string> {
  const environment: Record<string, string> = {};
  const problems: string[] = [];
  for (const parameter of HOST_PARAMETERS) {
    const raw: unknown = parameter.param === 'action' ? action : params[parameter.param];
    if (raw === undefined) continue;
    const value =
      typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : '';
    if (!parameter.pattern.test(value)) {
      problems.push(
        `${parameter.param} (${parameter.env}) ${printable(raw)}: expected ${parameter.description}`,
      );
      continue;
    }
    environment[parameter.env] = value;
  }
  if (problems.length > 0) throw new HostParameterError(problems);
  return environment;
}
