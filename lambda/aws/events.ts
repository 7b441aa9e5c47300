import { z } from 'zod';
import { printable } from '../domain/names.js';
import {
  buildPolicy,
  type GroupInput,
  groupSchema,
  idleWithUntaggedOnly,
  KEEP_DAYS,
  KEEP_LAST,
  keepDaysField,
  keepLastField,
  type Policy,
  PolicyError,
  type RuleInput,
  tagPatternField,
  UNTAGGED_GRACE,
  untaggedGraceField,
} from '../domain/policy.js';
import { describeError } from '../error-message.js';
import { SSM_COMMAND_ID } from '../identifiers.js';
import type { CleanupRequest, CycleRequest } from '../request.js';
import { ENV, type FunctionConfig } from './function-config.js';

/** The input the stack's EventBridge Scheduler schedule delivers. */
export const SCHEDULE_INPUT = { trigger: 'schedule' } as const;
export const ALARM_EVENT = { source: 'aws.cloudwatch', detailType: 'CloudWatch Alarm State Change' } as const;
export const COMMAND_EVENT = {
  source: 'aws.ssm',
  detailType: 'EC2 Command Status-change Notification',
} as const;

export const ALARM_STATES = ['ALARM', 'OK', 'INSUFFICIENT_DATA'] as const;
export type AlarmState = (typeof ALARM_STATES)[number];

/** SSM command ids are UUIDs; nothing else reaches SSM or a report. */

/** Overrides an on-demand run may give; policy fields replace those of the configured policy's defaults. */
export interface Overrides {
  readonly dryRun?: boolean;
  readonly gc?: boolean;
  readonly repositories?: readonly string[];
  readonly excludeRepositories?: readonly string[];
  readonly keepLast?: number;
  readonly keepDays?: number | string;
  readonly keepTags?: readonly string[];
  readonly untaggedGrace?: number | string;
  readonly groups?: readonly GroupInput[];
  /** True holds for every rule of the policy: the run deletes only untagged manifests. */
  readonly untaggedOnly?: boolean;
  /** Replaces the configured cap for this run. */
  readonly maxDelete?: number;
}

export type FunctionEvent =
  | { readonly kind: 'schedule' }
  | { readonly kind: 'manual'; readonly overrides: Overrides }
  | {
      readonly kind: 'alarm';
      readonly alarmName: string;
      readonly state: AlarmState;
      readonly reason?: string;
    }
  | {
      readonly kind: 'command-status';
      readonly commandId: string;
      readonly status: string;
      readonly documentName?: string;
      /** The host script action, when the event carries the custom document's parameters. */
      readonly action?: string;
    };

const ACCEPTED_EVENTS = [
  `${JSON.stringify(SCHEDULE_INPUT)}`,
  'an object of overrides such as {"dryRun":true} or {"keepLast":5,"repositories":["web/*"]}',
  `an EventBridge "${ALARM_EVENT.detailType}" event (source ${ALARM_EVENT.source})`,
  `an EventBridge "${COMMAND_EVENT.detailType}" event (source ${COMMAND_EVENT.source})`,
];

/** The event is not one the function accepts; the message names the field and the accepted forms. */
export class EventError extends Error {
  override readonly name = 'EventError';
  readonly code = 'RJ_EVENT';
  constructor(readonly problems: readonly string[]) {
    super(`invalid event: ${problems.join('; ')}. Accepted events: ${ACCEPTED_EVENTS.join('; ')}.`);
  }
}

const globs = z.array(z.string().min(1).max(256)).max(100);

const OVERRIDE_FIELDS = {
  dryRun: { schema: z.boolean(), accepts: 'true or false' },
  gc: { schema: z.boolean(), accepts: 'true or false (false skips garbage collection)' },
  repositories: { schema: globs, accepts: 'an array of up to 100 repository globs, e.g. ["web/*"]' },
  excludeRepositories: { schema: globs, accepts: 'an array of up to 100 repository globs, e.g. ["base/**"]' },
  keepLast: { schema: keepLastField, accepts: KEEP_LAST.expected },
  keepDays: { schema: keepDaysField, accepts: KEEP_DAYS.expected },
  keepTags: {
    schema: z.array(tagPatternField),
    accepts: 'an array of RE2 regular expressions, e.g. ["^v1"]',
  },
  untaggedGrace: { schema: untaggedGraceField, accepts: UNTAGGED_GRACE.expected },
  groups: {
    schema: z.array(groupSchema),
    accepts: 'an array of tag groups, e.g. [{"tags":"^rc-","keepLast":5}]',
  },
  untaggedOnly: {
    schema: z.boolean(),
    accepts: 'true or false (true deletes only untagged manifests that nothing kept needs)',
  },
  maxDelete: {
    schema: z.number().int().min(0),
    accepts: 'a whole number ≥ 0: the most manifests this run may delete, e.g. 500',
  },
} as const;

