import { createServer } from "node:net";

/**
 * Hands out a free TCP port per task from a range below the kernel's ephemeral range (32768+),
 * so a port is never taken by an outgoing connection between allocation and the task's bind.
 */
export class PortAllocator {
  private readonly inUse = new Set<number>();
  private next: number;

  constructor(private readonly first = 20000, private readonly last = 32000) {
    this.next = first;
  }

  reserve(port: number): void {
    this.inUse.add(port);
  }

  release(port: number | undefined): void {
    if (port !== undefined) this.inUse.delete(port);
  }

  async allocate(): Promise<number> {
    const span = this.last - this.first;
    for (let i = 0; i < span; i++) {
      const port = this.next;
      this.next = port >= this.last ? this.first : port + 1;
      if (this.inUse.has(port)) continue;
      this.inUse.add(port);
      if (await canBind(port)) return port;
      this.inUse.delete(port);
    }
    throw new Error(`no free port in ${this.first}-${this.last}`);
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
