/**
 * FieldReportStore over RecordLog: durable append and reopen, torn-tail recovery with
 * telemetry, retention by rewrite, and delivery states (published / retry / dropped) that
 * survive a reopen.
 */
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink, RecordLog } from '../../src/core/index.js';
import { TelemetryLevel } from '../../src/leyline/index.js';
import { FieldReportDelivery, FieldReportStore } from '../../src/tamiyo/field-report-store.js';
import { FieldReportEvent } from '../../src/tamiyo/names.js';
import { sampleReport } from './fixtures/field-report-samples.js';

const dirs: string[] = [];
const stores: FieldReportStore[] = [];

async function tempPath(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'esper-fr-store-'));
  dirs.push(dir);
  return path.join(dir, 'field_reports.log');
}

async function open(file: string, telemetry?: MemoryTelemetrySink): Promise<FieldReportStore> {
  const store = await FieldReportStore.open(file, telemetry === undefined ? {} : { telemetry, clock: new FakeClock() });
  stores.push(store);
  return store;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('FieldReportStore', () => {
  it('round-trips reports through close and reopen, in append order', async () => {
    const file = await tempPath();
    const store = await open(file);
    const reports = Array.from({ length: 50 }, (_, i) => sampleReport(i));
    await Promise.all(reports.map((r) => store.append(r)));
    expect(store.reports()).toEqual(reports);
    await store.close();

    const reopened = await open(file);
    expect(reopened.reports()).toEqual(reports);
    expect(reopened.recovery).toMatchObject({ reports: 50, duplicateReports: 0 });
    expect(reopened.recovery.reportLog.truncatedTailBytes).toBe(0);
    expect(reopened.pending().map((p) => p.report.reportId)).toEqual(reports.map((r) => r.reportId));
  });

  it('rejects a duplicate or id-less report with TAMIYO_FIELD_REPORT_INVALID and writes nothing', async () => {
    const store = await open(await tempPath());
    const report = sampleReport(1);
    await store.append(report);
    expect(isEsperError(await rejectionOf(store.append(report)), ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
    const concurrent = sampleReport(2);
    const first = store.append(concurrent);
    expect(isEsperError(await rejectionOf(store.append(concurrent)), ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
    await first;
    const noId = sampleReport(3);
    noId.reportId = '';
    const error = await rejectionOf(store.append(noId));
    expect(isEsperError(error, ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details['field']).toBe('report_id');
    expect(store.reports()).toHaveLength(2);
    expect(store.stats().appends).toBe(2);
  });

  it('recovers from a torn tail: keeps every complete report, reports the cut bytes and emits WARNING telemetry', async () => {
    const file = await tempPath();
    const store = await open(file);
    const reports = Array.from({ length: 10 }, (_, i) => sampleReport(i));
    for (const r of reports) await store.append(r);
    await store.close();
    const sizeBefore = (await stat(file)).size;
    // A crash mid-write: a partial frame (header + a few payload bytes) at the end.
    const bytes = await readFile(file);
    await appendFile(file, bytes.subarray(0, 20));

    const telemetry = new MemoryTelemetrySink();
    const reopened = await open(file, telemetry);
    expect(reopened.reports()).toEqual(reports);
    expect(reopened.recovery.reports).toBe(10);
    expect(reopened.recovery.reportLog.truncatedTailBytes).toBe(20);
    expect(reopened.recovery.reportLog.tornTailOffset).toBe(sizeBefore);
    expect((await stat(file)).size).toBe(sizeBefore);
    const events = telemetry.events(FieldReportEvent.STORE_RECOVERED);
    expect(events).toHaveLength(1);
    expect(events[0]!.level).toBe(TelemetryLevel.WARNING);
    expect(events[0]!.attributes).toMatchObject({ reports: '10', truncated_tail_bytes: '20' });
    // Appends continue right after the last complete record.
    const next = sampleReport(10);
    await reopened.append(next);
    await reopened.close();
    expect((await open(file)).reports()).toEqual([...reports, next]);
  });

  it('retention rewrites the log keeping new reports and reports without issued_at', async () => {
    const file = await tempPath();
    const store = await open(file);
    const now = Date.UTC(2026, 0, 2);
    const old = [sampleReport(0, { issuedAtMs: now - 25 * 3_600_000 }), sampleReport(1, { issuedAtMs: now - 48 * 3_600_000 })];
    const fresh = [sampleReport(2, { issuedAtMs: now - 3_600_000 }), sampleReport(3, { issuedAtMs: now })];
    const undated = sampleReport(4, { issuedAtMs: null });
    for (const r of [old[0]!, fresh[0]!, undated, old[1]!, fresh[1]!]) await store.append(r);
    await store.markPublished(old[0]!.reportId);
    await store.markPublished(fresh[0]!.reportId);

    const result = await store.retain(now, 24 * 3_600_000);
    expect(result).toMatchObject({ kept: 3, dropped: 2, statusRecords: 1 });
    const expected = [fresh[0]!, undated, fresh[1]!].map((r) => r.reportId);
    expect(store.reports().map((r) => r.reportId)).toEqual(expected);
    // Appends after retention land in the rewritten file.
    const later = sampleReport(5, { issuedAtMs: now });
    await store.append(later);
    await store.close();

    const reopened = await open(file);
    expect(reopened.reports().map((r) => r.reportId)).toEqual([...expected, later.reportId]);
    expect(reopened.status(fresh[0]!.reportId)?.delivery).toBe(FieldReportDelivery.PUBLISHED);
    expect(reopened.recovery.orphanStatusRecords).toBe(0);
    expect(isEsperError(await rejectionOf(reopened.retain(now, -1)), ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });

  it('keeps published, retry and dropped states across reopen; pending lists only the rest', async () => {
    const file = await tempPath();
    const store = await open(file);
    const [a, b, c, d] = [0, 1, 2, 3].map((i) => sampleReport(i));
    for (const r of [a!, b!, c!, d!]) await store.append(r);
    await store.markPublished(a!.reportId);
    await store.markRetry(b!.reportId, { attempts: 2, nextAttemptAtMs: 12_345, lastError: 'store down' });
    await store.markRetry(c!.reportId, { attempts: 1, nextAttemptAtMs: 1, lastError: 'x' });
    await store.markDropped(c!.reportId, { attempts: 4, lastError: 'gave up' });
    await store.close();

    const reopened = await open(file);
    expect(reopened.status(a!.reportId)).toMatchObject({ delivery: 'published' });
    expect(reopened.status(b!.reportId)).toEqual({ delivery: 'pending', attempts: 2, nextAttemptAtMs: 12_345, lastError: 'store down' });
    expect(reopened.status(c!.reportId)).toMatchObject({ delivery: 'dropped', attempts: 4, lastError: 'gave up' });
    expect(reopened.pending().map((p) => p.report.reportId)).toEqual([b!.reportId, d!.reportId]);
    expect(reopened.stats()).toMatchObject({ reports: 4, pending: 2, published: 1, dropped: 1 });

    // A dropped report stays dropped; a published one is idempotent; unknown ids are typed errors.
    expect(isEsperError(await rejectionOf(reopened.markPublished(c!.reportId)), ErrorCode.INVALID_STATE)).toBe(true);
    await reopened.markPublished(a!.reportId);
    expect(
      isEsperError(
        await rejectionOf(reopened.markRetry(a!.reportId, { attempts: 1, nextAttemptAtMs: 0, lastError: '' })),
        ErrorCode.INVALID_STATE,
      ),
    ).toBe(true);
    expect(isEsperError(await rejectionOf(reopened.markPublished('fr-missing')), ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
  });

  it('refuses to open a log whose records are not field reports, naming the offset', async () => {
    const file = await tempPath();
    const store = await open(file);
    await store.append(sampleReport(0));
    await store.close();
    // A valid status log record that is not JSON.
    const statusFile = `${file}.status`;
    const log = await RecordLog.open(statusFile);
    await log.append(new Uint8Array([1, 2, 3]));
    await log.close();
    const error = await rejectionOf(FieldReportStore.open(file));
    expect(isEsperError(error, ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details['offset']).toBe(0);
    // And a report log holding a garbage protobuf record.
    await writeFile(statusFile, new Uint8Array());
    const log2 = await RecordLog.open(file);
    await log2.append(new Uint8Array([0xff, 0xff, 0xff]));
    await log2.close();
    expect(isEsperError(await rejectionOf(FieldReportStore.open(file)), ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
  });

  it.each([
    ['a mistyped attempt count', { v: 1, id: 'fr-x', s: 'retry', a: 'two', n: 0, e: '' }, '$.a'],
    ['an unknown delivery state', { v: 1, id: 'fr-x', s: 'lost', a: 0, n: 0, e: '' }, '$.s'],
    ['another record version', { v: 2, id: 'fr-x', s: 'retry', a: 0, n: 0, e: '' }, '$.v'],
    ['an extra field', { v: 1, id: 'fr-x', s: 'retry', a: 0, n: 0, e: '', x: 1 }, '$'],
  ])('refuses a status record with %s, naming the file, the offset and the field', async (_what, record, paths) => {
    const file = await tempPath();
    const store = await open(file);
    await store.append(sampleReport(0));
    await store.close();
    const log = await RecordLog.open(`${file}.status`);
    await log.append(new TextEncoder().encode(JSON.stringify(record)));
    await log.close();
    const error = await rejectionOf(FieldReportStore.open(file));
    expect(isEsperError(error, ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ path: `${file}.status`, offset: 0, paths });
    expect((error as Error).message).toContain(`${file}.status`);
  });

  it('close is idempotent and later appends fail with RECORD_LOG_CLOSED', async () => {
    const store = await open(await tempPath());
    const first = store.close();
    expect(store.close()).toBe(first);
    await first;
    expect(isEsperError(await rejectionOf(store.append(sampleReport(0))), ErrorCode.RECORD_LOG_CLOSED)).toBe(true);
  });
});
