// The shell: a sidebar with the screens and the effective cloud, the connection's state when it is not open, and
// the current screen. Alt+1…5 switch screens from the keyboard.
import { useEffect } from 'react';
import { useApp } from '../store/context.tsx';
import type { Screen } from '../store/types.ts';
import { ActivityScreen } from './ActivityScreen.tsx';
import { ConfigScreen } from './ConfigScreen.tsx';
import { IngestScreen } from './IngestScreen.tsx';
import { NodesScreen } from './NodesScreen.tsx';
import { ReceivedScreen } from './ReceivedScreen.tsx';

const SCREENS: { id: Screen; label: string; icon: string }[] = [
  { id: 'config', label: 'Config', icon: '⚙' },
  { id: 'nodes', label: 'Nodes', icon: '◉' },
  { id: 'ingest', label: 'Ingest', icon: '⇣' },
  { id: 'received', label: 'Received chunks', icon: '▦' },
  { id: 'activity', label: 'Activity', icon: '≋' },
];

function ConnectionBanner() {
  const connection = useApp((s) => s.connection);
  if (connection.state === 'open' || connection.state === 'connecting' || !connection.message) return null;
  return (
    <p className={`banner ${connection.state === 'refused' ? 'error' : 'warn'} connection`} role="alert" data-testid="connection">
      {connection.message}
    </p>
  );
}

export function App() {
  const screen = useApp((s) => s.screen);
  const setScreen = useApp((s) => s.setScreen);
  const loadConfig = useApp((s) => s.loadConfig);
  const detect = useApp((s) => s.detect);
  const loadIngestSnapshot = useApp((s) => s.loadIngestSnapshot);
  const loadAppInfo = useApp((s) => s.loadAppInfo);
  const cloud = useApp((s) => s.detection.view?.effective);
  const phase = useApp((s) => s.ingest.meta?.phase);
  const unhealthy = useApp((s) => s.nodes.statuses.filter((n) => n.state !== 'healthy').length);

  useEffect(() => {
    void loadConfig();
    void detect();
    void loadIngestSnapshot();
    void loadAppInfo();
  }, [loadConfig, detect, loadIngestSnapshot, loadAppInfo]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      if (!e.altKey || e.ctrlKey || e.metaKey) return;
      const target = SCREENS[Number(e.key) - 1];
      if (target) {
        e.preventDefault();
        setScreen(target.id);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [setScreen]);

  return (
    <div className="app">
      <nav className="sidebar" aria-label="Screens">
        <div className="brand">
          <span className="logo" aria-hidden="true">☁</span>
          <div>
            <strong>Cloud Ingest</strong>
            <small>{cloud ? `cloud: ${cloud}` : 'detecting cloud…'}</small>
          </div>
        </div>
        <ul>
          {SCREENS.map((s, i) => (
            <li key={s.id}>
              <button type="button" className={screen === s.id ? 'nav active' : 'nav'} aria-current={screen === s.id ? 'page' : undefined} onClick={() => setScreen(s.id)} title={`${s.label} (Alt+${i + 1})`}>
                <span className="icon" aria-hidden="true">{s.icon}</span>
                <span className="nav-label">{s.label}</span>
                {s.id === 'nodes' && unhealthy > 0 && <span className="count bad" aria-label={`${unhealthy} not healthy`}>{unhealthy}</span>}
                {s.id === 'ingest' && (phase === 'running' || phase === 'starting') && <span className="count live">live</span>}
              </button>
            </li>
          ))}
        </ul>
      </nav>
      <main className="content">
        <ConnectionBanner />
        {screen === 'config' && <ConfigScreen />}
        {screen === 'nodes' && <NodesScreen />}
        {screen === 'ingest' && <IngestScreen />}
        {screen === 'received' && <ReceivedScreen />}
        {screen === 'activity' && <ActivityScreen />}
      </main>
    </div>
  );
}
