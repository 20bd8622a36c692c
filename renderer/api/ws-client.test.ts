import { describe, expect, it } from 'vitest';
import { socketTrouble } from './ws-client.ts';

describe('what a closed socket means', () => {
  it('a socket refused while the page’s server answers is a refusal, not a dead server', () => {
    const refused = socketTrouble(false, true, 'http://localhost:4000');
    expect(refused.state).toBe('refused');
    expect(refused.message).toContain('running but refused');
    expect(refused.message).toContain('http://localhost:4000');
    expect(refused.message).not.toContain('still running');
  });

  it('a server that no longer answers is reported as gone, with how to bring it back', () => {
    expect(socketTrouble(true, false, 'http://127.0.0.1:4000')).toMatchObject({ state: 'lost', message: expect.stringContaining('"npm run serve" is still running') });
    expect(socketTrouble(true, true, 'http://127.0.0.1:4000')).toMatchObject({ state: 'lost', message: expect.stringContaining('reconnecting') });
  });
});
