// The shell: a sidebar with the four screens and the effective cloud, and the current screen.
import { useEffect } from 'react';
import { useApp } from '../store/context.tsx';
import type { Screen } from '../store/types.ts';
import { ConfigScreen } from './ConfigScreen.tsx';
import { IngestScreen } from './IngestScreen.tsx';
import { NodesScreen } from './NodesScreen.tsx';
import { ReceivedScreen } from './ReceivedScreen.tsx';

const SCREENS: { id: Screen; label: string; icon: string }[] = [
  { id: 'config', label: 'Config', icon: '⚙' },
  { id: 'nodes', label: 'Nodes', icon: '◉' },
  { id: 'ingest', label: 'Ingest', icon: '⇣' },
  { id: 'received', label: 'Received chunks', icon: '▦' },
];

export function App() {
  const screen = useApp((s) => s.screen);
  const setScreen = useApp((s) => s.setScreen);
  const loadConfig = useApp((s) => s.loadConfig);
  const detect = useApp((s) => s.detect);
  const loadIngestSnapshot = useApp((s) => s.loadIngestSnapshot);
  const cloud = useApp((s) => s.detection.view?.effective);
  const phase = useApp((s) => s.ingest.meta?.phase);
  const unhealthy = useApp((s) => s.nodes.statuses.filter((n) => n.state !== 'healthy').length);

  useEffect(() => {
    void loadConfig();
    void detect();
    void loadIngestSnapshot();
  }, [loadConfig, detect, loadIngestSnapshot]);

  return (
    <div className="app">
      <nav className="sidebar" aria-label="Screens">
        <div className="brand">
          <span className="logo">☁</span>
          <div>
            <strong>Cloud Ingest</strong>
            <small>{cloud ? `cloud: ${cloud}` : 'detecting cloud…'}</small>
          </div>
        </div>
        <ul>
          {SCREENS.map((s) => (
            <li key={s.id}>
              <button type="button" className={screen === s.id ? 'nav active' : 'nav'} aria-current={screen === s.id ? 'page' : undefined} onClick={() => setScreen(s.id)}>
                <span className="icon" aria-hidden="true">{s.icon}</span>
                {s.label}
                {s.id === 'nodes' && unhealthy > 0 && <span className="count bad">{unhealthy}</span>}
                {s.id === 'ingest' && (phase === 'running' || phase === 'starting') && <span className="count live">live</span>}
              </button>
            </li>
          ))}
        </ul>
      </nav>
      <main className="content">
        {screen === 'config' && <ConfigScreen />}
        {screen === 'nodes' && <NodesScreen />}
        {screen === 'ingest' && <IngestScreen />}
        {screen === 'received' && <ReceivedScreen />}
      </main>
    </div>
  );
}
