import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseDirFor, ConfigError, effectiveNodes, loadConfig } from '../../electron/engine/config.ts';
import { formatDiagnostic, validateConfigText } from '../../shared/config/validate.ts';
import { ORIGINAL_YAML, tempProject, writeConfig } from './fixtures.ts';

function errorsOf(yaml: string) {
  return validateConfigText(yaml, 'config/data_sources.yml').diagnostics.filter((d) => d.severity === 'error');
}

describe('the original config format', () => {
  it('loads unchanged and means what it meant', async () => {
    const root = await tempProject();
    const loaded = await writeConfig(root, ORIGINAL_YAML);
    const { config } = loaded;
    expect(config.data_sources.aws).toEqual({ type: 's3', bucket: 'ml-training-data-aws', region: 'us-east-1', local_simulation: './test_data/aws_s3_simulation' });
    expect(config.data_sources.azure?.container).toBe('ml-training-data-azure');
    expect(config.ingestion).toMatchObject({ chunk_size_mb: 100, max_concurrent_chunks: 10, retry_attempts: 3, retry_delay_seconds: 5 });
    expect(config.use_local_simulation).toBe(true);
    expect(loaded.warnings).toEqual([]);
    // Additions default to what the original did or the documented default.
    expect(config.ingestion.checksum).toBe('md5');
    expect(config.ingestion.placement).toBe('balanced');
  });

  it('resolves ./test_data beside config/ from the project root, whatever the working directory', async () => {
    const root = await tempProject();
    const loaded = await writeConfig(root, ORIGINAL_YAML);
    expect(baseDirFor(loaded.path)).toBe(root);
    const cwd = process.cwd();
    process.chdir('/');
    try {
      const again = await loadConfig(loaded.path);
      expect(again.resolve(again.config.data_sources.gcp!.local_simulation!)).toBe(join(root, 'test_data', 'gcp_gcs_simulation'));
    } finally {
      process.chdir(cwd);
    }
  });

  it('gives one folder node per configured cloud when nodes: is absent', async () => {
    const root = await tempProject();
    const loaded = await writeConfig(root, ORIGINAL_YAML);
    expect(effectiveNodes(loaded.config)).toEqual([
      { id: 'aws-node-1', cloud: 'aws', path: './received_chunks/aws-node-1' },
      { id: 'gcp-node-1', cloud: 'gcp', path: './received_chunks/gcp-node-1' },
      { id: 'azure-node-1', cloud: 'azure', path: './received_chunks/azure-node-1' },
    ]);
  });

  it('the shipped config/data_sources.yml is valid', async () => {
    const loaded = await loadConfig();
    expect(loaded.config.data_sources.local?.type).toBe('local');
    expect(loaded.warnings).toEqual([]);
  });
});

describe('validation errors name the file, line, column, key, expectation and fix', () => {
  it('chunk size 0', () => {
    const [error, ...rest] = errorsOf(ORIGINAL_YAML.replace('chunk_size_mb: 100', 'chunk_size_mb: 0'));
    expect(rest).toEqual([]);
    expect(error).toMatchObject({ file: 'config/data_sources.yml', line: 5, key: 'ingestion.chunk_size_mb', expected: 'a number greater than 0' });
    expect(error!.column).toBe(ORIGINAL_YAML.split('\n')[4]!.indexOf('100') + 1);
    expect(formatDiagnostic(error!)).toMatch(/^config\/data_sources\.yml:5:\d+: error: ingestion\.chunk_size_mb: expected a number greater than 0, got 0\. Fix: /);
  });

  it('negative retries and a quoted number', () => {
    const errors = errorsOf(ORIGINAL_YAML.replace('retry_attempts: 3', 'retry_attempts: -1').replace('max_concurrent_chunks: 10', 'max_concurrent_chunks: "10"'));
    expect(errors.map((e) => e.key).sort()).toEqual(['ingestion.max_concurrent_chunks', 'ingestion.retry_attempts']);
    expect(errors.find((e) => e.key === 'ingestion.max_concurrent_chunks')!.fix).toBe('remove the quotes around the number.');
  });

  it('an unknown key is a warning with a suggestion, not an error', () => {
    const { config, diagnostics } = validateConfigText(ORIGINAL_YAML.replace('retry_attempts: 3', 'retry_attempts: 3, retry_atempts: 2'), 'f.yml');
    expect(config).toBeDefined();
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ severity: 'warning', key: 'ingestion.retry_atempts', line: 5, fix: "did you mean 'retry_attempts'?" });
  });

  it('an unknown cloud name, a wrong source type and a missing bucket', () => {
    const yaml = `data_sources:\n  awz: { type: "s3", bucket: "b" }\n  gcp: { type: "s3", bucket: "b" }\n  azure: { type: "blob" }\n`;
    const errors = errorsOf(yaml);
    expect(errors.map((e) => [e.key, e.line])).toEqual([
      ['data_sources.awz', 2],
      ['data_sources.gcp.type', 3],
      ['data_sources.azure.container', 4],
    ]);
    expect(errors[0]!.fix).toContain("did you mean 'aws'?");
  });

  it('malformed YAML points at the broken line', () => {
    const errors = errorsOf('data_sources:\n  aws: { type: "s3", bucket: "b"\ningestion: {}\n');
    expect(errors[0]!.message).toMatch(/^YAML syntax error/);
    expect(errors[0]!.line).toBeGreaterThanOrEqual(2);
  });

  it('credentials in the YAML are refused', () => {
    const errors = errorsOf(ORIGINAL_YAML.replace('region: "us-east-1",', 'region: "us-east-1", secret_access_key: "abc",'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ key: 'data_sources.aws.secret_access_key', line: 2 });
    expect(errors[0]!.fix).toContain("SDK's default chain");
  });

  it('nodes need a unique id and exactly one of path or url', () => {
    const yaml = `${ORIGINAL_YAML}nodes:\n  - { id: a, path: ./x }\n  - { id: a, path: ./y }\n  - { id: b }\n`;
    const errors = errorsOf(yaml);
    expect(errors.map((e) => [e.key, e.line])).toEqual([
      ['nodes[1].id', 9],
      ['nodes[2]', 10],
    ]);
  });

  it('loadConfig throws a ConfigError that lists every error', async () => {
    const root = await tempProject();
    await mkdir(join(root, 'test_data'), { recursive: true });
    const promise = writeConfig(root, ORIGINAL_YAML.replace('chunk_size_mb: 100', 'chunk_size_mb: -5'));
    await expect(promise).rejects.toBeInstanceOf(ConfigError);
    await expect(promise).rejects.toThrow(/data_sources\.yml:5:\d+: error: ingestion\.chunk_size_mb/);
  });
});
