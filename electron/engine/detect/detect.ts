// Which cloud are we on? env → --cloud flag → DMI hints → the three metadata services in parallel → local.
// Every answer carries its evidence. A metadata reply counts only if it looks like that cloud's service,
// so a proxy or captive portal answering 200 to every URL is not mistaken for a cloud.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLOUDS } from '../../../shared/config/types.ts';
import type { CloudName } from '../../../shared/config/types.ts';
import type { DetectionResult, ProbeOutcome } from '../../../shared/types.ts';

export const DEFAULT_DEADLINE_MS = 1500;
const DMI_FILES = ['sys_vendor', 'product_name', 'board_vendor', 'chassis_asset_tag'] as const;
const AZURE_ASSET_TAG = '7783-7084-3265-9085-8269-3286-77';

export interface DetectOptions {
  env?: NodeJS.ProcessEnv;
  /** Value of the --cloud flag. */
  flag?: string;
  dmiDir?: string;
  deadlineMs?: number;
}

export class DetectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DetectionError';
  }
}

export function parseCloudName(value: string, origin: string): CloudName {
  const normalized = value.trim().toLowerCase();
  if ((CLOUDS as readonly string[]).includes(normalized)) return normalized as CloudName;
  throw new DetectionError(`${origin} is "${value}", which is not a cloud. Fix: use one of ${CLOUDS.join(', ')}.`);
}

export async function detectCloud(options: DetectOptions = {}): Promise<DetectionResult> {
  const started = performance.now();
  const env = options.env ?? process.env;
  const elapsed = (): number => Math.round(performance.now() - started);

  if (env.CLOUD_PROVIDER) {
    const cloud = parseCloudName(env.CLOUD_PROVIDER, 'CLOUD_PROVIDER');
    return { cloud, signal: 'env', detail: `CLOUD_PROVIDER=${env.CLOUD_PROVIDER}`, elapsedMs: elapsed(), probes: [] };
  }
  if (options.flag) {
    const cloud = parseCloudName(options.flag, '--cloud');
    return { cloud, signal: 'flag', detail: `--cloud ${options.flag}`, elapsedMs: elapsed(), probes: [] };
  }
  const dmi = await readDmi(options.dmiDir ?? env.CLOUD_INGEST_DMI_DIR ?? '/sys/class/dmi/id');
  const fromDmi = cloudFromDmi(dmi);
  if (fromDmi) return { cloud: fromDmi.cloud, signal: 'dmi', detail: fromDmi.detail, elapsedMs: elapsed(), probes: [] };

  const probes = await probeMetadata(env, options.deadlineMs ?? DEFAULT_DEADLINE_MS);
  const hit = probes.find((p) => p.ok);
  if (hit) return { cloud: hit.cloud, signal: 'metadata', detail: `${hit.cloud} metadata service at ${hit.endpoint}: ${hit.detail}`, elapsedMs: elapsed(), probes };
  return { cloud: 'local', signal: 'default', detail: 'no cloud signal: no env, flag, DMI hint or metadata service', elapsedMs: elapsed(), probes };
}

async function readDmi(dir: string): Promise<Partial<Record<(typeof DMI_FILES)[number], string>>> {
  const entries = await Promise.all(
    DMI_FILES.map(async (name) => {
      try {
        return [name, (await readFile(join(dir, name), 'utf8')).trim()] as const;
      } catch {
        return [name, undefined] as const;
      }
    }),
  );
  return Object.fromEntries(entries.filter(([, v]) => v));
}

export function cloudFromDmi(dmi: Partial<Record<(typeof DMI_FILES)[number], string>>): { cloud: CloudName; detail: string } | undefined {
  const { sys_vendor = '', product_name = '', board_vendor = '', chassis_asset_tag = '' } = dmi;
  if (/amazon/i.test(sys_vendor) || /amazon/i.test(board_vendor) || /^amazon ec2/i.test(product_name)) {
    return { cloud: 'aws', detail: `DMI sys_vendor '${sys_vendor}', board_vendor '${board_vendor}'` };
  }
  if (/^google/i.test(sys_vendor) || /google compute engine/i.test(product_name)) {
    return { cloud: 'gcp', detail: `DMI sys_vendor '${sys_vendor}', product_name '${product_name}'` };
  }
  if (chassis_asset_tag === AZURE_ASSET_TAG) {
    return { cloud: 'azure', detail: `DMI chassis_asset_tag is Azure's (${AZURE_ASSET_TAG})` };
  }
  return undefined;
}