const GROUP_FIELDS: Record<string, string> = {
  tags: 'an RE2 regular expression, e.g. "^rc-"',
  keepLast: KEEP_LAST.expected,
  keepDays: KEEP_DAYS.expected,
};

const overridesSchema = z
  .strictObject(
    Object.fromEntries(
      Object.entries(OVERRIDE_FIELDS).map(([name, field]) => [name, field.schema.optional()]),
    ) as { [K in keyof typeof OVERRIDE_FIELDS]: z.ZodOptional<(typeof OVERRIDE_FIELDS)[K]['schema']> },
  )
  .superRefine((overrides, ctx) => {
    for (const field of idleWithUntaggedOnly(overrides)) {
      ctx.addIssue({
        code: 'custom',
        path: [field],
        message: 'does nothing with untaggedOnly: true, which keeps every tagged image: give one of them',
      });
    }
  });

const scheduleSchema = z.strictObject({ trigger: z.literal('schedule') });

const alarmSchema = z.object({
  detail: z.object({
    alarmName: z.string().min(1).max(255),
    state: z.object({ value: z.enum(ALARM_STATES), reason: z.string().optional() }),
  }),
});

const commandSchema = z.object({
  detail: z.object({
    'command-id': z.string().regex(SSM_COMMAND_ID),
    status: z.string().min(1).max(64),
    'document-name': z.string().max(256).optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
  }),
});

const ALARM_ACCEPTS: Record<string, string> = {
  detail: 'an object with alarmName and state',
  'detail.alarmName': 'the alarm name, a non-empty string',
  'detail.state': 'an object with value',
  'detail.state.value': ALARM_STATES.join(', '),
  'detail.state.reason': 'a string',
};

const COMMAND_ACCEPTS: Record<string, string> = {
  detail: 'an object with command-id and status',
  'detail.command-id': 'an SSM command id such as 0b5f2c1e-1111-2222-3333-444455556666',
  'detail.status': 'the command status, e.g. Success',
  'detail.document-name': 'the SSM document name',
  'detail.parameters': 'an object of the command parameters',
};

function pathText(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (text, key) =>
      typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key),
    '',
  );
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function got(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? printable(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  accepts: (path: readonly PropertyKey[]) => string | undefined,
  unknownField: (key: string, path: readonly PropertyKey[]) => string,
): string[] {
  return issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => unknownField(key, issue.path));
    const path = pathText(issue.path);
    if (issue.code === 'custom') return [`${path}: ${issue.message}`];
    const expected = accepts(issue.path) ?? issue.message;
    return [`${path}: expected ${expected}, got ${got(valueAt(input, issue.path))}`];
  });
}

function parseOverrides(input: Record<string, unknown>): Overrides {
  const parsed = overridesSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const names = Object.keys(OVERRIDE_FIELDS);
  throw new EventError(
    issuesToProblems(
      parsed.error.issues,
      input,
      (path) =>
        path[0] === 'groups' && path.length > 2
          ? GROUP_FIELDS[String(path[2])]
          : OVERRIDE_FIELDS[path[0] as keyof typeof OVERRIDE_FIELDS]?.accepts,
      (key, path) =>
        path.length > 0
          ? `${pathText(path)}: unknown field ${JSON.stringify(key)}: a group takes ${Object.keys(GROUP_FIELDS).join(', ')}`
          : `unknown field ${JSON.stringify(key)}: an on-demand run accepts ${names.join(', ')}`,
    ),
  );
}

function parseSchedule(input: Record<string, unknown>): FunctionEvent {
  const parsed = scheduleSchema.safeParse(input);
  if (parsed.success) return { kind: 'schedule' };
  throw new EventError(
    issuesToProblems(
      parsed.error.issues,
      input,
      () => '"schedule"',
      (key) =>
        `unknown field ${JSON.stringify(key)}: a scheduled event is exactly ${JSON.stringify(SCHEDULE_INPUT)}; give overrides without "trigger"`,
    ),
  );
}

function parseEventBridge(input: Record<string, unknown>): FunctionEvent {
  const source = input.source;
  const detailType = input['detail-type'];
  if (source === ALARM_EVENT.source && detailType === ALARM_EVENT.detailType) {
    const parsed = alarmSchema.safeParse(input);
    if (!parsed.success) {
      throw new EventError(
        issuesToProblems(
          parsed.error.issues,
          input,
          (path) => ALARM_ACCEPTS[path.join('.')],
          (key) => `unknown field ${key}`,
        ),
      );
    }
    const { alarmName, state } = parsed.data.detail;
    return {
      kind: 'alarm',
      alarmName,
      state: state.value,
      ...(state.reason !== undefined ? { reason: state.reason.slice(0, 500) } : {}),
    };
  }
  if (source === COMMAND_EVENT.source && detailType === COMMAND_EVENT.detailType) {
    const parsed = commandSchema.safeParse(input);
    if (!parsed.success) {
      throw new EventError(
        issuesToProblems(
          parsed.error.issues,
          input,
          (path) => COMMAND_ACCEPTS[path.join('.')],
          (key) => `unknown field ${key}`,
        ),
      );
    }
    const detail = parsed.data.detail;
    const action = detail.parameters?.action;
    const firstAction = Array.isArray(action) && typeof action[0] === 'string' ? action[0] : undefined;
    return {
      kind: 'command-status',
      commandId: detail['command-id'],
      status: detail.status,
      ...(detail['document-name'] !== undefined ? { documentName: detail['document-name'] } : {}),
      ...(firstAction !== undefined ? { action: firstAction } : {}),
    };
  }
  throw new EventError([
    `source and detail-type: ${got(source)} ${got(detailType)} is not an event this function handles; it accepts ${ALARM_EVENT.source} "${ALARM_EVENT.detailType}" and ${COMMAND_EVENT.source} "${COMMAND_EVENT.detailType}"`,
  ]);
}

