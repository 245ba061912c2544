import type { IncomingMessage, ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Attributes, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import type { CallOutcome, DescriptorVerdict, EngineObserver, StoreObserver } from '../core';

export interface MetricsOptions {
  readonly region: string;
  /** Also push to an OTLP collector (OTEL_EXPORTER_OTLP_ENDPOINT), every `otlpIntervalMs`. */
  readonly otlpEndpoint?: string | undefined;
  readonly otlpIntervalMs?: number;
}

/** Buckets of the round-trip histogram: from a loopback Redis to a cross-region one. */
const ROUND_TRIP_BOUNDS_SECONDS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1];
const DRIFT_BOUNDS = [0.001, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * A counter kept in plain numbers and handed to OpenTelemetry only when metrics are collected:
 * counting on the request path is one Map lookup and an addition, with no attribute hashing.
 */
class LocalCounter {
  private readonly series = new Map<string, { attributes: Attributes; value: number }>();

  constructor(meter: Meter, name: string, description: string) {
    meter.createObservableCounter(name, { description }).addCallback((result) => {
      for (const { attributes, value } of this.series.values()) result.observe(value, attributes);
    });
  }

  /** `key` identifies `attributes` (the caller joins their values, which it has at hand). */
  add(key: string, attributes: () => Attributes, amount = 1): void {
    const entry = this.series.get(key);
    if (entry !== undefined) entry.value += amount;
    else this.series.set(key, { attributes: attributes(), value: amount });
  }
}

/**
 * ringlimit's metrics, with OpenTelemetry: scraped in Prometheus text at GET /metrics, and pushed
 * over OTLP when a collector is configured. Label values are bounded: domains are configured
 * ones (or 'unknown'), rules appear only with detailed_metric, shards and regions are few.
 */
export class Metrics implements EngineObserver, StoreObserver {
  private readonly provider: MeterProvider;
  private readonly prometheus: PrometheusExporter;
  private readonly requests: LocalCounter;
  private readonly verdicts: LocalCounter;
  private readonly conflicts: LocalCounter;
  private readonly fallbacks: LocalCounter;
  private readonly retries: LocalCounter;
  private readonly handoffs: LocalCounter;
  private readonly roundTrips: Histogram;
  private readonly drift: Histogram;
  private readonly lagGauge: ObservableGauge;
  /** `from>to` → seconds, as last measured by the heartbeat exchange. */
  private readonly lagByPair = new Map<string, { from: string; to: string; seconds: number }>();

  constructor(options: MetricsOptions) {
    this.prometheus = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
    const readers: MetricReader[] = [this.prometheus];
    if (options.otlpEndpoint !== undefined) {
      readers.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: options.otlpIntervalMs ?? 10_000 }));
    }
    this.provider = new MeterProvider({
      resource: resourceFromAttributes({ 'service.name': 'ringlimit', 'cloud.region': options.region }),
      readers,
    });
    const meter = this.provider.getMeter('ringlimit');
    this.requests = new LocalCounter(meter, 'ringlimit_rate_requests', 'Rate-limit calls (gRPC, /json, /rate) by domain and outcome (ok, over_limit, error)');
    this.verdicts = new LocalCounter(meter, 'ringlimit_rate_allowed', 'Limited descriptors by verdict (outcome: allowed, over_limit, shadow); rule label only for rules with detailed_metric');
    this.conflicts = new LocalCounter(meter, 'ringlimit_version_conflicts', 'Conditional writes whose version had moved (decided by the shard in the same round trip)');
    this.fallbacks = new LocalCounter(meter, 'ringlimit_fallback_decisions', 'Descriptors decided by a local fallback bucket because their shard did not answer');
    this.retries = new LocalCounter(meter, 'ringlimit_store_retries', 'Shard commands retried after a transient failure');
    this.handoffs = new LocalCounter(meter, 'ringlimit_shard_handoffs', 'Bucket groups handed off after a shard-list change (outcome: seeded, missed)');
    this.roundTrips = meter.createHistogram('ringlimit_store_round_trip_seconds', {
      description: 'Shard command round trips by shard, operation and outcome',
      unit: 's',
      advice: { explicitBucketBoundaries: ROUND_TRIP_BOUNDS_SECONDS },
    });
    this.drift = meter.createHistogram('ringlimit_cache_drift_ratio', {
      description: "How far the local copy of a bucket was from the shard's record when the record replaced it, as a fraction of capacity",
      advice: { explicitBucketBoundaries: DRIFT_BOUNDS },
    });
    this.lagGauge = meter.createObservableGauge('ringlimit_kv_replication_lag_seconds', {
      description: "How far behind each region's heartbeat is, as seen here through the shards (worst shard), beyond its stamping interval",
      unit: 's',
    });
    this.lagGauge.addCallback((result) => {
      for (const { from, to, seconds } of this.lagByPair.values()) result.observe(seconds, { source_region: from, region: to });
    });
    // The process itself: what a soak run watches for drift.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    meter
      .createObservableGauge('ringlimit_event_loop_delay_p99_seconds', { description: 'p99 event-loop delay since the previous collection', unit: 's' })
      .addCallback((result) => {
        result.observe(loopDelay.percentile(99) / 1e9);
        loopDelay.reset();
      });
    meter
      .createObservableGauge('ringlimit_process_resident_memory_bytes', { description: 'Resident set size of the process', unit: 'By' })
      .addCallback((result) => result.observe(process.memoryUsage.rss()));
    meter
      .createObservableGauge('ringlimit_process_heap_used_bytes', { description: 'V8 heap in use', unit: 'By' })
      .addCallback((result) => result.observe(process.memoryUsage().heapUsed));
  }

  call(domain: string, outcome: CallOutcome): void {
    this.requests.add(`${domain}\0${outcome}`, () => ({ domain, outcome }));
  }

  descriptor(domain: string, verdict: DescriptorVerdict, rule: string | undefined): void {
    this.verdicts.add(`${domain}\0${verdict}\0${rule ?? ''}`, () => (rule === undefined ? { domain, outcome: verdict } : { domain, outcome: verdict, rule }));
  }

  versionConflict(): void {
    this.conflicts.add('', () => ({}));
  }

  fallbackDecisions(count: number): void {
    this.fallbacks.add('', () => ({}), count);
  }

  cacheDrift(ratio: number): void {
    this.drift.record(ratio);
  }

  roundTrip(shard: string, operation: string, seconds: number, ok: boolean): void {
    this.roundTrips.record(seconds, { shard, operation, outcome: ok ? 'ok' : 'error' });
  }

  retry(shard: string): void {
    this.retries.add(shard, () => ({ shard }));
  }

  handoff(outcome: 'seeded' | 'missed'): void {
    this.handoffs.add(outcome, () => ({ outcome }));
  }

  /** The heartbeat lag of region `from` as seen in region `to`. */
  replicationLag(from: string, to: string, seconds: number): void {
    this.lagByPair.set(`${from}>${to}`, { from, to, seconds });
  }

  /** Answers a Prometheus scrape. */
  serve(request: IncomingMessage, response: ServerResponse): void {
    this.prometheus.getMetricsRequestHandler(request, response);
  }

  /** Pushes what OTLP has not sent yet, then stops. */
  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}
