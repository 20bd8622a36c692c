// The Electron window's hardening, checked on the exact options and rules main builds.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { APP_CSP, APP_PAGE, appFileFor, isAllowedExternal, isAppUrl, isTrustedSender, windowOptions } from '../../electron/main/security.ts';
import type { AppLocation } from '../../electron/main/security.ts';
import { pageOriginsFor, serveCsp, stripToken } from '../../electron/serve/serve.ts';
import { APP_META_CSP } from '../../shared/ipc/csp.ts';
import { cspMetaPlugin } from '../../vite.renderer.config.ts';

const fileApp: AppLocation = { kind: 'app', url: APP_PAGE };
const devApp: AppLocation = { kind: 'dev', url: 'http://127.0.0.1:5173/' };

describe('window options', () => {
  const prefs = windowOptions('/opt/app/dist/electron/preload.cjs').webPreferences!;
  it('isolates and sandboxes the renderer', () => {
    expect(prefs.contextIsolation).toBe(true);
    expect(prefs.sandbox).toBe(true);
    expect(prefs.nodeIntegration).toBe(false);
    expect(prefs.nodeIntegrationInWorker).toBe(false);
    expect(prefs.nodeIntegrationInSubFrames).toBe(false);
    expect(prefs.webSecurity).toBe(true);
    expect(prefs.allowRunningInsecureContent).toBe(false);
    expect(prefs.webviewTag).toBe(false);
    expect(prefs.experimentalFeatures).toBe(false);
    expect(prefs.preload).toBe('/opt/app/dist/electron/preload.cjs');
  });

  it('has DevTools off unless asked for (main asks only when not packaged)', () => {
    expect(prefs.devTools).toBe(false);
    expect(windowOptions('/p.cjs', { devTools: true }).webPreferences?.devTools).toBe(true);
  });
});

describe('app:// protocol', () => {
  const root = '/opt/app/dist/renderer';
  it('serves the built renderer’s files and nothing else', () => {
    expect(APP_PAGE).toBe('app://bundle/index.html');
    expect(appFileFor('app://bundle/index.html', root)).toBe('/opt/app/dist/renderer/index.html');
    expect(appFileFor('app://bundle/', root)).toBe('/opt/app/dist/renderer/index.html');
    expect(appFileFor('app://bundle/assets/index-abc.js?v=1#x', root)).toBe('/opt/app/dist/renderer/assets/index-abc.js');
    // The URL parser folds dot segments, so these stay inside the folder (and name files that are not there).
    expect(appFileFor('app://bundle/../../etc/passwd', root)).toBe('/opt/app/dist/renderer/etc/passwd');
    expect(appFileFor('app://bundle/%2e%2e/%2e%2e/etc/passwd', root)).toBe('/opt/app/dist/renderer/etc/passwd');
    for (const bad of [
      'app://bundle/assets/..%2f..%2f..%2fetc%2fpasswd',
      'app://bundle/..%2f..%2fetc%2fpasswd',
      'app://bundle/a%5c..%5c..%5csecret',
      'app://bundle/index.html%00.js',
      'app://other/index.html',
      'file:///opt/app/dist/renderer/index.html',
      'app://bundle/%E0%A4%A',
      'not a url',
    ]) {
      expect(appFileFor(bad, root), bad).toBeUndefined();
    }
  });
});

describe('links opened outside the app', () => {
  it('opens only https links to the documentation sites on the allow-list', () => {
    expect(isAllowedExternal('https://github.com/some/repo#readme')).toBe(true);
    expect(isAllowedExternal('https://docs.aws.amazon.com/AmazonS3/latest/userguide/')).toBe(true);
    for (const bad of ['http://github.com/', 'https://github.com.evil.example/', 'https://user:pw@github.com/', 'https://evil.example/', 'file:///etc/passwd', 'javascript:alert(1)', 'smb://host/share', 'not a url']) {
      expect(isAllowedExternal(bad), bad).toBe(false);
    }
  });
});

