/**
 * Buffers to read files into, at aligned addresses.
 *
 * The kernel copies a read out of the page cache into the caller's buffer. Where that buffer
 * starts matters on some CPUs: on the AMD EPYC development machine, reading a cached 512 MiB file
 * 2 MiB at a time took 0.098 s into a buffer 16 bytes past a page boundary (where a large
 * `Buffer.allocUnsafeSlow` lands), 0.044 s 64 bytes past one and 0.038 s at one. JavaScript cannot
 * see addresses, so alignment needs a function that can (the native addon's `alignOffset`),
 * registered once with {@link useBufferAlignment}; without one, buffers are allocated as before.
 * Where a buffer is written from does not matter: the same test writing into the page cache ran
 * at the same speed from every alignment.
 *
 * @module
 */

/** Tells how far into `data` the first address that is a multiple of `align` lies. */
export type AlignOffsetFn = (data: Uint8Array, align: number) => number;

/** The alignment of read buffers: a page, so that direct IO could use them too. */
export const READ_BUFFER_ALIGN = 4096;

let registered: AlignOffsetFn | undefined;

/**
 * Have {@link allocReadBuffer} place read buffers at page-aligned addresses, found with `fn`
 * (`undefined` goes back to plain allocations). A process-wide setting, like the checksum
 * implementation.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * useBufferAlignment(loadNative().alignOffset);
 */
export function useBufferAlignment(fn: AlignOffsetFn | undefined): void {
  registered = fn;
}

/** Whether {@link allocReadBuffer} aligns its buffers. */
export function bufferAlignmentKnown(): boolean {
  return registered !== undefined;
}

/**
 * `n` bytes of uninitialised memory starting at an address that is a multiple of `align` (a power
 * of two), found with `alignOffset`; the memory is a view into an allocation `align` bytes larger.
 *
 * @throws RangeError when `alignOffset` answers anything but an offset below `align`.
 */
export function alignedBuffer(n: number, align: number, alignOffset: AlignOffsetFn): Buffer {
  const raw = Buffer.allocUnsafeSlow(n + align);
  const off = alignOffset(raw, align);
  if (!Number.isInteger(off) || off < 0 || off >= align) {
    throw new RangeError(`the alignment function returned ${off}, not an offset below ${align}`);
  }
  return raw.subarray(off, off + n);
}

/**
 * A buffer of `n` bytes to read a file into, not shared with any other allocation: page-aligned
 * once {@link useBufferAlignment} was given a function, else as `Buffer.allocUnsafeSlow` places it.
 * Its contents are uninitialised.
 */
export function allocReadBuffer(n: number): Buffer {
  return registered ? alignedBuffer(n, READ_BUFFER_ALIGN, registered) : Buffer.allocUnsafeSlow(n);
}
