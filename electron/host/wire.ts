// An in-process WireApi over an EngineHost: the same surface the preload and the WebSocket client give the
// renderer, for code that runs next to the host (tests, tools).
import { EVENT_CHANNELS, eventMethodName, REQUEST_CHANNELS } from '../../shared/ipc/contract.ts';
import type { EventChannel, Events, WireApi } from '../../shared/ipc/contract.ts';
import type { EngineHost } from './host.ts';

export function hostWireApi(host: EngineHost): WireApi {
  const api: Record<string, unknown> = {};
  for (const channel of REQUEST_CHANNELS) api[channel] = (payload: unknown) => host.call(channel, payload);
  for (const event of EVENT_CHANNELS) {
    api[eventMethodName(event)] = (listener: (payload: Events[EventChannel]) => void) =>
      host.subscribe((name, payload) => {
        if (name === event) listener(payload);
      });
  }
  return api as WireApi;
}
