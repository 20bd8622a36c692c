// The CLI drops Node's false "memory leak" warning for SDK read streams and prints every other process warning.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/emulators.ts';

function stderrOf(script: string): string {
  const module = join(ROOT, 'electron/cli/process-warnings.ts');
  const code = `const { quietSdkStreamWarnings } = await import(${JSON.stringify(module)});\nquietSdkStreamWarnings();\n${script}\nawait new Promise((r) => setTimeout(r, 50));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr;
}

const addListeners = (target: string, n: number): string => `for (let i = 0; i < ${n}; i++) ${target}.on('close', () => {});`;

describe('process warnings in the CLI', () => {
  it('drops the listener warning of a stream (one per GCS read)', () => {
    expect(stderrOf(`const { PassThrough } = await import('node:stream');\nconst s = new PassThrough();\n${addListeners('s', 11)}`)).toBe('');
  });

  it('still prints a listener warning about any other emitter, and every other warning', () => {
    const emitter = stderrOf(`const { EventEmitter } = await import('node:events');\nconst e = new EventEmitter();\n${addListeners('e', 11)}`);
    expect(emitter).toMatch(/^\(node:\d+\) MaxListenersExceededWarning: Possible EventEmitter memory leak/);
    expect(stderrOf(`process.emitWarning('the disk is almost full', 'CustomWarning');`)).toMatch(/^\(node:\d+\) CustomWarning: the disk is almost full\n$/);
  });
});
