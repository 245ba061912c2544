import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does to traffic right now. */
export type ProxyMode =
  | { readonly kind: 'pass' }
  /** Holds every chunk, both ways, this long. */
  | { readonly kind: 'delay'; readonly ms: number }
  /**
   * A blackhole: connections stay open but every byte is discarded. Leaving it resets the
   * connections that lost bytes, as a partition that outlasts TCP's retransmissions does (a
   * stream with a hole in it cannot carry on).
   */
  | { readonly kind: 'drop' }
  /** Refuses new connections (accepts and closes them at once). */
  | { readonly kind: 'cut' };

/**
 * A small TCP proxy of our own in front of a redis-server, for fault tests: it can delay, drop
 * or cut traffic, and reset every open connection (RST) at any moment.
 */
export class TcpProxy {
  private mode: ProxyMode = { kind: 'pass' };
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(upstreamPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy?.accept(client, upstreamPort));
    const port = await new Promise<number>((resolvePort) => {
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolvePort(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });
    proxy = new TcpProxy(server, port);
    return proxy;
  }

  url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  set(mode: ProxyMode): void {
    const wasDropping = this.mode.kind === 'drop';
    this.mode = mode;
    if (mode.kind === 'cut' || (wasDropping && mode.kind !== 'drop')) this.resetAll();
  }

  /** Resets every open connection, as a network failure mid-command would. */
  resetAll(): void {
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    // Closed, not reset: a reset upstream socket (to the redis-server) at this point left its
    // handle active, the process spinning after the suite and never exiting (Node 20.20).
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    await new Promise((resolveClose) => this.server.close(resolveClose));
  }

  private accept(client: Socket, upstreamPort: number): void {
    if (this.mode.kind === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort });
    const pair = { client, upstream };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk: Buffer) => {
        const mode = this.mode;
        if (mode.kind === 'drop') return;
        if (mode.kind === 'delay') setTimeout(() => to.writable && to.write(chunk), mode.ms);
        else if (to.writable) to.write(chunk);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', close);
      socket.on('close', close);
    }
  }
}
