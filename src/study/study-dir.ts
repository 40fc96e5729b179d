/**
 * A study directory, what makes a study resumable:
 *
 * - `study.json` — the manifest: schema version, task id and version, arms, seeds, settings
 *   digest. A later invocation on the same directory must name the same task, version and
 *   arms (else `STUDY_DIRECTORY_MISMATCH` naming the file); its seeds may differ (the
 *   manifest then lists the new ones).
 * - `runs/<arm>-seed<seed>.json` — one result per finished run, written atomically (temp
 *   file, fsync, rename), so a file is whole or absent. A file that does not parse or fit its
 *   schema is never skipped over silently: it is `STUDY_FILE_CORRUPT` naming the file (delete
 *   it to run that run again).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ErrorCode, EsperError, parsePersistedJson, redactSettings, type EsperSettings } from '../core/index.js';
import { ArmResultSchema, type ArmResult } from './arm-runner.js';
import { StudyArmSchema } from './protocol.js';
import { taskKey, type StudyArm, type TaskDefinition } from './tasks.js';

/** Version of `study.json` and of the run files. */
export const STUDY_DIR_SCHEMA_VERSION = 1;

/** File name of the manifest. */
export const STUDY_MANIFEST_FILE = 'study.json';

/** Directory of the run files. */
export const STUDY_RUNS_DIR = 'runs';

const ManifestSchema = z
  .object({
    schemaVersion: z.literal(STUDY_DIR_SCHEMA_VERSION),
    taskId: z.string(),
    taskVersion: z.number().int().min(1),
    arms: z.array(StudyArmSchema).min(1),
    seeds: z.array(z.number().int().min(0)).min(1),
    settingsDigest: z.string(),
    createdAt: z.string(),
  })
  .strict();

/** Contents of `study.json`. */
export type StudyManifest = z.infer<typeof ManifestSchema>;

const RunRecordSchema = z
  .object({
    schemaVersion: z.literal(STUDY_DIR_SCHEMA_VERSION),
    task: z.string(),
    arm: StudyArmSchema,
    seed: z.number().int().min(0),
    /** Attempts it took (2 when the first crashed or failed). */
    attempts: z.number().int().min(1),
    finishedAt: z.string(),
    trainingFlops: z.number().min(0),
    result: ArmResultSchema,
  })
  .strict();

/** One finished run as its file holds it. */
export interface RunRecord {
  readonly task: string;
  readonly arm: StudyArm;
  readonly seed: number;
  readonly attempts: number;
  readonly finishedAt: string;
  readonly trainingFlops: number;
  readonly result: ArmResult;
}

/** The name of a run's file: `small-seed3.json`. */
export function runFileName(arm: StudyArm, seed: number): string {
  return `${arm}-seed${seed}.json`;
}

/** SHA-256 of the redacted settings (secrets never enter the digest's input). */
export function settingsDigest(settings: EsperSettings): string {
  return `sha256:${createHash('sha256')
    .update(JSON.stringify(redactSettings(settings)))
    .digest('hex')}`;
}

/** Writes `text` to `file` through a flushed temp file and a rename: the file is whole or absent. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, text, { encoding: 'utf8', flush: true }).catch(async (error: unknown) => {
    await rm(temp, { force: true });
    throw error;
  });
  await rename(temp, file);
}

/** What a study directory is opened for. */
export interface StudyIdentity {
  readonly task: TaskDefinition;
  readonly arms: readonly StudyArm[];
  readonly seeds: readonly number[];
  readonly settings: EsperSettings;
}

/** An opened study directory. */
export interface OpenedStudyDirectory {
  readonly directory: string;
  readonly manifest: StudyManifest;
  /** Runs finished by earlier invocations, by file name. */
  readonly finished: ReadonlyMap<string, RunRecord>;
  /** The settings digest differs from the manifest's (runs were made with other settings). */
  readonly settingsChanged: boolean;
}

/**
 * Opens (or creates) the study directory `directory` for `identity`.
 * @throws EsperError STUDY_DIRECTORY_MISMATCH when it holds another task, version or arms
 * @throws EsperError STUDY_FILE_CORRUPT naming a manifest or run file that is unreadable
 */
export async function openStudyDirectory(directory: string, identity: StudyIdentity): Promise<OpenedStudyDirectory> {
  await mkdir(path.join(directory, STUDY_RUNS_DIR), { recursive: true });
  const manifestFile = path.join(directory, STUDY_MANIFEST_FILE);
  const digest = settingsDigest(identity.settings);
  const existing = await readManifest(manifestFile);
  const { task } = identity;
  if (existing !== undefined) {
    const sameArms = existing.arms.length === identity.arms.length && existing.arms.every((a, i) => a === identity.arms[i]);
    if (existing.taskId !== task.id || existing.taskVersion !== task.version || !sameArms) {
      throw new EsperError(
        ErrorCode.STUDY_DIRECTORY_MISMATCH,
        `${manifestFile} holds a study of ${existing.taskId}@${existing.taskVersion} with arms ${existing.arms.join(', ')}; ` +
          `this one is ${taskKey(task)} with arms ${identity.arms.join(', ')} (use another directory)`,
        { details: { file: manifestFile, task: `${existing.taskId}@${existing.taskVersion}` } },
      );
    }
  }
  const manifest: StudyManifest = {
    schemaVersion: STUDY_DIR_SCHEMA_VERSION,
    taskId: task.id,
    taskVersion: task.version,
    arms: [...identity.arms],
    seeds: [...identity.seeds],
    settingsDigest: existing?.settingsDigest ?? digest,
    createdAt: existing?.createdAt ?? new Date().toISOString(),
  };
  await writeFileAtomic(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  return {
    directory,
    manifest,
    finished: await readRunRecords(directory, taskKey(task)),
    settingsChanged: manifest.settingsDigest !== digest,
  };
}

async function readManifest(file: string): Promise<StudyManifest | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return parsePersistedJson(ManifestSchema, text, {
    code: ErrorCode.STUDY_FILE_CORRUPT,
    what: `study manifest ${file}`,
    details: { file },
  });
}

/** Every run file of the directory, checked. */
async function readRunRecords(directory: string, key: string): Promise<Map<string, RunRecord>> {
  const runsDir = path.join(directory, STUDY_RUNS_DIR);
  const records = new Map<string, RunRecord>();
  for (const name of (await readdir(runsDir)).sort()) {
    if (!name.endsWith('.json')) continue;
    const file = path.join(runsDir, name);
    const record = parsePersistedJson(RunRecordSchema, await readFile(file), {
      code: ErrorCode.STUDY_FILE_CORRUPT,
      what: `study run file ${file} (delete it to run that run again)`,
      details: { file },
    });
    if (record.task !== key || name !== runFileName(record.arm, record.seed)) {
      throw new EsperError(
        ErrorCode.STUDY_FILE_CORRUPT,
        `study run file ${file} holds ${record.task} ${record.arm} seed ${record.seed}, not what its name says`,
        {
          details: { file },
        },
      );
    }
    const { schemaVersion: _version, ...run } = record;
    records.set(name, run);
  }
  return records;
}

/** Writes a finished run's file (atomically). */
export async function writeRunRecord(directory: string, record: RunRecord): Promise<string> {
  const file = path.join(directory, STUDY_RUNS_DIR, runFileName(record.arm, record.seed));
  const persisted = { schemaVersion: STUDY_DIR_SCHEMA_VERSION, ...record };
  RunRecordSchema.parse(persisted);
  await writeFileAtomic(file, `${JSON.stringify(persisted, null, 2)}\n`);
  return file;
}
