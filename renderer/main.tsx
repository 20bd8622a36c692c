// Renderer entry: connect to the engine (Electron preload or serve mode's socket), build the store, render.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { connectApi } from './api/client.ts';
import { App } from './components/App.tsx';
import { StoreProvider } from './store/context.tsx';
import { bridgeEvents, createAppStore } from './store/store.ts';
import './styles.css';

// After a lost serve-mode connection comes back, catch up on a run that went on meanwhile.
const api = connectApi(() => void store.getState().loadIngestSnapshot());
const store = createAppStore(api);
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