export function metadataEndpoints(env: NodeJS.ProcessEnv): Record<'aws' | 'gcp' | 'azure', string> {
  const trim = (url: string): string => url.replace(/\/+$/, '');
  const gceHost = env.GCE_METADATA_HOST ?? env.GCE_METADATA_IP ?? 'metadata.google.internal';
  return {
    aws: trim(env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? 'http://169.254.169.254'),
    gcp: trim(/^https?:\/\//.test(gceHost) ? gceHost : `http://${gceHost}`),
    azure: trim(env.AZURE_IMDS_ENDPOINT ?? 'http://169.254.169.254'),
  };
}

async function probeMetadata(env: NodeJS.ProcessEnv, deadlineMs: number): Promise<ProbeOutcome[]> {
  const endpoints = metadataEndpoints(env);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), deadlineMs);
  const probes = [
    timed('aws', endpoints.aws, () => probeAws(endpoints.aws, controller.signal)),
    timed('gcp', endpoints.gcp, () => probeGcp(endpoints.gcp, controller.signal)),
    timed('azure', endpoints.azure, () => probeAzure(endpoints.azure, controller.signal)),
  ];
  // The first positive answer decides; the others are cut short.
  for (const probe of probes) void probe.then((p) => p.ok && controller.abort());
  try {
    return await Promise.all(probes);
  } finally {
    clearTimeout(timer);
  }
}

async function timed(cloud: ProbeOutcome['cloud'], endpoint: string, probe: () => Promise<string | undefined>): Promise<ProbeOutcome> {
  const started = performance.now();
  try {
    const detail = await probe();
    const elapsedMs = Math.round(performance.now() - started);
    return detail ? { cloud, endpoint, ok: true, detail, elapsedMs } : { cloud, endpoint, ok: false, detail: 'answered, but not like this cloud', elapsedMs };
  } catch (error) {
    const elapsedMs = Math.round(performance.now() - started);
    const name = (error as Error).name;
    const detail = name === 'AbortError' || name === 'TimeoutError' ? 'no answer before the deadline' : describeFetchError(error);
    return { cloud, endpoint, ok: false, detail, elapsedMs };
  }
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  return cause?.code ?? (error as Error).message;
}

async function probeAws(base: string, signal: AbortSignal): Promise<string | undefined> {
  let token: string | undefined;
  const tokenResponse = await fetch(`${base}/latest/api/token`, {
    method: 'PUT',
    headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
    signal,
  });
  if (tokenResponse.ok) token = (await tokenResponse.text()).trim();
  else await tokenResponse.body?.cancel();
  const response = await fetch(`${base}/latest/dynamic/instance-identity/document`, {
    headers: token ? { 'X-aws-ec2-metadata-token': token } : {},
    signal,
  });
  if (!response.ok) return undefined;
  const doc = parseJson(await response.text());
  const instanceId = doc?.instanceId;
  const region = doc?.region;
  if (typeof instanceId !== 'string' || !/^i-[0-9a-f]+$/.test(instanceId) || typeof region !== 'string') return undefined;
  return `instance ${instanceId} in ${region} (${token ? 'IMDSv2' : 'IMDSv1'})`;
}

async function probeGcp(base: string, signal: AbortSignal): Promise<string | undefined> {
  const response = await fetch(`${base}/computeMetadata/v1/instance/id`, { headers: { 'Metadata-Flavor': 'Google' }, signal });
  const body = (await response.text()).trim();
  if (!response.ok || response.headers.get('metadata-flavor') !== 'Google' || !/^\d+$/.test(body)) return undefined;
  return `instance ${body} (Metadata-Flavor: Google)`;
}

async function probeAzure(base: string, signal: AbortSignal): Promise<string | undefined> {
  const response = await fetch(`${base}/metadata/instance?api-version=2021-02-01`, { headers: { Metadata: 'true' }, signal });
  if (!response.ok) return undefined;
  const compute = parseJson(await response.text())?.compute as Record<string, unknown> | undefined;
  if (!compute || typeof compute.vmId !== 'string' || typeof compute.azEnvironment !== 'string') return undefined;
  return `VM ${compute.vmId} in ${String(compute.location ?? 'unknown location')}`;
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
