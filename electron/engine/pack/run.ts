// Packing as an ingest run sees it: shards planned as chunks, their members' checksums carried on the delivered
// chunk (and so in the journal), and each packed file's manifest entry built from its shard.
import type { ChecksumAlgorithm, IngestionConfig } from '../../../shared/config/types.ts';
import { MIB } from '../../../shared/config/types.ts';
import type { ManifestChunk, ManifestFile, PackedMember } from '../../../shared/types.ts';
import type { PlannedChunk } from '../chunks.ts';
import type { JournalState } from '../journal.ts';
import type { ObjectInfo, SourceInfo } from '../storage/driver.ts';
import { sameChecksum, sourceChecksumPlans } from '../storage/source-checksum.ts';
import type { DeliveredShard, ShardLayout } from './plan.ts';

export function packBelowBytes(ingestion: Pick<IngestionConfig, 'pack_below_mb'>): number {
  return Math.round((ingestion.pack_below_mb ?? 0) * MIB);
}

/** Each shard as one chunk of its own: its id, its bytes, its version (the members' digest). */
export function shardChunks(shards: readonly ShardLayout[]): PlannedChunk[] {
  return shards.map((shard) => ({ id: shard.id, object: { key: shard.id, size: shard.size, etag: shard.version }, index: 0, offset: 0, size: shard.size, shard }));
}

/** The shards a resumed run's journal says were delivered, with their members. */
export function deliveredShards(journal: JournalState | undefined): DeliveredShard[] {
  if (!journal) return [];
  const shards: DeliveredShard[] = [];
  for (const { chunk } of journal.chunks.values()) if (chunk.members) shards.push({ id: chunk.id, members: chunk.members });
  return shards;
}

/** The delivered shard with its members (keys, versions, offsets and checksums), as the journal keeps it. */
export function withMembers(done: ManifestChunk, shard: ShardLayout, checksums: readonly string[]): ManifestChunk {
  const members: PackedMember[] = shard.members.map(({ object, offset }, i) => ({ key: object.key, size: object.size, ...(object.etag ? { etag: object.etag } : {}), offset, checksum: checksums[i]! }));
  return { ...done, members };
}

/** Where each packed file is in the run's plan, to build its manifest entry from its shard once the run is done. */
export class PackedFiles {
  private readonly at = new Map<string, { planIndex: number; member: number }>();

  constructor(plan: readonly PlannedChunk[]) {
    plan.forEach((chunk, planIndex) => chunk.shard?.members.forEach((m, member) => this.at.set(m.object.key, { planIndex, member })));
  }

  /**
   * The manifest entry of a packed file (undefined for a file that was not packed): complete with its checksum
   * when its shard was delivered, else failed with the shard's error. A store checksum the member's own
   * checksum can be compared with directly is checked too.
   */
  file(object: ObjectInfo, o: { delivered: readonly (ManifestChunk | undefined)[]; plan: readonly PlannedChunk[]; fileErrors: ReadonlyMap<string, string>; algorithm: ChecksumAlgorithm; store: SourceInfo['kind'] }): ManifestFile | undefined {
    const at = this.at.get(object.key);
    if (!at) return undefined;
    const shardId = o.plan[at.planIndex]!.id;
    const member = o.delivered[at.planIndex]?.members?.[at.member];
    const base = { key: object.key, size: object.size, ...(object.etag ? { etag: object.etag } : {}), chunkCount: 0 };
    if (!member || member.key !== object.key) {
      const why = o.fileErrors.get(shardId) ?? 'its shard was not delivered';
      return { ...base, checksum: '', status: 'failed', error: `shard ${shardId}: ${why}` };
    }
    const file: ManifestFile = { ...base, checksum: member.checksum, status: 'complete', packed: { shard: shardId, offset: member.offset } };
    const check = directStoreCheck(object, o.store, o.algorithm, member.checksum);
    if (check) {
      file.sourceChecksum = check;
      if (!check.matched) {
        file.status = 'failed';
        file.error = `the packed bytes do not match the store's ${check.kind} checksum ${check.value}`;
      }
    }
    return file;
  }
}

/** The store's checksum of the object when it is in the run's algorithm (the member's checksum is then the file's). */
function directStoreCheck(object: ObjectInfo, store: SourceInfo['kind'], algorithm: ChecksumAlgorithm, checksum: string): ManifestFile['sourceChecksum'] {
  const plan = sourceChecksumPlans(object, store).find((p) => p.algorithm === algorithm);
  return plan ? { kind: plan.kind, value: plan.value, matched: sameChecksum(plan, checksum) } : undefined;
}
