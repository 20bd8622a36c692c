// The layer rule, as an allow-list per layer (VS Code's code-layering): a file may import project code only from
// the folders its layer names, and other layers reach the engine through its one entry module.
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ENGINE = 'electron/engine/index.ts';
/** The node agent's entry (the CLI's `agent` command): loaded only where chunks are served. */
const ENGINE_SERVING = 'electron/engine/serving.ts';
/** The hashing threads alone: the CLI starts them before it loads the engine (electron/cli/start.ts). */
const ENGINE_THREADS = 'electron/engine/threads.ts';

/** First match wins. `allow`: project paths (folders end with /) this layer may import; `node`/`electron`: builtins. */
export const LAYERS = [
  { name: 'shared', under: 'shared/', allow: ['shared/'], node: false, electron: false },
  // The agent serves chunks; nodes/ is the engine's client of it: one way only (nodes → agent/protocol.ts).
  { name: 'engine/agent', under: 'electron/engine/agent/', allow: ['shared/', 'electron/engine/'], deny: ['electron/engine/nodes/'], node: true, electron: false },
  { name: 'engine', under: 'electron/engine/', allow: ['shared/', 'electron/engine/'], node: true, electron: false },
  { name: 'cli', under: 'electron/cli/', allow: ['shared/', 'electron/cli/', ENGINE, ENGINE_SERVING, ENGINE_THREADS], node: true, electron: false },
  { name: 'host', under: 'electron/host/', allow: ['shared/', 'electron/host/', ENGINE], node: true, electron: false },
  { name: 'serve', under: 'electron/serve/', allow: ['shared/', 'electron/serve/', 'electron/host/', ENGINE], node: true, electron: false },
  { name: 'main', under: 'electron/main/', allow: ['shared/', 'electron/main/', 'electron/host/', 'bin/node22.js'], node: true, electron: true },
  { name: 'preload', under: 'electron/preload/', allow: ['shared/', 'electron/preload/'], node: false, electron: true },
  { name: 'renderer', under: 'renderer/', allow: ['shared/', 'renderer/'], node: false, electron: false },
];

function layerOf(file) {
  const path = relative(ROOT, file).split('\\').join('/');
  return LAYERS.find((layer) => path.startsWith(layer.under));
}

function check(context, node, source) {
  if (typeof source !== 'string') return;
  const layer = layerOf(context.filename);
  if (!layer) return; // tests, scripts, e2e, config files: free
  if (source.startsWith('.')) {
    const target = relative(ROOT, resolve(dirname(context.filename), source)).split('\\').join('/');
    const matches = (prefix) => (prefix.endsWith('/') ? target.startsWith(prefix) : target === prefix);
    if (!layer.allow.some(matches) || (layer.deny ?? []).some(matches)) {
      const hint = target.startsWith('electron/engine/') ? ` (other layers use the engine through ${ENGINE})` : '';
      context.report({ node, message: `layer "${layer.name}" may not import ${target}; it may import ${layer.allow.join(', ')}${hint}` });
    }
    return;
  }
  if (source.startsWith('node:') && !layer.node) context.report({ node, message: `layer "${layer.name}" runs where Node is not available: no ${source}` });
  if (source === 'electron' && !layer.electron) context.report({ node, message: `layer "${layer.name}" must not import electron (the engine runs in plain Node; UI code talks over IPC)` });
}

const layersRule = {
  meta: { type: 'problem', schema: [] },
  create(context) {
    const visit = (node) => check(context, node, node.source?.value);
    return {
      ImportDeclaration: visit,
      ExportNamedDeclaration: visit,
      ExportAllDeclaration: visit,
      ImportExpression: (node) => check(context, node, node.source.type === 'Literal' ? node.source.value : undefined),
    };
  },
};

export const layersPlugin = { rules: { 'allowed-imports': layersRule } };
