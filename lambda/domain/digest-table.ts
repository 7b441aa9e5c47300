// Tables keyed by digest for the inventory-wide passes: a registry of 100,000 tags references close to a
// million distinct blobs. A Map holds each entry in three words plus its share of the buckets, and rebuilds
// itself whole as it grows; these tables keep the keys in one flat array, open-addressed, at half the size.

/** Where the hash looks: the last characters of a digest's hex, which are as random as any. */
const HASHED_CHARACTERS = 16;

function hashOf(key: string): number {
  let hash = 0x811c9dc5 ^ key.length;
  for (let i = key.length - 1, end = Math.max(0, key.length - HASHED_CHARACTERS); i >= end; i--) {
    hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  }
  return hash ^ (hash >>> 15);
}

const INITIAL_CAPACITY = 64;

/** A set of strings (digests above all), each stored once: `intern` gives back the copy it holds. */
export class DigestSet {
  protected keys: (string | undefined)[] = new Array<string | undefined>(INITIAL_CAPACITY).fill(undefined);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The slot of the key, or the empty slot where it would go. */
  protected slotOf(key: string): number {
    const mask = this.keys.length - 1;
    let slot = hashOf(key) & mask;
    for (let held = this.keys[slot]; held !== undefined && held !== key; held = this.keys[slot]) {
      slot = (slot + 1) & mask;
    }
    return slot;
  }

  has(key: string): boolean {
    return this.keys[this.slotOf(key)] !== undefined;
  }

  /** The copy of the key the set holds; `make` gives the copy to hold when it holds none yet. */
  intern<T extends string>(key: T, make: (key: T) => T = (k) => k): T {
    const slot = this.slotOf(key);
    const held = this.keys[slot];
    if (held !== undefined) return held as T;
    const copy = make(key);
    this.place(slot, copy);
    return copy;
  }

  /** Empties the set and keeps its room, for the next use of the same size. */
  clear(): void {
    this.keys.fill(undefined);
    this.count = 0;
  }

  protected place(slot: number, key: string): void {
    this.keys[slot] = key;
    this.count += 1;
    if (this.count * 2 > this.keys.length) this.grow();
  }

  protected grow(): void {
    const old = this.keys;
    this.keys = new Array<string | undefined>(old.length * 2).fill(undefined);
    for (const key of old) if (key !== undefined) this.keys[this.slotOf(key)] = key;
  }
}

/** A map from digests to values, for the same passes. Iteration is in no particular order. */
export class DigestMap<V> extends DigestSet {
  private values: (V | undefined)[] = new Array<V | undefined>(INITIAL_CAPACITY).fill(undefined);

  get(key: string): V | undefined {
    return this.values[this.slotOf(key)];
  }

  set(key: string, value: V): void {
    const slot = this.slotOf(key);
    if (this.keys[slot] !== undefined) this.values[slot] = value;
    else {
      // The value goes in before the key: placing the key may grow the table, which moves both.
      this.values[slot] = value;
      this.place(slot, key);
    }
  }

  override clear(): void {
    super.clear();
    this.values.fill(undefined);
  }

  forEach(visit: (value: V, key: string) => void): void {
    for (let slot = 0; slot < this.keys.length; slot++) {
      const key = this.keys[slot];
      if (key !== undefined) visit(this.values[slot] as V, key);
    }
  }

  protected override grow(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    this.keys = new Array<string | undefined>(oldKeys.length * 2).fill(undefined);
    this.values = new Array<V | undefined>(oldKeys.length * 2).fill(undefined);
    for (let slot = 0; slot < oldKeys.length; slot++) {
      const key = oldKeys[slot];
      if (key === undefined) continue;
      const to = this.slotOf(key);
      this.keys[to] = key;
      this.values[to] = oldValues[slot];
    }
  }
}
