import { createHash } from 'node:crypto';
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';

/** What the proxy does to a request a rule matches, instead of passing it through. */
export type Fault =
  /** Answers with this status without forwarding the request, or after forwarding it with `forward`. */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly forward?: boolean;
    }
  /** Resets the connection before any answer; with `forward`, after the registry carried the request out. */
  | { readonly kind: 'reset'; readonly forward?: boolean }
  /** Sends the registry's headers and half of its body, then resets the connection. */
  | { readonly kind: 'reset-mid-body' }
  /** Sends the registry's headers, with the full Content-Length, and half of its body, then closes. */
  | { readonly kind: 'truncate' }
  /** Never answers. */
  | { readonly kind: 'stall' }
  /** The first half of the registry's body, framed as a whole one. */
  | { readonly kind: 'malformed' }
  /** A Docker-Content-Digest of other content. */
  | { readonly kind: 'wrong-digest' }
  /** A `Link: rel="next"` to the page just served. */
  | { readonly kind: 'loop-link' }
  /** Asks the registry for pages of at most `size` names, whatever page size the client asked for. */
  | { readonly kind: 'small-pages'; readonly size: number }
  /** Redirects (307) to the same path and query on another origin. */
  | { readonly kind: 'redirect'; readonly origin: string };

export interface FaultRule {
  readonly method?: string;
  /** Matched against the path and query. */
  readonly path: RegExp;
  /** The first matching request that gets the fault, counting from 1. @default 1 */
  readonly nth?: number;
  /** How many matching requests in a row get it, from the nth on; Infinity for all of them. @default 1 */
  readonly times?: number;
  readonly fault: Fault;
}

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  /** The fault the request got, if any. */
  readonly fault?: Fault['kind'];
}

export interface FaultProxy {
  readonly url: string;
  /** Every request, in the order it arrived. */
  readonly requests: readonly ProxiedRequest[];
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Sent to the registry in place of the client's Authorization, as object storage honours a signed URL. */
  readonly authorization?: string;
}

const OTHER_DIGEST = `sha256:${createHash('sha256').update('other content').digest('hex')}`;
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade'];

/**
 * An HTTP proxy in front of a real registry that passes every request through, except those a rule picks,
 * which get that rule's fault.
 */
export async function startFaultProxy(
  target: string,
  rules: readonly FaultRule[],
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const seen = rules.map(() => 0);
  const requests: ProxiedRequest[] = [];

  const faultFor = (method: string, path: string): Fault | undefined => {
    let chosen: Fault | undefined;
    rules.forEach((rule, index) => {
      if ((rule.method !== undefined && rule.method !== method) || !rule.path.test(path)) return;
      seen[index] = (seen[index] ?? 0) + 1;
      const first = rule.nth ?? 1;
      const count = seen[index] ?? 0;
      if (!chosen && count >= first && count < first + (rule.times ?? 1)) chosen = rule.fault;
    });
    return chosen;
  };

  const forward = (req: IncomingMessage, path: string): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const headers: IncomingHttpHeaders = { ...req.headers, host: upstream.host };
      for (const name of HOP_BY_HOP) delete headers[name];
      if (options.authorization !== undefined) headers.authorization = options.authorization;
      const outgoing = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path, headers, agent },
        resolve,
      );
      outgoing.on('error', reject);
      req.pipe(outgoing);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const fault = faultFor(method, path);
    requests.push({
      method,
      path,
      authorization: req.headers.authorization,
      ...(fault ? { fault: fault.kind } : {}),
    });
    const socket = req.socket;
    switch (fault?.kind) {
      case undefined:
        return pass(await forward(req, path), res);
      case 'status': {
        if (fault.forward) await readAll(await forward(req, path));
        res.writeHead(fault.status, { 'content-length': 0, ...fault.headers }).end();
        return;
      }
      case 'reset':
        if (fault.forward) await readAll(await forward(req, path));
        socket.resetAndDestroy();
        return;
      case 'stall':
        req.resume();
        return;
      case 'redirect':
        res.writeHead(307, { location: `${fault.origin}${path}`, 'content-length': 0 }).end();
        return;
      case 'small-pages': {
        const url = new URL(path, upstream);
        url.searchParams.set('n', String(fault.size));
        return pass(await forward(req, `${url.pathname}${url.search}`), res);
      }
      case 'loop-link': {
        const answer = await forward(req, path);
        res.writeHead(answer.statusCode ?? 502, {
          ...passedHeaders(answer.headers),
          link: `<${path}>; rel="next"`,
        });
        answer.pipe(res);
        return;
      }
      case 'wrong-digest': {
        const answer = await forward(req, path);
        res.writeHead(answer.statusCode ?? 502, {
          ...passedHeaders(answer.headers),
          'docker-content-digest': OTHER_DIGEST,
        });
        answer.pipe(res);
        return;
      }
      case 'malformed': {
        const answer = await forward(req, path);
        const body = await readAll(answer);
        const half = body.subarray(0, Math.floor(body.length / 2));
        res
          .writeHead(answer.statusCode ?? 502, {
            ...passedHeaders(answer.headers),
            'content-length': half.length,
          })
          .end(half);
        return;
      }
      case 'reset-mid-body':
      case 'truncate': {
        const answer = await forward(req, path);
        const body = await readAll(answer);
        res.writeHead(answer.statusCode ?? 502, {
          ...passedHeaders(answer.headers),
          'content-length': body.length,
        });
        const cut = (done: Socket) =>
          fault.kind === 'truncate' ? done.destroySoon() : done.resetAndDestroy();
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => cut(socket));
        return;
      }
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`fault proxy: ${String(error)}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => resolve());
    server.listen(0, '127.0.0.1');
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy has no TCP address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}

function passedHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const passed = { ...headers };
  for (const name of HOP_BY_HOP) delete passed[name];
  return passed;
}

function pass(answer: IncomingMessage, res: ServerResponse): void {
  res.writeHead(answer.statusCode ?? 502, passedHeaders(answer.headers));
  answer.pipe(res);
}

async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
