/**
 * The record format of Simic's replay log: a fixed 25-byte header, then the FieldReport
 * protobuf. Header (little-endian): version u8 (= 1), sequence f64, receivedAtMs f64,
 * addedAtMs f64. The sequence orders adds and lets compaction keep a record without
 * decoding its report; `addedAtMs` is the buffer's clock at the add, so that replaying the
 * log at open expires entries exactly as the live buffer did (see `ReplayBuffer`).
 */
import { decodeMessage, encodeMessage, ErrorCode, EsperError, isEsperError } from '../core/index.js';
import { FieldReportSchema, type FieldReport } from '../leyline/index.js';

/** Version byte of a replay record. */
export const REPLAY_RECORD_VERSION = 1;

/** Bytes before the report. */
export const REPLAY_RECORD_HEADER_BYTES = 25;

/** One add, as logged. */
export interface ReplayRecord {
  readonly sequence: number;
  readonly receivedAtMs: number;
  readonly addedAtMs: number;
  readonly report: FieldReport;
}

/** Encodes `record` (the report through the contract-checked codec). */
export function encodeReplayRecord(record: ReplayRecord): Uint8Array {
  const body = encodeMessage(FieldReportSchema, record.report);
  const out = new Uint8Array(REPLAY_RECORD_HEADER_BYTES + body.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, REPLAY_RECORD_VERSION);
  view.setFloat64(1, record.sequence, true);
  view.setFloat64(9, record.receivedAtMs, true);
  view.setFloat64(17, record.addedAtMs, true);
  out.set(body, REPLAY_RECORD_HEADER_BYTES);
  return out;
}

function invalid(message: string, logPath: string, offset: number, cause?: unknown): EsperError {
  return new EsperError(ErrorCode.SIMIC_REPLAY_INVALID, `log ${logPath}: record at offset ${offset} ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { path: logPath, offset },
  });
}

/** Reads only the sequence number of a record (compaction's keep test). */
export function replayRecordSequence(payload: Uint8Array, logPath: string, offset: number): number {
  checkHeader(payload, logPath, offset);
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getFloat64(1, true);
}

function checkHeader(payload: Uint8Array, logPath: string, offset: number): void {
  if (payload.length < REPLAY_RECORD_HEADER_BYTES) throw invalid(`is ${payload.length} bytes, shorter than its header`, logPath, offset);
  if (payload[0] !== REPLAY_RECORD_VERSION) throw invalid(`has unknown version ${payload[0]}`, logPath, offset);
}

/**
 * Decodes one record.
 * @throws EsperError SIMIC_REPLAY_INVALID naming the file and offset.
 */
export function decodeReplayRecord(payload: Uint8Array, logPath: string, offset: number): ReplayRecord {
  checkHeader(payload, logPath, offset);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const sequence = view.getFloat64(1, true);
  const receivedAtMs = view.getFloat64(9, true);
  const addedAtMs = view.getFloat64(17, true);
  if (![sequence, receivedAtMs, addedAtMs].every(Number.isFinite)) throw invalid('has a non-finite header field', logPath, offset);
  const report = decodeFieldReport(payload.subarray(REPLAY_RECORD_HEADER_BYTES), logPath, offset);
  return { sequence, receivedAtMs, addedAtMs, report };
}

/**
 * Decodes a FieldReport read from `logPath` at `offset` (a replay record's body or a
 * Tamiyo WAL record) and checks it has a report id.
 * @throws EsperError SIMIC_REPLAY_INVALID naming the file and offset.
 */
export function decodeFieldReport(bytes: Uint8Array, logPath: string, offset: number): FieldReport {
  let report: FieldReport;
  try {
    report = decodeMessage(FieldReportSchema, bytes);
  } catch (error) {
    if (!isEsperError(error)) throw error;
    throw invalid(`is not a valid FieldReport (${error.code})`, logPath, offset, error);
  }
  if (report.reportId === '') throw invalid('holds a FieldReport without report_id', logPath, offset);
  return report;
}