describe('content security policy', () => {
  it('allows only the app’s own scripts and no remote content', () => {
    for (const csp of [APP_CSP, serveCsp('http://127.0.0.1:4000')]) {
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toMatch(/script-src[^;]*unsafe/);
      expect(csp).toContain("object-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
    }
    expect(serveCsp('http://127.0.0.1:4000')).toContain('connect-src \'self\' ws://127.0.0.1:4000');
  });

  it('comes from one source: the meta tag the build writes is the header’s policy minus header-only directives', () => {
    const html = readFileSync(new URL('../../renderer/index.html', import.meta.url), 'utf8');
    const transform = cspMetaPlugin('build').transformIndexHtml as (html: string) => string;
    const meta = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(transform(html))?.[1];
    expect(meta).toBe(APP_META_CSP);
    expect(APP_CSP.split('; ').filter((d) => !d.startsWith('frame-ancestors')).join('; ')).toBe(meta);
    expect(serveCsp('http://127.0.0.1:4000').replace(' ws://127.0.0.1:4000', '')).toBe(APP_CSP);
  });
});

describe('serve mode origins', () => {
  it('takes every loopback name on its own port for a loopback bind, and only the bound name otherwise', () => {
    expect(pageOriginsFor('127.0.0.1', 4000)).toEqual(['http://127.0.0.1:4000', 'http://localhost:4000', 'http://[::1]:4000']);
    expect(pageOriginsFor('10.0.0.5', 4000)).toEqual(['http://10.0.0.5:4000']);
  });
});

describe('navigation guard', () => {
  it('allows only the app page', () => {
    expect(isAppUrl('app://bundle/index.html', fileApp)).toBe(true);
    expect(isAppUrl('app://bundle/index.html#x', fileApp)).toBe(true);
    expect(isAppUrl('app://bundle/other.html', fileApp)).toBe(false);
    expect(isAppUrl('app://evil/index.html', fileApp)).toBe(false);
    expect(isAppUrl('file:///opt/app/dist/renderer/index.html', fileApp)).toBe(false);
    expect(isAppUrl('file:///etc/passwd', fileApp)).toBe(false);
    expect(isAppUrl('https://example.com/', fileApp)).toBe(false);
    expect(isAppUrl('http://127.0.0.1:5173/index.html', devApp)).toBe(true);
    expect(isAppUrl('http://127.0.0.1:5174/', devApp)).toBe(false);
    expect(isAppUrl('http://127.0.0.1:5173@evil.example/', devApp)).toBe(false);
    expect(isAppUrl('javascript:alert(1)', devApp)).toBe(false);
    expect(isAppUrl('not a url', fileApp)).toBe(false);
  });
});

describe('IPC sender check', () => {
  it('trusts only the app page in the main frame', () => {
    expect(isTrustedSender({ url: fileApp.url, parent: null }, fileApp)).toBe(true);
    expect(isTrustedSender({ url: fileApp.url, parent: {} }, fileApp)).toBe(false);
    expect(isTrustedSender({ url: 'https://evil.example/', parent: null }, fileApp)).toBe(false);
    expect(isTrustedSender(null, fileApp)).toBe(false);
    expect(isTrustedSender(undefined, fileApp)).toBe(false);
  });
});

describe('serve mode token', () => {
  it('needs the exact token as the first path segment', () => {
    expect(stripToken('/tok123/', 'tok123')).toBe('/');
    expect(stripToken('/tok123/api', 'tok123')).toBe('/api');
    expect(stripToken('/tok123', 'tok123')).toBe('');
    expect(stripToken('/tok124/', 'tok123')).toBeUndefined();
    expect(stripToken('/tok12/', 'tok123')).toBeUndefined();
    expect(stripToken('/', 'tok123')).toBeUndefined();
    expect(stripToken('/api', 'tok123')).toBeUndefined();
  });
});
