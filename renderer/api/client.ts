// The renderer's one way to the engine: Electron's preload bridge when present, otherwise serve mode's WebSocket.
// Both speak the same wire API, so nothing above this file can tell them apart.
import type { Api, WireApi } from '../../shared/ipc/contract.ts';
import { unwrap } from './unwrap.ts';
import { createWsApi, socketUrl } from './ws-client.ts';
import type { SocketHooks } from './ws-client.ts';

declare global {
  interface Window {
    api?: WireApi;
  }
}

export function connectApi(hooks: SocketHooks = {}): Api {
  return unwrap(window.api ?? createWsApi(socketUrl(window.location), WebSocket, hooks));
}
