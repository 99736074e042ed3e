/**
 * A counting semaphore with a FIFO queue: heavy work (conversions, merges) runs at most N at a
 * time, and waiters are served in arrival order, so no volume starves another.
 *
 * @module
 */

/** A FIFO counting semaphore. */
export class Semaphore {
  private readonly waiters: Array<() => void> = [];
  private inUse = 0;

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError('a semaphore needs a limit of at least 1');
  }

  /** Wait for a slot; call the returned function to give it back (once). */
  async acquire(): Promise<() => void> {
    if (this.inUse < this.limit) this.inUse++;
    else await new Promise<void>((r) => this.waiters.push(r));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next(); else this.inUse--;
    };
  }

  /** Slots taken now. */
  get used(): number { return this.inUse; }
  /** Waiters queued now. */
  get waiting(): number { return this.waiters.length; }
}
