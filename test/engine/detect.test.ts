// Detection against fake metadata services on loopback (the one thing that cannot exist here).
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer, Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { detectCloud, DetectionError } from '../../electron/engine/detect/detect.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import { SourceSelectionError } from '../../electron/engine/storage/open.ts';
import { detection, ORIGINAL_YAML, tempProject, writeConfig } from './fixtures.ts';
import { tempDir } from '../helpers/temp.ts';

const CLOSED = 'http://127.0.0.1:9';
const servers: (Server | TcpServer)[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function env(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { AWS_EC2_METADATA_SERVICE_ENDPOINT: CLOSED, GCE_METADATA_HOST: '127.0.0.1:9', AZURE_IMDS_ENDPOINT: CLOSED, ...overrides };
}

const noDmi = '/nonexistent-dmi';

/** IMDS with IMDSv1 disabled: GETs without a session token get 401, as on instances that require IMDSv2. */
function fakeAwsImdsV2Only(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'PUT' && req.url === '/latest/api/token') {
    if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return void res.writeHead(400).end();
    return void res.writeHead(200).end('TOKEN-123');
  }
  if (req.headers['x-aws-ec2-metadata-token'] !== 'TOKEN-123') return void res.writeHead(401).end();
  if (req.url === '/latest/dynamic/instance-identity/document') {
    return void res.writeHead(200, { 'content-type': 'text/plain' }).end(JSON.stringify({ instanceId: 'i-0abc123def4567890', region: 'eu-west-1', accountId: '123456789012' }));
  }
  res.writeHead(404).end();
}

