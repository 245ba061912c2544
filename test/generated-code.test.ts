import assert from 'node:assert/strict';
import { GENERATED_DIR, generateProtoCode, protocAvailable, readGenerated } from '../scripts/gen-proto';
import { withTempDir } from './support/paths';

describe('generated proto code', () => {
  it('is what `npm run gen` makes from proto/ today', async function () {
    if (!protocAvailable()) {
      this.skip();
    }
    this.timeout(30_000);
    await withTempDir(async (dir) => {
      generateProtoCode(dir);
      const fresh = readGenerated(dir);
      const committed = readGenerated(GENERATED_DIR);
      assert.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort(), 'the same files');
      for (const [file, text] of fresh) assert.equal(committed.get(file), text, `src/generated/${file} is stale: run npm run gen`);
    });
  });
});
