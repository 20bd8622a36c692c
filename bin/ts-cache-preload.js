// Preloaded (`node --import`) by scripts/with-node22.js for the project's own scripts: see ts-cache.js.
import { useTypeScriptCache } from './ts-cache.js';

useTypeScriptCache();
