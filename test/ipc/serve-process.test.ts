// Serve mode as a real process (`electron/serve/main.ts`), driven over real sockets: input from the network never
// ends the process, and the page's socket works from both loopback names the page can be opened under.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let child: ChildProcess;
let url: URL;
let exited: number | null | undefined;
let stderr = '';

async function startServe(): Promise<void> {
  const dir = await tempDir('serve-process-');
  const dist = join(dir, 'dist');
  await mkdir(dist);
  await writeFile(join(dist, 'index.html'), '<!doctype html><title>test</title>');
  const configPath = join(dir, 'data_sources.yml');
  await mkdir(join(dir, 'source'));
  await writeFile(configPath, 'data_sources:\n  local: { type: "local", path: "./source" }\nnodes:\n  - { id: node-a, path: ./nodes/node-a }\n');
  child = spawn(process.execPath, [join(ROOT, 'electron/serve/main.ts'), '--config', configPath, '--port', '0', '--dist', dist], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('exit', (code) => (exited = code));
  url = await new Promise<URL>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /(http:\/\/127\.0\.0\.1:\d+\/[^\s]+\/)/.exec(out);
      if (match?.[1]) resolve(new URL(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
}

/** Opens the API socket as a page of `origin` would; resolves when open, or with the refusal's HTTP status. */
function openSocket(origin: string, host = url.host): Promise<WebSocket | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${host}${url.pathname}api`, { origin });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(0));
  });
}

function call(ws: WebSocket, channel: string): Promise<unknown> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer): void => {
      const frame = JSON.parse(data.toString()) as { id?: number; envelope?: unknown };
      if (frame.id === 7) {
        ws.off('message', onMessage);
        resolve(frame.envelope);
      }
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ id: 7, channel, payload: {} }));
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(startServe);

afterAll(async () => {
  if (child && exited === undefined) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  await removeTempDirs();
});

describe('serve mode as a process', () => {
  it('takes the page opened as localhost as well as 127.0.0.1, on its own port only', async () => {
    const port = url.port;
    for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
      const ws = await openSocket(origin, new URL(origin).host);
      if (typeof ws === 'number') throw new Error(`${origin} refused: ${ws}`);
      expect(await call(ws, 'loadConfig')).toMatchObject({ ok: true });
      ws.close();
    }
    expect(await openSocket(`http://localhost:${Number(port) + 1}`)).toBe(403);
    expect(await openSocket('http://localhost.evil.example')).toBe(403);
    // The page's origin must be the address the socket was opened on: a page of one name cannot use the other.
    expect(await openSocket(`http://127.0.0.1:${port}`, `localhost:${port}`)).toBe(403);
    expect(await openSocket(`https://localhost:${port}`)).toBe(403);
  });

  it('survives a frame over the payload limit: that socket is closed, the process and other sockets go on', async () => {
    const bystander = await openSocket(url.origin);
    if (typeof bystander === 'number') throw new Error(`socket refused: ${bystander}`);
    const attacker = await openSocket(url.origin);
    if (typeof attacker === 'number') throw new Error(`socket refused: ${attacker}`);
    const gone = closed(attacker);
    attacker.send('x'.repeat(3 * 1024 * 1024));
    expect(await gone).toBe(1009); // "message too big"
    await sleep(300);
    expect(exited, stderr).toBeUndefined();
    expect(await call(bystander, 'loadConfig')).toMatchObject({ ok: true });
    bystander.close();
  });

  it('survives a text frame that is not valid UTF-8', async () => {
    const attacker = await openSocket(url.origin);
    if (typeof attacker === 'number') throw new Error(`socket refused: ${attacker}`);
    const gone = closed(attacker);
    attacker.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect(await gone).toBe(1007); // "invalid frame payload data"
    await sleep(300);
    expect(exited, stderr).toBeUndefined();
    const next = await openSocket(url.origin);
    if (typeof next === 'number') throw new Error(`socket refused: ${next}`);
    expect(await call(next, 'loadConfig')).toMatchObject({ ok: true });
    next.close();
  });

});
