// Trees of small sample files, as training sets are laid out (WebDataset style: several files per sample that share
// a name up to the first dot), and the Python readers of the shards they are packed into.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');

/** Sizes from a seeded generator, so a tree has the same shape every time. */
function sizes(seed: number, min: number, max: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const unit = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return min + Math.floor(unit * (max - min + 1));
  };
}

/**
 * Writes `samples` samples under `dir`/`folder`, each as one file per extension, of random bytes and sizes in
 * [min, max]; returns every file's key (relative to `dir`) and MD5.
 */
export async function writeSamples(dir: string, o: { samples: number; folder?: string; extensions?: string[]; min?: number; max?: number; seed?: number }): Promise<Map<string, string>> {
  const next = sizes(o.seed ?? 1, o.min ?? 256, o.max ?? 16 * 1024);
  const folder = o.folder ?? 'train';
  const written = new Map<string, string>();
  const files: { key: string; bytes: Buffer }[] = [];
  for (let i = 0; i < o.samples; i++) {
    for (const ext of o.extensions ?? ['jpg', 'json', 'cls']) {
      const bytes = randomBytes(next());
      files.push({ key: `${folder}/${String(i).padStart(6, '0')}.${ext}`, bytes });
      written.set(`${folder}/${String(i).padStart(6, '0')}.${ext}`, md5(bytes));
    }
  }
  await mkdir(join(dir, folder), { recursive: true });
  for (let i = 0; i < files.length; i += 64) await Promise.all(files.slice(i, i + 64).map((f) => writeFile(join(dir, f.key), f.bytes)));
  return written;
}

/** Writes one file, making its folder; returns its MD5. */
export async function writeSample(dir: string, key: string, bytes: Buffer): Promise<string> {
  await mkdir(dirname(join(dir, key)), { recursive: true });
  await writeFile(join(dir, key), bytes);
  return md5(bytes);
}

export function md5(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

export interface ShardReadBack {
  /** Every tar member by name, as Python's tarfile reads it: MD5 of its bytes. */
  tarfile: Record<string, string>;
  /** Every sample's files as the webdataset package yields them (`key.ext`): MD5 of their bytes. */
  webdataset: Record<string, string>;
  samples: number;
}

/** Reads shard files with Python's tarfile and the webdataset package (test/helpers/read_shards.py, in .venv). */
export async function readShardsInPython(paths: string[]): Promise<ShardReadBack> {
  const { stdout } = await run(join(ROOT, '.venv', 'bin', 'python'), [join(ROOT, 'test', 'helpers', 'read_shards.py'), ...paths], { maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(stdout) as ShardReadBack;
}
