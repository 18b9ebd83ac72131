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

  /**
   * A round `delayMs` from now, however often this is called meanwhile: many changes in a
   * burst cost one round.
   */
  soon(delayMs = 1000): void {
    if (!this.started || this.pendingSoon) return;
    this.pendingSoon = setTimeout(() => {
      this.pendingSoon = undefined;
      this.runNow();
    }, delayMs).unref();
  }

  private pendingSoon?: NodeJS.Timeout;

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
    clearTimeout(this.pendingSoon);
    clearInterval(this.timer);
    await this.running;
  }
}
