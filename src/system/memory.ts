// Giving freed memory back to the kernel.
import { messageOf } from '../errors';
import type { Logger } from '../types';
import type { NativeLoader } from './native';

/**
 * Building and starting a plan (the config, the rules, V8's compilers, whose zones live on malloc)
 * leaves freed C-heap memory that glibc would keep for good in an idle daemon: 2 MiB with the kernel
 * library (docs/benchmarks.md). Hands it back; an addon that cannot be loaded is a warning.
 */
export function returnFreedMemory(native: NativeLoader, log: Logger): void {
  try {
    native().trimMemory();
  } catch (err) {
    log.warning(`returning freed memory to the kernel: ${messageOf(err)}`);
  }
}
