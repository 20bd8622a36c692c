// Renderer entry: connect to the engine (Electron preload or serve mode's socket), build the store, render.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { connectApi } from './api/client.ts';
import { App } from './components/App.tsx';
import { StoreProvider } from './store/context.tsx';
import { bridgeEvents, createAppStore } from './store/store.ts';
import type { AppStore } from './store/store.ts';
import type { Connection } from './store/types.ts';
import './styles.css';

// After a lost serve-mode connection comes back, catch up on a run that went on meanwhile; while it is down, say why.
let early: Connection | undefined;
const bound: { store?: AppStore } = {};
const api = connectApi({
  onReconnect: () => void bound.store?.getState().loadIngestSnapshot(),
  onState: (state, message) => {
    if (bound.store) bound.store.getState().setConnection({ state, message });
    else early = { state, message };
  },
});
const store = createAppStore(api);
bound.store = store;
if (early) store.getState().setConnection(early);
bridgeEvents(api, store);

const root = document.getElementById('root');
if (!root) throw new Error('index.html lacks #root');
createRoot(root).render(
  <StrictMode>
    <StoreProvider store={store}>
      <App />
    </StoreProvider>
  </StrictMode>,
);