describe('cloud detection', () => {
  it('CLOUD_PROVIDER wins, case-insensitively, over the flag and everything else', async () => {
    const result = await detectCloud({ env: env({ CLOUD_PROVIDER: 'GCP' }), flag: 'aws', dmiDir: noDmi });
    expect(result).toMatchObject({ cloud: 'gcp', signal: 'env' });
  });

  it('--cloud comes next', async () => {
    expect(await detectCloud({ env: env(), flag: 'Azure', dmiDir: noDmi })).toMatchObject({ cloud: 'azure', signal: 'flag' });
  });

  it('an unknown cloud name is a clear error', async () => {
    await expect(detectCloud({ env: env({ CLOUD_PROVIDER: 'oracle' }) })).rejects.toThrow(DetectionError);
    await expect(detectCloud({ env: env({ CLOUD_PROVIDER: 'oracle' }) })).rejects.toThrow(/CLOUD_PROVIDER is "oracle".*aws, gcp, azure, local/);
  });

  it.each([
    ['aws', { sys_vendor: 'Amazon EC2', product_name: 'm5.large' }],
    ['gcp', { sys_vendor: 'Google', product_name: 'Google Compute Engine' }],
    ['azure', { sys_vendor: 'Microsoft Corporation', chassis_asset_tag: '7783-7084-3265-9085-8269-3286-77' }],
  ] as const)('DMI hints identify %s', async (cloud, files) => {
    const dir = await tempDir('dmi-');
    for (const [name, value] of Object.entries(files)) await writeFile(join(dir, name), `${value}\n`);
    const result = await detectCloud({ env: env(), dmiDir: dir });
    expect(result).toMatchObject({ cloud, signal: 'dmi' });
    expect(result.detail).toContain('DMI');
  });

  it('a Hyper-V machine that is not on Azure is not Azure', async () => {
    const dir = await tempDir('dmi-');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'sys_vendor'), 'Microsoft Corporation\n');
    await writeFile(join(dir, 'chassis_asset_tag'), 'None\n');
    expect((await detectCloud({ env: env(), dmiDir: dir })).cloud).toBe('local');
  });

  it('AWS through IMDSv2 when IMDSv1 is disabled', async () => {
    const url = await serve(fakeAwsImdsV2Only);
    const result = await detectCloud({ env: env({ AWS_EC2_METADATA_SERVICE_ENDPOINT: url }), dmiDir: noDmi });
    expect(result).toMatchObject({ cloud: 'aws', signal: 'metadata' });
    expect(result.detail).toContain('IMDSv2');
    expect(result.probes.find((p) => p.cloud === 'aws')?.ok).toBe(true);
  });

  it('AWS through IMDSv1 when the token call is not supported', async () => {
    const url = await serve((req, res) => {
      if (req.method === 'PUT') return void res.writeHead(405).end();
      if (req.url === '/latest/dynamic/instance-identity/document') return void res.writeHead(200).end(JSON.stringify({ instanceId: 'i-0123456789abcdef0', region: 'us-east-1' }));
      res.writeHead(404).end();
    });
    const result = await detectCloud({ env: env({ AWS_EC2_METADATA_SERVICE_ENDPOINT: url }), dmiDir: noDmi });
    expect(result).toMatchObject({ cloud: 'aws', signal: 'metadata' });
    expect(result.detail).toContain('IMDSv1');
  });

  it('GCP needs the Metadata-Flavor header both ways', async () => {
    const url = await serve((req, res) => {
      if (req.headers['metadata-flavor'] !== 'Google') return void res.writeHead(403).end();
      res.writeHead(200, { 'Metadata-Flavor': 'Google' }).end('4520031799277581759');
    });
    const result = await detectCloud({ env: env({ GCE_METADATA_HOST: url.replace('http://', '') }), dmiDir: noDmi });
    expect(result).toMatchObject({ cloud: 'gcp', signal: 'metadata' });
  });

  it('Azure needs Metadata: true and a body shaped like Azure IMDS', async () => {
    const url = await serve((req, res) => {
      if (req.headers.metadata !== 'true' || !req.url?.includes('api-version=')) return void res.writeHead(400).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ compute: { vmId: '02aab8a4-74ef-476e-8182-f6d2ba4166a6', azEnvironment: 'AzurePublicCloud', location: 'eastus' } }));
    });
    const result = await detectCloud({ env: env({ AZURE_IMDS_ENDPOINT: url }), dmiDir: noDmi });
    expect(result).toMatchObject({ cloud: 'azure', signal: 'metadata' });
    expect(result.detail).toContain('eastus');
  });

  it('a catch-all server answering 200 to every URL is not a cloud', async () => {
    const url = await serve((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Welcome to the hotel Wi-Fi</html>'));
    const result = await detectCloud({ env: env({ AWS_EC2_METADATA_SERVICE_ENDPOINT: url, GCE_METADATA_HOST: url.replace('http://', ''), AZURE_IMDS_ENDPOINT: url }), dmiDir: noDmi });
    expect(result).toMatchObject({ cloud: 'local', signal: 'default' });
    expect(result.probes.every((p) => !p.ok && p.detail.includes('not like this cloud'))).toBe(true);
  });

  it('a black-hole endpoint gives local within the deadline', async () => {
    const hole = createTcpServer((socket) => sockets.push(socket)); // accepts, never answers
    servers.push(hole);
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hole.address() as AddressInfo).port}`;
    const result = await detectCloud({ env: env({ AWS_EC2_METADATA_SERVICE_ENDPOINT: url, GCE_METADATA_HOST: url.replace('http://', ''), AZURE_IMDS_ENDPOINT: url }), dmiDir: noDmi, deadlineMs: 1500 });
    expect(result.cloud).toBe('local');
    expect(result.probes.map((p) => p.detail)).toEqual(['no answer before the deadline', 'no answer before the deadline', 'no answer before the deadline']);
    expect(result.elapsedMs).toBeLessThan(1500 + 500);
  });

  it('a detected cloud without a data source is a clear error naming the configured ones', async () => {
    const root = await tempProject();
    const loaded = await writeConfig(root, ORIGINAL_YAML);
    const run = runIngest({ loaded, detection: detection('local') });
    await expect(run).rejects.toBeInstanceOf(SourceSelectionError);
    await expect(runIngest({ loaded, detection: detection('local') })).rejects.toThrow(/no data_sources\.local entry \(configured: aws, gcp, azure\).*CLOUD_PROVIDER=<cloud> or --cloud <cloud>/);
  });
});
