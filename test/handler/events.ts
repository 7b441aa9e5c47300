import { readFileSync } from 'node:fs';
import type { InvocationContext } from '../../lambda/handler.js';

/** A sample event shipped in events/, parsed. */
export function sampleEvent(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../../events/${name}.json`, import.meta.url), 'utf8')) as Record<
    string,
    unknown
  >;
}

/** The SSM status-change sample for another command id and status. */
export function commandStatusEvent(commandId: string, status = 'Success'): Record<string, unknown> {
  const event = sampleEvent('ssm-status-change');
  return { ...event, detail: { ...(event.detail as object), 'command-id': commandId, status } };
}

/** The disk-alarm sample in another state or for another alarm. */
export function alarmEvent(state: string, alarmName?: string): Record<string, unknown> {
  const event = sampleEvent('disk-alarm');
  const detail = event.detail as { alarmName: string; state: Record<string, unknown> };
  return {
    ...event,
    detail: { ...detail, alarmName: alarmName ?? detail.alarmName, state: { ...detail.state, value: state } },
  };
}

export function lambdaContext(requestId: string, remainingMs = 900_000): InvocationContext {
  return { awsRequestId: requestId, getRemainingTimeInMillis: () => remainingMs };
}
