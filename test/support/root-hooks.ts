import type { RootHookObject } from 'mocha';

let unhandled: unknown[] = [];
const record = (reason: unknown): void => {
  unhandled.push(reason);
};

/** An unhandled rejection anywhere fails the test that was running. */
export const mochaHooks: RootHookObject = {
  beforeAll() {
    process.on('unhandledRejection', record);
  },
  afterEach() {
    const seen = unhandled;
    unhandled = [];
    if (seen.length > 0) throw new Error(`unhandled rejection during test: ${String(seen[0])}`);
  },
  afterAll() {
    process.off('unhandledRejection', record);
  },
};
