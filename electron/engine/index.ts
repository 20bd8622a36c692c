// The engine's one entry module: what the CLI, the app's host and serve mode may use. Everything else under
// electron/engine/ is the engine's own (the layer rule in eslint.config.js keeps other layers to this file and to
// serving.ts, the node agent's entry, which only the commands that serve load).
export { ConfigError, defaultConfigPath, effectiveNodes, loadConfig, PROJECT_ROOT } from './config.ts';
export type { LoadedConfig } from './config.ts';
export { detectCloud, DetectionError } from './detect/detect.ts';
export { ENGINE_YOUNG_GENERATION_MB } from './heap-growth.ts';
export { NoHealthyNodeError, runIngest } from './ingest.ts';
export type { IngestOptions, IngestResult } from './ingest.ts';
export { journalPath, listResumableRuns, readJournal, ResumeError } from './journal.ts';
export { manifestPreview } from './manifest-reader.ts';
export type { ManifestPreview } from './manifest-reader.ts';
export { buildChunkPageIndex, chunksOnNode, copiesPerNode, findFiles, locateChunk, previewAndIndex } from './manifest-pages.ts';
export type { ChunkPageIndex } from './manifest-pages.ts';
export { latestManifestPath, listManifests, ManifestError, manifestDir, newRunId, readManifest, readManifestSummary } from './manifest.ts';
export { NodeError } from './nodes/node.ts';
export { openNodes, probeNodes } from './nodes/open.ts';
export { reassembleFile, ReassembleError, ReassembleInputError } from './reassemble.ts';
export type { ReassembleProgress } from './reassemble.ts';
export { repairRun, RepairError } from './repair.ts';
export type { RepairOptions } from './repair.ts';
export { StorageError } from './storage/driver.ts';
export { openSource, SourceSelectionError } from './storage/open.ts';
export { EARLIER_TEST_FILES, ensureDataFile, ORIGINAL_TEST_FILES, testFileBytes } from './testdata.ts';
export { verifyRun } from './verify.ts';
