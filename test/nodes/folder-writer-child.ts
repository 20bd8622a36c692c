// A process that stores chunks in a folder node, for the index tests: `node folder-writer-child.ts <node dir>
// <source dir> <id prefix> <count> [<shared count>]`. Writes `count` chunks named `<prefix>-<i>` and then `shared`
// chunks named `shared-<i>` (the same bytes whoever writes them), 8 at a time, through writeFromFile (copied, hashed
// and renamed on a hashing thread), and prints `stored <id>` once each is acknowledged.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { FolderNode } from '../../electron/engine/nodes/folder-node.ts';
import { bytesOfId } from './chunks.ts';

const [dir, sourceDir, prefix, countText, sharedText] = process.argv.slice(2) as (string | undefined)[];
if (!dir || !sourceDir || !prefix || !countText) throw new Error('usage: folder-writer-child.ts <node dir> <source dir> <prefix> <count> [<shared>]');
const sources: string = sourceDir;
const ids = [...Array.from({ length: Number(countText) }, (_, i) => `${prefix}-${i}`), ...Array.from({ length: Number(sharedText ?? 0) }, (_, i) => `shared-${i}`)];

const pool = new HashPool(2);
const node = new FolderNode('child', dir);
let next = 0;
async function lane(): Promise<void> {
  while (next < ids.length) {
    const id = ids[next++]!;
    const bytes = bytesOfId(id);
    const source = join(sources, `${prefix}-${id}.bin`);
    await writeFile(source, bytes);
    await node.writeFromFile({ id, file: `files/${id}`, index: 0, offset: 0, size: bytes.length }, { path: source, offset: 0, length: bytes.length }, { pool, algorithm: 'md5' });
    process.stdout.write(`stored ${id}\n`);
  }
}
await Promise.all(Array.from({ length: 8 }, lane));
await node.close();
await pool.close();
