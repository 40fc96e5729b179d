/**
 * The catalog database refuses every file it cannot trust with `URZA_STORAGE_INVALID`
 * naming the file — real SQLite files in temp dirs, damaged the way disks and people damage them.
 */
import { chmod, mkdir, mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { BlueprintDescriptorSchema } from '../../src/leyline/index.js';
import { CatalogDb, URZA_SCHEMA_VERSION, type ArtifactRow } from '../../src/urza/catalog-db.js';
import { UrzaStorageReason } from '../../src/urza/storage-error.js';

let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'urza-catalog-'));
  file = path.join(dir, 'catalog.db');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function artifactRow(blueprintId: string, i: number): ArtifactRow {
  return {
    blueprint_id: blueprintId,
    site_key: `dense:${i}`,
    file_name: `${String(i).padStart(64, '0')}.esa`,
    checksum: String(i).padStart(64, '0'),
    guard_digest: 'g'.repeat(64),
    size_bytes: 100,
    compile_ms: 1,
    prewarm_p50_ms: 1,
    prewarm_p95_ms: 2,
    created_at_ms: 0,
  };
}

/** A catalog with `count` blueprints (one artifact each), closed, its WAL checkpointed into the file. */
function writeCatalog(count: number): void {
  const db = CatalogDb.open(file);
  for (let i = 0; i < count; i += 1) {
    const id = `BP${String(i).padStart(3, '0')}`;
    const descriptor = Buffer.from(
      toBinary(BlueprintDescriptorSchema, create(BlueprintDescriptorSchema, { blueprintId: id, name: 'x'.repeat(200) })),
    );
    db.transaction(() => {
      db.upsertBlueprint({ blueprintId: id, descriptor, tier: 1, family: 'residual_mlp', nowMs: 0 });
      db.putArtifact(artifactRow(id, i));
    });
  }
  db.close();
}

function openError(): unknown {
  try {
    CatalogDb.open(file).close();
  } catch (error) {
    return error;
  }
  return undefined;
}

function expectStorageError(error: unknown, reason: UrzaStorageReason, where = file): void {
  expect(isEsperError(error, ErrorCode.URZA_STORAGE_INVALID), String(error)).toBe(true);
  expect((error as { details: Record<string, unknown> }).details).toMatchObject({ path: where, reason });
  expect((error as Error).message).toContain(where);
}

describe('CatalogDb', () => {
  it('creates the schema in a new file and reopens it, rows intact', () => {
    writeCatalog(3);
    const db = CatalogDb.open(file);
    expect(db.list({}).map((row) => [row.blueprint_id, row.siteKeys])).toEqual([
      ['BP000', ['dense:0']],
      ['BP001', ['dense:1']],
      ['BP002', ['dense:2']],
    ]);
    expect(db.artifact('BP001', 'dense:1')).toEqual(artifactRow('BP001', 1));
    expect(db.referencedFiles().size).toBe(3);
    db.close();
  });

  it.each([0.5, 0.1, 0.02])('refuses a catalog truncated to %s of its size, naming the file', async (fraction) => {
    writeCatalog(60);
    const size = (await stat(file)).size;
    expect(size).toBeGreaterThan(8192);
    await truncate(file, Math.floor(size * fraction));
    expectStorageError(openError(), UrzaStorageReason.CORRUPT);
  });

  it('refuses a file that is not a SQLite database', async () => {
    await writeFile(file, 'not a database '.repeat(100));
    expectStorageError(openError(), UrzaStorageReason.CORRUPT);
  });

  it('refuses a database of another schema version, and another program’s database', async () => {
    writeCatalog(1);
    const raw = new Database(file);
    raw.pragma(`user_version = ${URZA_SCHEMA_VERSION + 1}`);
    raw.close();
    const error = openError();
    expectStorageError(error, UrzaStorageReason.SCHEMA_VERSION);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({
      found: URZA_SCHEMA_VERSION + 1,
      expected: URZA_SCHEMA_VERSION,
    });

    const foreign = path.join(dir, 'foreign.db');
    const other = new Database(foreign);
    other.exec('CREATE TABLE notes (body TEXT)');
    other.close();
    file = foreign;
    expectStorageError(openError(), UrzaStorageReason.FOREIGN_DATABASE);
  });

  it('refuses a directory where the database file should be', async () => {
    await mkdir(file);
    expectStorageError(openError(), UrzaStorageReason.UNREADABLE);
  });

  it.skipIf(process.getuid?.() === 0)('refuses a database file it may not read (permissions)', async () => {
    writeCatalog(1);
    await chmod(file, 0o000);
    expectStorageError(openError(), UrzaStorageReason.UNREADABLE);
  });

  it('names the file when a statement fails after opening (a table dropped by another program)', () => {
    writeCatalog(2);
    const db = CatalogDb.open(file);
    const other = new Database(file);
    other.exec('DROP TABLE artifacts');
    other.close();
    let caught: unknown;
    try {
      db.artifacts('BP001');
    } catch (error) {
      caught = error;
    }
    db.close();
    expectStorageError(caught, UrzaStorageReason.SQLITE_ERROR);
    expect((caught as { details: Record<string, unknown> }).details['sqliteCode']).toBe('SQLITE_ERROR');
  });
});
