/**
 * Occurrences said at once the first time, then once a period at most: how many, and a few of
 * them. A flood (strangers scanning names, an origin down under load) costs a log line a minute.
 */
export class Tally {
  private count = 0;
  private readonly examples = new Set<string>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly say: (count: number, examples: string[]) => void,
    private readonly everyMs = 60_000,
    private readonly keep = 5,
  ) {}

  note(example?: string): void {
    this.count++;
    if (example !== undefined && this.examples.size < this.keep) this.examples.add(example);
    if (this.timer) return;
    this.flush();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.everyMs);
    this.timer.unref();
  }

  private flush(): void {
    if (!this.count) return;
    this.say(this.count, [...this.examples]);
    this.count = 0;
    this.examples.clear();
  }
}
