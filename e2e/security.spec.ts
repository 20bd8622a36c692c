// Serve mode's fences, seen from a browser and from a socket: the token guards page, assets and API; the socket
// takes only our own origin; unknown channels and malformed payloads sent from the page are refused; the page's
// CSP blocks injected inline script.
import { WebSocket } from 'ws';
import { expect, test } from './fixtures.ts';

test.describe.configure({ mode: 'serial' });

function socketFrames(url: string, origin: string | undefined, frames: object[]): Promise<{ opened: boolean; replies: unknown[]; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, origin ? { origin } : {});
    const replies: unknown[] = [];
    ws.on('open', () => frames.forEach((f) => ws.send(JSON.stringify(f))));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { id?: number };
      if (m.id !== undefined) replies.push(m);
      if (replies.length === frames.length) {
        ws.close();
        resolve({ opened: true, replies });
      }
    });
    ws.on('unexpected-response', (_req, res) => resolve({ opened: false, replies, status: res.statusCode ?? 0 }));
    ws.on('error', () => resolve({ opened: false, replies }));
  });
}

test('the page and its assets need the token', async ({ app, page }) => {
  const url = new URL(app.url!);
  const token = url.pathname.split('/')[1]!;
  expect(token.length).toBeGreaterThanOrEqual(32);
  const good = await page.request.get(app.url!);
  expect(good.status()).toBe(200);
  expect(good.headers()['content-security-policy']).toContain("script-src 'self'");
  expect(good.headers()['referrer-policy']).toBe('no-referrer');
  expect((await page.request.get(`${url.origin}/`)).status()).toBe(404);
  const oneCharOff = token.slice(0, -1) + (token.endsWith('x') ? 'y' : 'x');
  expect((await page.request.get(`${url.origin}/${oneCharOff}/`)).status()).toBe(404);
  expect((await page.request.get(`${url.origin}/index.html`)).status()).toBe(404);
  expect((await page.request.get(`${app.url!}../../etc/passwd`)).status()).toBe(404);
});

test('the socket needs the token and our own origin', async ({ app }) => {
  const url = new URL(app.url!);
  const api = `ws://${url.host}${url.pathname}api`;
  const noToken = await socketFrames(`ws://${url.host}/api`, url.origin, [{ id: 1, channel: 'loadConfig', payload: {} }]);
  expect(noToken).toMatchObject({ opened: false, status: 403 });
  const foreign = await socketFrames(api, 'http://evil.example', [{ id: 1, channel: 'loadConfig', payload: {} }]);
  expect(foreign).toMatchObject({ opened: false, status: 403 });
  const ok = await socketFrames(api, url.origin, [{ id: 1, channel: 'loadConfig', payload: {} }]);
  expect(ok.opened).toBe(true);
  expect(ok.replies[0]).toMatchObject({ id: 1, envelope: { ok: true } });
});

test('a renderer-side call to an unknown channel or with a malformed payload is refused', async ({ app, page }) => {
  await page.goto(app.url!);
  await expect(page.getByTestId('config-status')).toBeVisible();
  // serve mode has no preload bridge; the page talks only through its socket.
  expect(await page.evaluate(() => typeof (window as { api?: unknown }).api)).toBe('undefined');
  const replies = await page.evaluate(async (socketUrl) => {
    const ws = new WebSocket(socketUrl);
    await new Promise((r) => ws.addEventListener('open', r, { once: true }));
    const frames = [
      { id: 1, channel: 'readFile', payload: { path: '/etc/passwd' } },
      { id: 2, channel: 'saveConfig', payload: { text: 123 } },
      { id: 3, channel: 'upsertNode', payload: { node: { id: 'x', path: './x', token: 'secret' } } },
      { id: 4, channel: 'openManifest', payload: { path: '/etc/passwd' } },
    ];
    const out: unknown[] = [];
    const done = new Promise<void>((resolve) => {
      ws.addEventListener('message', (e) => {
        const m = JSON.parse(String(e.data)) as { id?: number };
        if (m.id !== undefined) out.push(m);
        if (out.length === frames.length + 1) resolve();
      });
    });
    for (const f of frames) ws.send(JSON.stringify(f));
    ws.send('this is not json');
    await done;
    ws.close();
    return out;
  }, `ws://${new URL(app.url!).host}${new URL(app.url!).pathname}api`);
  const byId = new Map((replies as { id: number; envelope: { ok: boolean; error?: { code: string; message: string } } }[]).map((r) => [r.id, r.envelope]));
  expect(byId.get(1)).toEqual({ ok: false, error: { code: 'unknown_channel', message: 'Unknown channel "readFile".' } });
  expect(byId.get(2)).toEqual({ ok: false, error: { code: 'invalid_request', message: 'Refused: saveConfig.text: expected a string, got number.' } });
  expect(byId.get(3)).toMatchObject({ ok: false, error: { code: 'invalid_request', message: expect.stringContaining('unknown field "token"') } });
  expect(byId.get(4)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  expect(byId.get(-1)).toEqual({ ok: false, error: { code: 'invalid_request', message: 'Refused: message is not JSON.' } });
});

test('the CSP blocks injected inline script', async ({ page }) => {
  const result = await page.evaluate(async () => {
    const violated = new Promise<string>((resolve) => document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true }));
    const s = document.createElement('script');
    s.textContent = 'window.__injected = true';
    document.body.appendChild(s);
    const directive = await Promise.race([violated, new Promise<string>((r) => setTimeout(() => r('none'), 2000))]);
    return { directive, injected: (window as { __injected?: boolean }).__injected === true };
  });
  expect(result.injected).toBe(false);
  expect(result.directive).toMatch(/^script-src/);
});
