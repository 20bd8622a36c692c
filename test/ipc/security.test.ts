// The Electron window's hardening, checked on the exact options and rules main builds.
import { describe, expect, it } from 'vitest';
import { APP_CSP, isAppUrl, isTrustedSender, windowOptions } from '../../electron/main/security.ts';
import type { AppLocation } from '../../electron/main/security.ts';
import { serveCsp, stripToken } from '../../electron/serve/serve.ts';

const fileApp: AppLocation = { kind: 'file', url: 'file:///opt/app/dist/renderer/index.html' };
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
});

describe('navigation guard', () => {
  it('allows only the app page', () => {
    expect(isAppUrl('file:///opt/app/dist/renderer/index.html', fileApp)).toBe(true);
    expect(isAppUrl('file:///opt/app/dist/renderer/index.html#x', fileApp)).toBe(true);
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
