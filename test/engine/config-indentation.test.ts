// YAML indentation mistakes are named on the offending line, once, in plain words with the fix (issue 13, item 6).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findIndentationProblems } from '../../shared/config/indentation.ts';
import { formatDiagnostic, validateConfigText } from '../../shared/config/validate.ts';

const FILE = 'config/data_sources.yml';

function errorsOf(yaml: string) {
  return validateConfigText(yaml, FILE).diagnostics.filter((d) => d.severity === 'error');
}

/** Lines 1–9 of a small valid config; `line7` replaces its seventh line. */
function withLine7(line7: string): string {
  return [
    'data_sources:',
    '  local:',
    '    type: "local"',
    '    path: "./data"',
    'ingestion:',
    '  chunk_size_mb: 1',
    line7,
    '  retry_attempts: 3',
    'use_local_simulation: true',
    '',
  ].join('\n');
}

const PARSER_WORDS = /compact mappings|Implicit keys|same column|Tabs are not allowed/;

describe('indentation errors', () => {
  it('the unbroken config is valid', () => {
    expect(errorsOf(withLine7('  max_concurrent_chunks: 2'))).toEqual([]);
  });

  it('a key indented more than its siblings: one error on its own line, naming both indents and the fix', () => {
    const errors = errorsOf(withLine7('   max_concurrent_chunks: 2'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ line: 7, column: 4, key: 'ingestion.max_concurrent_chunks' });
    expect(errors[0]!.message).toBe('this key is indented by 3 spaces, but its siblings by 2.');
    expect(errors[0]!.fix).toBe('indent it by 2 spaces, like chunk_size_mb above it.');
    expect(formatDiagnostic(errors[0]!)).toBe(
      'config/data_sources.yml:7:4: error: ingestion.max_concurrent_chunks: this key is indented by 3 spaces, but its siblings by 2. Fix: indent it by 2 spaces, like chunk_size_mb above it.',
    );
  });

  it('a key indented less than its siblings names both places it could belong', () => {
    const errors = errorsOf(withLine7(' max_concurrent_chunks: 2'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ line: 7, column: 2, key: 'ingestion.max_concurrent_chunks' });
    expect(errors[0]!.message).toBe('this key is indented by 1 space, but its siblings by 2.');
    expect(errors[0]!.fix).toBe('indent it by 2 spaces to keep it beside chunk_size_mb, or by 0 spaces to put it beside ingestion.');
  });

  it('a tab in the indentation', () => {
    const errors = errorsOf(withLine7('\tmax_concurrent_chunks: 2'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ line: 7, column: 1 });
    expect(errors[0]!.message).toMatch(/indented with a tab.*YAML indents with spaces only/);
    expect(errors[0]!.fix).toBe('indent with spaces, not tabs (2 spaces at this level, like chunk_size_mb).');
    const first = errorsOf('data_sources:\n\tlocal: { type: local, path: ./data }\n');
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ line: 2, fix: 'indent with spaces, not tabs (deeper than the line above, e.g. 2 spaces).' });
  });

  it('a key of a source indented less than its siblings', () => {
    const yaml = withLine7('  max_concurrent_chunks: 2').replace('    path: "./data"', '   path: "./data"');
    const errors = errorsOf(yaml);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ line: 4, key: 'data_sources.local.path', message: 'this key is indented by 3 spaces, but its siblings by 4.' });
  });

  it('a key inside a list item, in block and same-indent list styles', () => {
    for (const dash of ['  ', '']) {
      const yaml = `${withLine7('  max_concurrent_chunks: 2')}nodes:\n${dash}- id: a\n${dash}  path: ./a\n${dash}- id: b\n${dash}   path: ./b\n`;
      const errors = errorsOf(yaml);
      expect(errors, dash ? 'block list' : 'same-indent list').toHaveLength(1);
      expect(errors[0]).toMatchObject({ line: 14, key: 'nodes[1].path', message: `this key is indented by ${dash.length + 3} spaces, but its siblings by ${dash.length + 2}.` });
    }
  });

  it('a list item indented less or more than the items around it, with a comment line above', () => {
    const nodes = (b: string, c: string) => `${withLine7('  max_concurrent_chunks: 2')}nodes:\n  - { id: a, path: ./a }\n  # the second node\n${b}- { id: b, path: ./b }\n${c}- { id: c, path: ./c }\n`;
    const less = errorsOf(nodes(' ', '  '));
    expect(less).toHaveLength(1);
    expect(less[0]).toMatchObject({ line: 13, column: 2, key: 'nodes', message: 'this list item is indented by 1 space, but the items around it by 2.', fix: 'indent it by 2 spaces, like the other items of nodes.' });
    const more = errorsOf(nodes('  ', '   '));
    expect(more).toHaveLength(1);
    expect(more[0]).toMatchObject({ line: 14, column: 4, message: 'this list item is indented by 3 spaces, but the items before it by 2.' });
  });

  it('a comment line between the key and the sibling above does not move the error', () => {
    const yaml = 'data_sources:\n  aws: { type: "s3", bucket: "b" }\n  # local sources\n   local: { type: "local", path: "./d" }\n';
    expect(errorsOf(yaml).map((e) => [e.line, e.key, e.message])).toEqual([[4, 'data_sources.local', 'this key is indented by 3 spaces, but its siblings by 2.']]);
  });

  it('no error is in the parser\'s words, and there is at most one per line', () => {
    for (const line7 of ['   max_concurrent_chunks: 2', '    max_concurrent_chunks: 2', ' max_concurrent_chunks: 2', '\tmax_concurrent_chunks: 2', '  \tmax_concurrent_chunks: 2']) {
      const errors = errorsOf(withLine7(line7));
      expect(errors.map((e) => e.line), JSON.stringify(line7)).toEqual([7]);
      expect(errors[0]!.message).not.toMatch(PARSER_WORDS);
    }
  });

  it('other syntax errors are still reported, once per line', () => {
    const errors = errorsOf('data_sources:\n  aws: { type: "s3", bucket: "b"\ningestion: {}\n');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]!.message).toMatch(/^YAML syntax error/);
    expect(new Set(errors.map((e) => e.line)).size).toBe(errors.length);
  });

  it('finds nothing in the valid YAML files of this repository (lists, flow maps, block scalars, comments)', () => {
    const root = join(import.meta.dirname, '..', '..');
    // The repository's own (the config, the agent's OpenAPI document) and the dependencies' (CI configs, specs).
    const find = ['node_modules', '(', '-name', '*.yml', '-o', '-name', '*.yaml', ')', '-type', 'f'];
    const files = [
      ...execFileSync('git', ['ls-files', '*.yml', '*.yaml'], { cwd: root, encoding: 'utf8' }).split('\n'),
      ...execFileSync('find', find, { cwd: root, encoding: 'utf8' }).split('\n').slice(0, 300),
    ].filter(Boolean);
    expect(files.length).toBeGreaterThan(20);
    for (const file of files) expect(findIndentationProblems(readFileSync(join(root, file), 'utf8')), file).toEqual([]);
    const tricky = 'a:\n  text: |\n     indented more\n    less\n  list:\n  - x\n  - y: 1\n    z: 2\n  flow: {\n      p: 1,\n   q: 2 }\n  long: first part\n     continued\nb: 1\n';
    expect(findIndentationProblems(tricky)).toEqual([]);
  });
});
