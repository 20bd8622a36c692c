// Builds node targets from the config: local folder nodes, and agent nodes for `url` entries.
import type { NodeStatus } from '../../../shared/types.ts';
import { effectiveNodes } from '../config.ts';
import type { LoadedConfig } from '../config.ts';
import { AgentNode } from './agent-node.ts';
import { FolderNode } from './folder-node.ts';
import type { NodeTarget } from './node.ts';
import { NodeRegistry } from './registry.ts';

export function openNodes(loaded: LoadedConfig): NodeTarget[] {
  return effectiveNodes(loaded.config).map((node): NodeTarget => {
    if (node.path) return new FolderNode(node.id, loaded.resolve(node.path));
    if (node.url) return new AgentNode({ id: node.id, url: node.url, tokenEnv: node.token_env, checksumAlgorithm: loaded.config.ingestion.checksum });
    throw new Error(`node ${node.id}: needs a path (local folder) or a url (node agent).`);
  });
}

export async function probeNodes(loaded: LoadedConfig, signal?: AbortSignal): Promise<NodeStatus[]> {
  const registry = new NodeRegistry(openNodes(loaded));
  try {
    return await registry.probeAll(signal);
  } finally {
    await registry.close();
  }
}
