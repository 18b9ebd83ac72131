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

  start(): void {
    const tick = () => {
      this.running ??= this.round()
        .then(() => undefined, () => undefined)
        .finally(() => (this.running = undefined));
    };
    this.first = setTimeout(tick, 1000).unref();
    this.timer = setInterval(tick, this.intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.first);
    clearInterval(this.timer);
    await this.running;
  }
}
