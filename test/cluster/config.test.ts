// The cluster settings in data_sources.yml: ingestion.mode, ingestion.placement: stable and the cluster: section.
// The original format keeps loading unchanged; every mistake names the file, line, key and a fix.
import { describe, expect, it } from 'vitest';
import { CLUSTER_DEFAULTS } from '../../shared/config/types.ts';
import { validateConfigText } from '../../shared/config/validate.ts';
import { ORIGINAL_YAML, tempProject, writeConfig } from '../engine/fixtures.ts';

const FILE = 'config/data_sources.yml';
const AGENTS = `nodes:
  - { id: worker-1, url: "http://127.0.0.1:7001", token_env: W1_TOKEN }
  - { id: worker.2, url: "http://127.0.0.1:7002", token_env: W2_TOKEN }
`;

function check(yaml: string) {
  const { config, diagnostics } = validateConfigText(yaml, FILE);
  return { config, errors: diagnostics.filter((d) => d.severity === 'error'), warnings: diagnostics.filter((d) => d.severity === 'warning') };
}

function pullYaml(extra = ''): string {
  return ORIGINAL_YAML.replace('retry_delay_seconds: 5 }', 'retry_delay_seconds: 5, mode: pull, placement: stable }') + AGENTS + extra;
}

function lineOf(yaml: string, text: string): number {
  return yaml.split('\n').findIndex((l) => l.includes(text)) + 1;
}

describe('cluster settings', () => {
  it('the original format loads unchanged: push mode, no cluster section', async () => {
    const loaded = await writeConfig(await tempProject(), ORIGINAL_YAML);
    expect(loaded.config.ingestion.mode).toBe('push');
    expect(loaded.config.ingestion.placement).toBe('balanced');
    expect(loaded.config.cluster).toBeUndefined();
    expect(loaded.warnings).toEqual([]);
  });

  it('pull mode with stable placement and agent nodes; cluster defaults when the section is absent', () => {
    const { config, errors, warnings } = check(pullYaml());
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    expect(config!.ingestion.mode).toBe('pull');
    expect(config!.ingestion.placement).toBe('stable');
    expect(config!.cluster).toBeUndefined();
  });

  it('a cluster section fills in what it leaves out', () => {
    const { config, errors } = check(pullYaml('cluster:\n  nats_url: "nats://10.0.0.5:4222,nats://10.0.0.6:4222"\n  stream: MY_WORK\n  max_deliver: 3\n'));
    expect(errors).toEqual([]);
    expect(config!.cluster).toEqual({ ...CLUSTER_DEFAULTS, nats_url: 'nats://10.0.0.5:4222,nats://10.0.0.6:4222', stream: 'MY_WORK', max_deliver: 3 });
  });

  it('stable placement is allowed in push mode too', () => {
    const { config, errors } = check(ORIGINAL_YAML.replace('retry_delay_seconds: 5 }', 'retry_delay_seconds: 5, placement: stable }'));
    expect(errors).toEqual([]);
    expect(config!.ingestion.placement).toBe('stable');
  });

  it('an unknown mode names the line, the choices and a guess', () => {
    const yaml = ORIGINAL_YAML.replace('retry_delay_seconds: 5 }', 'retry_delay_seconds: 5, mode: pul }');
    const [error, ...rest] = check(yaml).errors;
    expect(rest).toEqual([]);
    expect(error).toMatchObject({ key: 'ingestion.mode', line: lineOf(yaml, 'mode: pul'), fix: "did you mean 'pull'?" });
    expect(error!.message).toContain('push, pull');
  });

  it('pull mode refuses folder nodes and the default (folder) nodes', () => {
    const withFolder = pullYaml().replace('  - { id: worker.2, url: "http://127.0.0.1:7002", token_env: W2_TOKEN }', '  - { id: local-1, path: ./received_chunks/local-1 }');
    const [folder] = check(withFolder).errors;
    expect(folder).toMatchObject({ key: 'ingestion.mode', line: lineOf(withFolder, 'mode: pull') });
    expect(folder!.message).toContain('local-1 is a folder node');
    const noNodes = pullYaml().replace(AGENTS, '');
    const [none] = check(noNodes).errors;
    expect(none!.message).toContain('no nodes are configured');
    expect(none!.fix).toContain('url:');
  });

  it('bad cluster values: names, URL, numbers, the same stream twice, credentials in the URL', () => {
    const cases: [string, string, RegExp][] = [
      ['  stream: "my.work"\n', 'cluster.stream', /not a usable NATS name/],
      ['  nats_url: "http://127.0.0.1:4222"\n', 'cluster.nats_url', /expected a NATS server URL/],
      ['  nats_url: "nats://user:secret@127.0.0.1:4222"\n', 'cluster.nats_url', /credentials must not be stored/],
      ['  max_deliver: 0\n', 'cluster.max_deliver', /whole number of at least 1/],
      ['  ack_wait_seconds: "30"\n', 'cluster.ack_wait_seconds', /got the text "30"/],
      ['  result_stream: CLOUD_INGEST_WORK\n', 'cluster.result_stream', /both "CLOUD_INGEST_WORK"/],
    ];
    for (const [line, key, message] of cases) {
      const yaml = pullYaml(`cluster:\n${line}`);
      const { errors } = check(yaml);
      expect(errors, line).toHaveLength(1);
      expect(errors[0]).toMatchObject({ key, line: lineOf(yaml, line.trim()), file: FILE });
      expect(errors[0]!.message).toMatch(message);
      expect(errors[0]!.fix.length).toBeGreaterThan(10);
    }
  });

  it('an unknown cluster key is a warning with a suggestion; a non-mapping cluster is an error', () => {
    const { warnings, errors } = check(pullYaml('cluster:\n  nats_ulr: "nats://127.0.0.1:4222"\n'));
    expect(errors).toEqual([]);
    expect(warnings[0]).toMatchObject({ key: 'cluster.nats_ulr', fix: "did you mean 'nats_url'?" });
    expect(check(pullYaml('cluster: nats://127.0.0.1:4222\n')).errors[0]).toMatchObject({ key: 'cluster' });
  });
});
