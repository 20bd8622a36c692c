// The nodes a manifest names, opened from the current config (for tokens) or, for folder nodes that are
// no longer configured, from the location the manifest recorded.
import type { NodeSummary } from '../../../shared/types.ts';
import type { LoadedConfig } from '../config.ts';
import { FolderNode } from './folder-node.ts';
import type { NodeTarget } from './node.ts';
import { openNodes } from './open.ts';

export function nodesForManifest(loaded: LoadedConfig, recorded: readonly NodeSummary[]): Map<string, NodeTarget> {
  const nodes = new Map(openNodes(loaded).map((n) => [n.id, n] as const));
  for (const summary of recorded) {
    if (!nodes.has(summary.id) && summary.kind === 'folder') nodes.set(summary.id, new FolderNode(summary.id, summary.location));
  }
  return nodes;
}
