// Counts objects of one constructor on this thread's heap, from a heap snapshot (which collects garbage first): for
// tests that a long-lived object keeps nothing per operation.
import { getHeapSnapshot } from 'node:v8';

interface SnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

export async function liveObjectsNamed(name: string): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const chunk of getHeapSnapshot()) chunks.push(chunk as Buffer);
  const snapshot = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SnapshotJson;
  const fields = snapshot.snapshot.meta.node_fields;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const objectType = snapshot.snapshot.meta.node_types[0].indexOf('object');
  let count = 0;
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    if (snapshot.nodes[i + typeAt] === objectType && snapshot.strings[snapshot.nodes[i + nameAt]!] === name) count++;
  }
  return count;
}
