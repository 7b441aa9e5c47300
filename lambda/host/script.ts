import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printable } from '../domain/names.js';
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

/** One input of the host script: the HostParams field, the variable the script reads, and what it accepts. */
export interface HostParameter {
  readonly param: 'action' | keyof HostParams;
  readonly env: `RJ_${string}`;
  /** The whole accepted form, anchored; the script checks the same form with `case` patterns. */
  readonly pattern: RegExp;
  /** The accepted form in words, exactly as the script's error summary says it after "expected". */
  readonly description: string;
  /** The script's default for an unset or empty variable; undefined: required, or chosen by the script. */
  readonly default?: string;
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

const PATH = new LengthLimitedPattern('^/(([A-Za-z0-9_/-]|\\.[A-Za-z0-9_/-])+\\.?|\\.)$', 256);
const PATH_DESCRIPTION =
  "an absolute path of 2 to 256 characters from A-Z a-z 0-9 '.' '_' '/' '-', without '..'";
const COUNT = /^(0|[1-9][0-9]{0,4})$/;
const COUNT_DESCRIPTION = 'a whole number from 0 to 99999, without leading zeros';

/** Every input of the host script, in the order the script checks them. */
export const HOST_PARAMETERS: readonly HostParameter[] = [
  {
    param: 'action',
    env: 'RJ_ACTION',
    pattern: /^(inventory|collect|recover)$/,
    description: 'inventory, collect or recover',
  },
  {
    param: 'container',
    env: 'RJ_CONTAINER',
    pattern: /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/,
    description: "a container name or id: a letter or digit, then up to 127 letters, digits, '_', '.' or '-'",
    default: 'registry',
  },
  {
    param: 'registryBinary',
    env: 'RJ_REGISTRY_BINARY',
    pattern: PATH,
    description: PATH_DESCRIPTION,
    default: '/bin/registry',
  },
  { param: 'registryConfig', env: 'RJ_REGISTRY_CONFIG', pattern: PATH, description: PATH_DESCRIPTION },
  {
    param: 'storageRoot',
    env: 'RJ_STORAGE_ROOT',
    pattern: PATH,
    description: PATH_DESCRIPTION,
    default: '/var/lib/registry',
  },
  {
    param: 'gcMode',
    env: 'RJ_GC_MODE',
    pattern: /^(online|stopped)$/,
    description: 'online or stopped',
    default: 'online',
  },
  {
    param: 'restart',
    env: 'RJ_RESTART',
    pattern: /^(true|false)$/,
    description: 'true or false',
    default: 'true',
  },
  {
    param: 'registryPort',
    env: 'RJ_REGISTRY_PORT',
    pattern: /^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$/,
    description: 'a port number from 1 to 65535',
    default: '5000',
  },
  {
    param: 'uploadWaitSeconds',
    env: 'RJ_UPLOAD_WAIT_SECONDS',
    pattern: COUNT,
    description: COUNT_DESCRIPTION,
    default: '300',
  },
  {
    param: 'uploadRecentMinutes',
    env: 'RJ_UPLOAD_RECENT_MINUTES',
    pattern: COUNT,
    description: COUNT_DESCRIPTION,
    default: '60',
  },
  {
    param: 'pollSeconds',
    env: 'RJ_POLL_SECONDS',
    pattern: /^[1-9][0-9]{0,2}$/,
    description: 'a whole number from 1 to 999, without leading zeros',
    default: '5',
  },
  {
    param: 'readySeconds',
    env: 'RJ_READY_SECONDS',
    pattern: COUNT,
    description: COUNT_DESCRIPTION,
    default: '120',
  },
  {
    param: 'lockFile',
    env: 'RJ_LOCK_FILE',
    pattern: PATH,
    description: PATH_DESCRIPTION,
    default: '/var/lock/registry-janitor.lock',
  },
  {
    param: 'logDir',
    env: 'RJ_LOG_DIR',
    pattern: PATH,
    description: PATH_DESCRIPTION,
    default: '/var/log/registry-janitor',
  },
];

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
