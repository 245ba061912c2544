import { overrideTargetId, type CapacityOverride, type OverrideStore, type OverrideTarget } from '../core';

/** Overrides of one instance (the memory store's deployment: nothing to share them with). */
export class MemoryOverrideStore implements OverrideStore {
  private readonly overrides = new Map<string, CapacityOverride>();

  async list(nowMs: number): Promise<CapacityOverride[]> {
    for (const [id, override] of this.overrides) if (override.expiresAtMs <= nowMs) this.overrides.delete(id);
    return [...this.overrides.values()];
  }

  async put(override: CapacityOverride): Promise<void> {
    this.overrides.set(overrideTargetId(override.target), override);
  }

  async remove(target: OverrideTarget): Promise<boolean> {
    return this.overrides.delete(overrideTargetId(target));
  }
}
