/**
 * Runs `round` a second after start and then every `intervalMs`, never two rounds at once.
 * Timers do not keep the process alive; `stop` waits for a round in progress.
 */
export class Periodic {
  private timer?: NodeJS.Timeout;
  private first?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly intervalMs: number,
    private readonly round: () => Promise<unknown>,
  ) {}

  private again = false;
  private started = false;

  start(): void {
    this.started = true;
    this.first = setTimeout(() => this.tick(), 1000).unref();
    this.timer = setInterval(() => this.tick(), this.intervalMs).unref();
  }

  /** A round now (or right after the one in progress), without waiting for the interval. */
  runNow(): void {
    if (!this.started) return;
    if (this.running) this.again = true;
    else this.tick();
  }

  private tick(): void {
    this.running ??= this.round()
      .then(() => undefined, () => undefined)
      .finally(() => {
        this.running = undefined;
        if (this.again && this.started) {
          this.again = false;
          this.tick();
        }
      });
  }

  async stop(): Promise<void> {
    this.started = false;
    clearTimeout(this.first);
    clearInterval(this.timer);
    await this.running;
  }
}
