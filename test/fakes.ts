import type {
  Clock,
  HostAction,
  HostCommands,
  HostParams,
  HostRun,
  PendingCollection,
  PendingCollections,
} from '../lambda/ports.js';

/** A clock that says the same time until moved. */
export class FixedClock implements Clock {
  constructor(private at: Date) {}
  now(): Date {
    return this.at;
  }
}

/** The pending-collection record in memory; each operation can be made to fail. */
export class MemoryPending implements PendingCollections {
  /** Every record written, `undefined` for a removal, in order. */
  readonly writes: (PendingCollection | undefined)[] = [];
  failRead?: Error;
  /** Fails writing a record (`'record'`), removing it (`'forget'`), or both. */
  failWrite?: { readonly on: 'record' | 'forget' | 'both'; readonly error: Error };

  constructor(public record?: PendingCollection) {}

  async read(): Promise<PendingCollection | undefined> {
    if (this.failRead) throw this.failRead;
    return this.record;
  }

  async write(record: PendingCollection | undefined): Promise<void> {
    const on = record === undefined ? 'forget' : 'record';
    if (this.failWrite && (this.failWrite.on === on || this.failWrite.on === 'both'))
      throw this.failWrite.error;
    this.writes.push(record);
    this.record = record;
  }
}

/** The host script's commands, answered by the given functions; remembers what it was asked. */
export class ScriptedHost implements HostCommands {
  readonly documentName = 'RegistryJanitor-Maintenance';
  readonly runs: { readonly action: HostAction; readonly params: HostParams }[] = [];
  readonly resumed: string[] = [];

  constructor(
    private readonly answers: {
      readonly run?: (action: HostAction) => HostRun;
      readonly resume?: (commandId: string) => HostRun;
    },
  ) {}

  async run(action: HostAction, params: HostParams): Promise<HostRun> {
    this.runs.push({ action, params });
    const answer = this.answers.run;
    if (!answer) throw new Error(`the host was not expected to run ${action}`);
    return answer(action);
  }

  async resume(commandId: string): Promise<HostRun> {
    this.resumed.push(commandId);
    const answer = this.answers.resume;
    if (!answer) throw new Error(`the host was not expected to resume ${commandId}`);
    return answer(commandId);
  }
}

/** An error with a stable code, as the SSM runner throws them. */
export function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}
