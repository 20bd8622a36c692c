// The only bridge between the sandboxed renderer and main: `window.api`, one function per contract channel.
// It never exposes ipcRenderer, a generic send, or the IPC event object.
import { contextBridge, ipcRenderer } from 'electron';
import { EVENT_CHANNELS, eventMethodName, ipcChannel, REQUEST_CHANNELS } from '../../shared/ipc/contract.ts';
import type { Envelope, EventChannel, Events, WireApi } from '../../shared/ipc/contract.ts';

function buildApi(): WireApi {
  const api: Record<string, unknown> = {};
  for (const channel of REQUEST_CHANNELS) {
    api[channel] = (payload: unknown): Promise<Envelope<unknown>> => ipcRenderer.invoke(ipcChannel(channel), payload) as Promise<Envelope<unknown>>;
  }
  for (const event of EVENT_CHANNELS) {
    api[eventMethodName(event)] = (listener: (payload: Events[EventChannel]) => void): (() => void) => {
      if (typeof listener !== 'function') throw new TypeError(`${eventMethodName(event)} needs a function`);
      const relay = (_event: Electron.IpcRendererEvent, payload: Events[EventChannel]): void => listener(payload);
      ipcRenderer.on(ipcChannel(event), relay);
      return () => {
        ipcRenderer.removeListener(ipcChannel(event), relay);
      };
    };
  }
  return Object.freeze(api) as WireApi;
}

contextBridge.exposeInMainWorld('api', buildApi());
