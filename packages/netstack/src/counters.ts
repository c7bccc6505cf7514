/** Named event counters (drops by reason, packets by layer), read as a plain object. */
export class Counters {
  private readonly values = new Map<string, number>();

  add(name: string, n = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + n);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  /** Sum of all counters whose name starts with `prefix`. */
  total(prefix: string): number {
    let sum = 0;
    for (const [name, value] of this.values) if (name.startsWith(prefix)) sum += value;
    return sum;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.values].sort(([a], [b]) => a.localeCompare(b)));
  }
}
