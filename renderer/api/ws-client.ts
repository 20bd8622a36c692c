// Serve mode's transport: the same wire API over a WebSocket to the page's own origin. The access token is the
// first path segment of the page URL (/<token>/), so the socket lives at /<token>/api.
import { EVENT_CHANNELS, eventMethodName, isEventChannel, REQUEST_CHANNELS } from '../../shared/ipc/contract.ts';
import type { Envelope, EventChannel, Events, WireApi } from '../../shared/ipc/contract.ts';

type Listener = (payload: Events[EventChannel]) => void;

export function socketUrl(location: { protocol: string; host: string; pathname: string }): string {
  const base = location.pathname.endsWith('/') ? location.pathname : location.pathname.replace(/[^/]*$/, '');
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${base}api`;
}

export type SocketState = 'connecting' | 'open' | 'refused' | 'lost';

export interface SocketHooks {
  /** Runs after the socket comes back, so the app can re-read state it may have missed. */
  onReconnect?: () => void;
  /** The socket's state, with the message to show while it is not open. */
  onState?: (state: SocketState, message: string | null) => void;
  /**
   * Whether the page's own server still answers (it served this page). A socket that never opened while the
   * server answers was refused, not lost; the default asks with a HEAD request for the page.
   */
  serverAnswers?: () => Promise<boolean>;
}

/** What went wrong, in words, for a socket that closed: refused while the server answers, or the server is gone. */
export function socketTrouble(everOpened: boolean, serverAnswers: boolean, pageOrigin: string): { state: SocketState; message: string } {
  if (serverAnswers && !everOpened) {
    return {
      state: 'refused',
      message: `The app server is running but refused this page's connection (page address ${pageOrigin}). Fix: open the URL exactly as "npm run serve" printed it, with its token; http://localhost:PORT/TOKEN/ and http://127.0.0.1:PORT/TOKEN/ both work.`,
    };
  }
  if (serverAnswers) return { state: 'lost', message: 'The connection to the app server dropped; reconnecting…' };
  return { state: 'lost', message: `Cannot reach the app server at ${pageOrigin}. Fix: check that "npm run serve" is still running (it prints the URL to open), then reload this page.` };
}

export function createWsApi(url: string, WebSocketImpl: typeof WebSocket = WebSocket, hooks: SocketHooks = {}): WireApi {
  const { onReconnect, onState } = hooks;
  const pageOrigin = new URL(url.replace(/^ws/, 'http')).origin;
  const serverAnswers =
    hooks.serverAnswers ??
    (async () => {
      try {
        return (await fetch(url.replace(/^ws/, 'http').replace(/api$/, ''), { method: 'HEAD', cache: 'no-store' })).ok;
      } catch {
        return false;
      }
    });
  let trouble: string | null = null;
  const pending = new Map<number, (e: Envelope<unknown>) => void>();
  const listeners = new Map<EventChannel, Set<Listener>>();
  const queue: string[] = [];
  let nextId = 1;
  let socket: WebSocket | undefined;
  let retryMs = 250;
  let opened = false;

  const connect = (): void => {
    const ws = new WebSocketImpl(url);
    socket = ws;
    ws.onopen = () => {
      retryMs = 250;
      trouble = null;
      onState?.('open', null);
      for (const frame of queue.splice(0)) ws.send(frame);
      if (opened) onReconnect?.();
      opened = true;
    };
    ws.onmessage = (message: MessageEvent) => {
      let data: unknown;
      try {
        data = JSON.parse(String(message.data));
      } catch {
        return;
      }
      if (typeof data !== 'object' || data === null) return;
      const frame = data as { id?: number; envelope?: Envelope<unknown>; event?: unknown; payload?: unknown };
      if (typeof frame.id === 'number' && frame.envelope) {
        pending.get(frame.id)?.(frame.envelope);
        pending.delete(frame.id);
      } else if (isEventChannel(frame.event)) {
        for (const listener of listeners.get(frame.event) ?? []) listener(frame.payload as Events[EventChannel]);
      }
    };
    ws.onclose = () => {
      socket = undefined;
      void serverAnswers().then((answers) => {
        const { state, message } = socketTrouble(opened, answers, pageOrigin);
        trouble = message;
        onState?.(state, message);
        for (const resolve of pending.values()) resolve({ ok: false, error: { code: 'failed', message } });
        pending.clear();
        // Requests queued while closed would wait for a socket that is refused: answer them now.
        if (state === 'refused') {
          for (const frame of queue.splice(0)) {
            const id = (JSON.parse(frame) as { id: number }).id;
            pending.get(id)?.({ ok: false, error: { code: 'failed', message } });
            pending.delete(id);
          }
        }
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 5000);
      });
    };
  };
  onState?.('connecting', null);
  connect();

  const send = (frame: string, id: number): void => {
    if (socket && socket.readyState === WebSocketImpl.OPEN) socket.send(frame);
    else if (trouble && !opened) {
      // Refused before: fail fast with the reason instead of waiting on a socket that will not open.
      pending.get(id)?.({ ok: false, error: { code: 'failed', message: trouble } });
      pending.delete(id);
    } else queue.push(frame);
  };

  const api: Record<string, unknown> = {};
  for (const channel of REQUEST_CHANNELS) {
    api[channel] = (payload: unknown): Promise<Envelope<unknown>> =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        send(JSON.stringify({ id, channel, payload }), id);
      });
  }
  for (const event of EVENT_CHANNELS) {
    api[eventMethodName(event)] = (listener: Listener): (() => void) => {
      const set = listeners.get(event) ?? new Set<Listener>();
      listeners.set(event, set);
      set.add(listener);
      return () => set.delete(listener);
    };
  }
  return api as WireApi;
}
