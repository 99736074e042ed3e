/**
 * What the pipeline writes to the device: seeded lists of `qemu-io` commands, so a run can be
 * repeated exactly (`--seed`).
 *
 * Only data writes and zero writes: no `discard`. The capture device logs an NBD TRIM as a DISCARD
 * record but leaves the data device as it was (TRIM promises nothing about what reads return),
 * whereas a restored image reads a DISCARD as zeros. With discards in the workload the device and
 * its restore would differ exactly there, and the byte-for-byte check would be checking NBD
 * semantics rather than the pipeline.
 *
 * @module
 */
import { SeededRandom } from '@walbjs/log-format';

const KiB = 1024;
const MiB = 1024 * KiB;
/** IOs are 4 KiB aligned: the log's physical block size, so no IO straddles a block. */
const ALIGN = 4 * KiB;

/** One round's commands and the bytes they write. */
export interface Round {
  commands: string[];
  bytes: number;
}

/** Seeded generator of rounds of writes over a device of `deviceBytes`. */
export class Workload {
  private readonly rand: SeededRandom;

  constructor(seed: number, private readonly deviceBytes: number) {
    this.rand = new SeededRandom(seed);
  }

  /** A block-aligned extent of `minBytes..maxBytes` inside the device. */
  private extent(minBytes: number, maxBytes: number): [offset: number, length: number] {
    const lo = Math.ceil(minBytes / ALIGN), hi = Math.max(lo, Math.floor(maxBytes / ALIGN));
    const len = (lo + this.rand.below(hi - lo + 1)) * ALIGN;
    const off = this.rand.below(Math.floor((this.deviceBytes - len) / ALIGN) + 1) * ALIGN;
    return [off, len];
  }

  private pattern(): string {
    return `0x${(1 + this.rand.below(255)).toString(16).padStart(2, '0')}`;
  }

  /**
   * The data the device starts with, before the base image is copied: large writes, about
   * `maxBytes` in all and never more.
   */
  initial(maxBytes: number): Round {
    const commands: string[] = [];
    let bytes = 0;
    for (let tries = 0; tries < 64 && maxBytes - bytes >= 256 * KiB; tries++) {
      const [off, len] = this.extent(256 * KiB, Math.min(MiB, maxBytes - bytes));
      commands.push(`write -P ${this.pattern()} ${off} ${len}`);
      bytes += len;
    }
    return { commands, bytes };
  }

  /**
   * One round: up to `count` writes, small and large, some all zero (`write -z`), landing
   * anywhere, so later rounds overwrite earlier ones and the diffs overlap. At most `maxBytes` in
   * all: a round's logs must fit in the log ring, which is freed only between rounds.
   */
  round(count: number, maxBytes: number): Round {
    const commands: string[] = [];
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const big = this.rand.below(4) === 0;
      const [off, len] = big ? this.extent(128 * KiB, 512 * KiB) : this.extent(ALIGN, 64 * KiB);
      if (bytes + len > maxBytes) continue;
      commands.push(this.rand.below(8) === 0 ? `write -z ${off} ${len}` : `write -P ${this.pattern()} ${off} ${len}`);
      bytes += len;
    }
    return { commands, bytes };
  }
}
