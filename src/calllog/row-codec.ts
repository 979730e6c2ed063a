/**
 * How a call-log row crosses the {@link ByteRing} to the log thread: the row values of
 * {@link entryParams}, as UTF-8, in three parts so the two JSON columns are never escaped twice.
 *
 *   u32 flat bytes | u32 trace bytes | u32 replay bytes (NULL_PART when null) | flat | trace | replay
 *
 * `flat` is the JSON array of the row with the trace and replay positions set to null. Every
 * other value is a string, a finite number or null (entryParams makes booleans 0/1), so
 * JSON.parse returns exactly what was encoded: numbers print as the shortest string that reads
 * back to the same double (https://tc39.es/ecma262/#sec-numeric-types-number-tostring).
 */
import type { SQLInputValue } from 'node:sqlite';
import type { CallLogEntry } from './types.ts';
import { entryParams, REPLAY_COLUMN, TRACE_COLUMN } from './sqlite.ts';
import type { ByteRing } from './ring.ts';

const NULL_PART = 0xffffffff;
const PREFIX = 12;

/** The three strings of one row, made on the request thread while the entry is still hot in cache. */
export interface EncodedRow {
  readonly flat: string;
  readonly trace: string;
  readonly replay: string | null;
}

export function encodeRow(e: CallLogEntry): EncodedRow {
  const row = entryParams(e);
  const trace = row[TRACE_COLUMN] as string;
  const replay = row[REPLAY_COLUMN] as string | null;
  row[TRACE_COLUMN] = null;
  row[REPLAY_COLUMN] = null;
  return { flat: JSON.stringify(row), trace, replay };
}

/** An upper bound of the payload's size: UTF-8 takes at most 3 bytes per UTF-16 code unit. */
export function maxPayloadBytes(r: EncodedRow): number {
  return PREFIX + 3 * (r.flat.length + r.trace.length + (r.replay?.length ?? 0));
}

export function exactPayloadBytes(r: EncodedRow): number {
  return PREFIX + Buffer.byteLength(r.flat) + Buffer.byteLength(r.trace) + (r.replay === null ? 0 : Buffer.byteLength(r.replay));
}

/** Writes the payload at `at` in `buf` (room checked by the caller) and returns its length. */
export function writeRow(buf: Buffer, at: number, r: EncodedRow): number {
  let p = at + PREFIX;
  const flat = buf.write(r.flat, p, 'utf8');
  p += flat;
  const trace = buf.write(r.trace, p, 'utf8');
  p += trace;
  const replay = r.replay === null ? NULL_PART : buf.write(r.replay, p, 'utf8');
  if (r.replay !== null) p += replay;
  buf.writeUInt32LE(flat, at);
  buf.writeUInt32LE(trace, at + 4);
  buf.writeUInt32LE(replay, at + 8);
  return p - at;
}

/** Reads a payload written by {@link writeRow} back into a row for SqliteCallLogStore.insertParamRows. */
export function readRow(ring: ByteRing, at: number, bytes: number): SQLInputValue[] {
  const buf = ring.data;
  const flat = buf.readUInt32LE(at);
  const trace = buf.readUInt32LE(at + 4);
  const replay = buf.readUInt32LE(at + 8);
  const size = PREFIX + flat + trace + (replay === NULL_PART ? 0 : replay);
  if (size !== bytes) throw new Error(`call log ring: a record of ${bytes} bytes declares ${size}`);
  let p = at + PREFIX;
  const row = JSON.parse(buf.toString('utf8', p, p + flat)) as SQLInputValue[];
  p += flat;
  row[TRACE_COLUMN] = buf.toString('utf8', p, p + trace);
  p += trace;
  row[REPLAY_COLUMN] = replay === NULL_PART ? null : buf.toString('utf8', p, p + replay);
  return row;
}
