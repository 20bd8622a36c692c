// Renderer entry: connect to the engine (Electron preload or serve mode's socket), build the store, render.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { connectApi } from './api/client.ts';
import { App } from './components/App.tsx';
import { StoreProvider } from './store/context.tsx';
import { bridgeEvents, createAppStore } from './store/store.ts';
import './styles.css';

const api = connectApi();
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
