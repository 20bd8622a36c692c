// Serve mode's transport: the same wire API over a WebSocket to the page's own origin. The access token is the
// first path segment of the page URL (/<token>/), so the socket lives at /<token>/api.
import { EVENT_CHANNELS, eventMethodName, isEventChannel, REQUEST_CHANNELS } from '../../shared/ipc/contract.ts';
import type { Envelope, EventChannel, Events, WireApi } from '../../shared/ipc/contract.ts';

type Listener = (payload: Events[EventChannel]) => void;

export function socketUrl(location: { protocol: string; host: string; pathname: string }): string {
  const base = location.pathname.endsWith('/') ? location.pathname : location.pathname.replace(/[^/]*$/, '');
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${base}api`;
}

/** `onReconnect` runs after the socket comes back, so the app can re-read state it may have missed. */
export function createWsApi(url: string, WebSocketImpl: typeof WebSocket = WebSocket, onReconnect?: () => void): WireApi {
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
      for (const resolve of pending.values()) {
        resolve({ ok: false, error: { code: 'failed', message: 'Lost the connection to the app server. Fix: check that "npm run serve" is still running, then retry.' } });
      }
      pending.clear();
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  };
  connect();

  const send = (frame: string): void => {
    if (socket && socket.readyState === WebSocketImpl.OPEN) socket.send(frame);
    else queue.push(frame);
  };

  const api: Record<string, unknown> = {};
  for (const channel of REQUEST_CHANNELS) {
    api[channel] = (payload: unknown): Promise<Envelope<unknown>> =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        send(JSON.stringify({ id, channel, payload }));
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
