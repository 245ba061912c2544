import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/**
 * Trace export over OTLP/HTTP, set up only when a collector is configured (the standard
 * OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_BSP_* variables apply). Without it the engine's spans
 * go to OpenTelemetry's no-op tracer. Returns what flushes and stops it.
 */
export function startTracing(options: { readonly region: string }): () => Promise<void> {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'ringlimit', 'cloud.region': options.region }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  return () => provider.shutdown();
}
