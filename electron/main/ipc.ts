// Typed IPC wiring: one handler per contract channel, each checking its sender frame before the host validates
// the payload and runs it. Events go only to the app window's main frame.
import { ipcMain } from 'electron';
import type { BrowserWindow, IpcMainInvokeEvent } from 'electron';
import { EVENT_CHANNELS, ipcChannel, REQUEST_CHANNELS } from '../../shared/ipc/contract.ts';
import type { Envelope, EventChannel, Events } from '../../shared/ipc/contract.ts';
import type { EngineHost } from '../host/host.ts';
import { isTrustedSender } from './security.ts';
import type { AppLocation } from './security.ts';

export function registerIpc(host: EngineHost, window: () => BrowserWindow | undefined, app: AppLocation): () => void {
  const trusted = (event: IpcMainInvokeEvent): boolean => {
    const win = window();
    return Boolean(win && event.sender === win.webContents && isTrustedSender(event.senderFrame, app));
  };
  for (const channel of REQUEST_CHANNELS) {
    ipcMain.handle(ipcChannel(channel), async (event, payload: unknown): Promise<Envelope<unknown>> => {
      if (!trusted(event)) return { ok: false, error: { code: 'forbidden', message: 'Refused: the request did not come from the app window.' } };
      return host.call(channel, payload);
    });
  }
  const send = <E extends EventChannel>(event: E, payload: Events[E]): void => {
    const win = window();
    if (win && !win.isDestroyed() && (EVENT_CHANNELS as readonly string[]).includes(event)) win.webContents.mainFrame.send(ipcChannel(event), payload);
  };
  const unsubscribe = host.subscribe(send);
  return () => {
    unsubscribe();
    for (const channel of REQUEST_CHANNELS) ipcMain.removeHandler(ipcChannel(channel));
  };
}
