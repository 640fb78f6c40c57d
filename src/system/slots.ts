// Bounds how many of a kind of work run at once (plugin runs per config file, statfs probes).
/** A counting semaphore; close() refuses every waiter and every later acquire. */
export class Slots {
  private readonly waiters: Array<{ grant: (release: () => void) => void; refuse: (err: Error) => void }> = [];
  private closed = false;

  constructor(private free: number) {}

  acquire(): Promise<() => void> {
    if (this.closed) return Promise.reject(new Error('stopped'));
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(this.releaser());
    }
    return new Promise((grant, refuse) => this.waiters.push({ grant, refuse }));
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.refuse(new Error('stopped'));
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next.grant(this.releaser());
      else this.free++;
    };
  }
}
