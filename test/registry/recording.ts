import { Agent, type Dispatcher } from 'undici';

export interface RecordedRequest {
  readonly method: string;
  readonly origin: string;
  readonly path: string;
  readonly authorization: string | undefined;
}

/** A real connection pool that notes every request it sends (after retries and redirects are expanded). */
export function recordingAgent(): {
  dispatcher: Dispatcher;
  requests: RecordedRequest[];
  close(): Promise<void>;
} {
  const agent = new Agent({ connections: 4 });
  const requests: RecordedRequest[] = [];
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    requests.push({
      method: opts.method,
      origin: String(opts.origin),
      path: opts.path,
      authorization: headerOf(opts.headers, 'authorization'),
    });
    return dispatch(opts, handler);
  });
  return { dispatcher, requests, close: () => agent.close() };
}

function headerOf(headers: Dispatcher.DispatchOptions['headers'], name: string): string | undefined {
  if (!headers) return undefined;
  const entries: [string, unknown][] = [];
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const [key, value] of headers as unknown as [string, unknown][]) entries.push([key, value]);
    } else {
      for (let i = 0; i < headers.length; i += 2) entries.push([String(headers[i]), headers[i + 1]]);
    }
  } else {
    entries.push(...Object.entries(headers as Record<string, unknown>));
  }
  const found = entries.find(([key]) => key.toLowerCase() === name);
  return found === undefined || found[1] === undefined ? undefined : String(found[1]);
}
