// A screen's error where it happened, unless it only repeats why the connection is down (said once, at the top).
import { useApp } from '../store/context.tsx';

export function ErrorBanner({ error }: { error: string | null | undefined }) {
  const connectionMessage = useApp((s) => (s.connection.state === 'open' ? null : s.connection.message));
  if (!error || error === connectionMessage) return null;
  return <p className="banner error" role="alert">{error}</p>;
}