/**
 * Validates the invocation's event and says which of the four kinds it is. Anything else throws an EventError
 * naming the field, what it accepts and what it got.
 */
export function parseEvent(event: unknown): FunctionEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new EventError([`the event must be a JSON object, got ${got(event)}`]);
  }
  const input = event as Record<string, unknown>;
  if ('source' in input || 'detail-type' in input) return parseEventBridge(input);
  if ('trigger' in input) return parseSchedule(input);
  return { kind: 'manual', overrides: parseOverrides(input) };
}

/** Which policy a cycle runs by, as the report names it. */
export type PolicyName = 'configured' | 'configured with overrides' | 'emergency';

/**
 * What the engine is asked to do for an event, under the function's configuration: scheduled and on-demand
 * runs and the disk alarm run the whole cycle, an SSM status change settles its collection.
 */
export function requestFor(
  event: FunctionEvent,
  config: FunctionConfig,
  invocation: { readonly requestId: string; readonly deadline?: Date },
): { readonly request: CleanupRequest; readonly policy?: PolicyName } {
  const cycle = (
    options: Omit<CycleRequest, 'kind' | 'host' | 'requestId' | 'deadline' | 'plan'> & {
      readonly include?: readonly string[];
      readonly exclude?: readonly string[];
      readonly policy: Policy;
      readonly maxDelete?: number;
    },
  ): CycleRequest => {
    const { include, exclude, policy, maxDelete, ...rest } = options;
    const cap = maxDelete ?? config.maxDelete;
    return {
      kind: 'cycle',
      plan: {
        include: include ?? config.repositories,
        exclude: exclude ?? config.excludeRepositories,
        policy,
        ...(cap !== undefined ? { maxDelete: { limit: cap, setting: 'maxDelete' } } : {}),
      },
      host: config.host,
      requestId: invocation.requestId,
      ...(invocation.deadline ? { deadline: invocation.deadline } : {}),
      ...rest,
    };
  };
  switch (event.kind) {
    case 'schedule':
      return { request: cycle({ policy: config.policy, dryRun: config.dryRun }), policy: 'configured' };
    case 'manual': {
      const { dryRun, gc, repositories, excludeRepositories, maxDelete, ...rule } = event.overrides;
      const overridden = Object.keys(rule).length > 0;
      let policy = config.policy;
      if (overridden) {
        try {
          policy = buildPolicy(config.policyDocument, rule as RuleInput, ENV.policy);
        } catch (error) {
          if (!(error instanceof PolicyError)) throw error;
          return { request: { kind: 'rejected', problems: [describeError(error)] } };
        }
      }
      return {
        request: cycle({
          policy,
          dryRun: dryRun ?? config.dryRun,
          collect: gc ?? true,
          ...(repositories ? { include: repositories } : {}),
          ...(excludeRepositories ? { exclude: excludeRepositories } : {}),
          ...(maxDelete !== undefined ? { maxDelete } : {}),
        }),
        policy: overridden ? 'configured with overrides' : 'configured',
      };
    }
    case 'alarm':
      if (config.diskAlarmName !== undefined && event.alarmName !== config.diskAlarmName) {
        return {
          request: {
            kind: 'nothing to do',
            reason: `alarm ${event.alarmName} is not the disk alarm ${config.diskAlarmName}`,
          },
        };
      }
      if (event.state !== 'ALARM') {
        return { request: { kind: 'nothing to do', reason: `alarm ${event.alarmName} is ${event.state}` } };
      }
      return {
        request: cycle({ policy: config.emergencyPolicy ?? config.policy, dryRun: config.dryRun }),
        policy: config.emergencyPolicy ? 'emergency' : 'configured',
      };
    case 'command-status':
      return {
        request: {
          kind: 'command-status',
          commandId: event.commandId,
          status: event.status,
          ...(event.documentName !== undefined ? { documentName: event.documentName } : {}),
          ...(event.action !== undefined ? { action: event.action } : {}),
          selection: { include: config.repositories, exclude: config.excludeRepositories },
          host: config.host,
          requestId: invocation.requestId,
          ...(invocation.deadline ? { deadline: invocation.deadline } : {}),
        },
      };
  }
}
