import { Agent, createServer, request } from 'node:http';
import type { Socket } from 'node:net';
import type { TestRegistry } from './registry.js';

export interface StallingProxy {
  /** The registry's address through the proxy. */
  readonly url: string;
  /** Resolves when the first held request has arrived. */
  readonly stalled: Promise<void>;
  close(): Promise<void>;
}

/**
 * A proxy in front of a real registry that passes every request on except those `holds` picks, which it reads
 * and never answers, as a registry stuck on one blob does: a client waits on those until its deadline.
 */
export async function startStallingProxy(
  reg: TestRegistry,
  holds: (method: string, path: string) => boolean,
): Promise<StallingProxy> {
  const target = new URL(reg.url);
  const agent = new Agent({ keepAlive: true });
  const sockets = new Set<Socket>();
  let announce: () => void = () => undefined;
  const stalled = new Promise<void>((resolve) => {
    announce = resolve;
  });
  const server = createServer((req, res) => {
    if (holds(req.method ?? '', req.url ?? '')) {
      announce();
      req.resume();
      return;
    }
    const upstream = request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(error));
    });
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    stalled,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Picks the HEAD of one blob, as verification sends it; the scan reads configs with GET. */
export const blobHead =
  (digest: string) =>
  (method: string, path: string): boolean =>
    method === 'HEAD' && path.endsWith(`/blobs/${digest}`);
