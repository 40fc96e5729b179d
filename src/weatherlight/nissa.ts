/**
 * Nissa composed from settings: its bus consumer (`NissaService`) with metrics tuned by
 * `settings.nissa`, and its HTTP server on `nissa.httpHost:nissa.httpPort` — embedded in
 * `esper run` (on the run's in-process bus) or as `esper serve nissa` (on Redis). When the
 * configured port is taken (another run's Nissa), a free port is used and the URL says so.
 */
import { closeOnce, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { NissaMetrics, NissaService, startNissaHttp, type NissaHttp } from '../nissa/index.js';
import type { Bus } from '../oona/index.js';

/** What {@link openNissa} is given; the bus is not closed by Nissa. */
export interface NissaDeps {
  readonly bus: Bus;
  /** Where Nissa's own problems are reported. */
  readonly telemetry: TelemetrySink;
  /** Consumer name. @default `nissa-<pid>` */
  readonly consumer?: string;
}

/** A running Nissa. */
export interface OpenedNissa extends AsyncDisposable {
  readonly service: NissaService;
  readonly http: NissaHttp;
  /** Where it serves (`http://host:port`). */
  readonly url: string;
  /** Whether the configured port was taken and another one is used. */
  readonly movedPort: boolean;
  /** Stops reading the bus, then the server. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts Nissa: subscribes to the bus, then listens.
 * @throws EsperError from the bus; the server's listen error other than a taken port
 */
export async function openNissa(settings: EsperSettings, deps: NissaDeps): Promise<OpenedNissa> {
  const metrics = new NissaMetrics({ bsdsElevatedRiskThreshold: settings.nissa.bsdsElevatedRiskThreshold });
  const service = new NissaService({
    bus: deps.bus,
    metrics,
    telemetry: deps.telemetry,
    ...(deps.consumer === undefined ? {} : { consumer: deps.consumer }),
  });
  await service.start();
  try {
    const start = (port: number) =>
      startNissaHttp({
        host: settings.nissa.httpHost,
        port,
        metrics,
        health: () => ({ ingested: service.stats().ingested }),
        summary: () => ({ slo: {}, alerts: {} }),
      });
    let movedPort = false;
    let http: NissaHttp;
    try {
      http = await start(settings.nissa.httpPort);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      http = await start(0);
      movedPort = true;
    }
    const opened = http;
    const close = closeOnce(() => runCleanup('nissa', [() => service.close(), () => opened.close()]));
    return { service, http, url: http.url, movedPort, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await service.close();
    throw error;
  }
}
