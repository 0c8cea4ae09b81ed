// The server's Prometheus metrics (prom-client), in a registry of its own so
// that several servers in one process (tests) do not share counters.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Scheduler } from './scheduler';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'endpoint' | 'status'>;
  readonly promptTokens: Counter;
  readonly generatedTokens: Counter;
  readonly requestSeconds: Histogram<'endpoint'>;
  readonly ttftSeconds: Histogram;
  readonly stepSeconds: Histogram;
  // (time, tokens) of the steps of the last window, for the tokens/s gauge
  private readonly recent: { t: number; n: number }[] = [];
  private static readonly WINDOW_MS = 10_000;

  constructor(scheduler: Scheduler) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'qkernels_' });
    this.requests = new Counter({ name: 'qkernels_requests_total', help: 'HTTP requests answered, by endpoint and status code', labelNames: ['endpoint', 'status'], registers });
    this.promptTokens = new Counter({ name: 'qkernels_prompt_tokens_total', help: 'prompt tokens of completed requests', registers });
    this.generatedTokens = new Counter({ name: 'qkernels_generated_tokens_total', help: 'tokens generated', registers });
    this.requestSeconds = new Histogram({
      name: 'qkernels_request_duration_seconds',
      help: 'time from a completion request to its last byte',
      labelNames: ['endpoint'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.ttftSeconds = new Histogram({ name: 'qkernels_time_to_first_token_seconds', help: 'time from a request to its first generated token, queueing included', buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
    this.stepSeconds = new Histogram({ name: 'qkernels_step_duration_seconds', help: 'one batched decode step', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
    new Gauge({ name: 'qkernels_queue_depth', help: 'requests waiting for a slot', registers, collect() { this.set(scheduler.queuedCount); } });
    new Gauge({ name: 'qkernels_active_requests', help: 'requests holding a slot', registers, collect() { this.set(scheduler.activeCount); } });
    new Gauge({ name: 'qkernels_slots', help: 'KV cache slots (--parallel)', registers, collect() { this.set(scheduler.parallel); } });
    const recent = this.recent;
    new Gauge({
      name: 'qkernels_tokens_per_second',
      help: 'tokens generated per second over the last 10 s',
      registers,
      collect() {
        const now = performance.now();
        while (recent.length > 0 && recent[0].t < now - ServerMetrics.WINDOW_MS) recent.shift();
        let n = 0;
        for (const r of recent) n += r.n;
        this.set((n * 1000) / ServerMetrics.WINDOW_MS);
      },
    });
    scheduler.onStep = (s) => {
      this.stepSeconds.observe(s.ms / 1000);
      this.generatedTokens.inc(s.generated);
      const now = performance.now();
      recent.push({ t: now, n: s.generated });
      while (recent.length > 0 && recent[0].t < now - ServerMetrics.WINDOW_MS) recent.shift();
    };
  }
}
