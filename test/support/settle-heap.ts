/**
 * A full garbage collection now, where the test runner exposes one (.mocharc: --expose-gc).
 * Deadline tests measure answers against Envoy's 20 ms; the runner's heap grows over the whole
 * suite, and a major collection in the measuring client during a measured call would be
 * counted against the server (its deadline timer fires before it reads the answer).
 */
export function settleHeap(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
