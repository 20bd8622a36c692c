// A listing Azurite cannot answer: it keeps a blob whose name holds a control character but sends it as raw XML,
// which its own serializer refuses with an empty 500. Real Azure encodes such names; here the SDK's error has no
// text, and the engine's message must still say what went wrong, not end at "list failed: ".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bucket } from '../../electron/engine/storage/bucket.ts';
import { StorageError } from '../../electron/engine/storage/driver.ts';
import { startStore } from './stores.ts';
import type { StoreFixture } from './stores.ts';

let store: StoreFixture;

beforeAll(async () => {
  store = await startStore('azure', 'control-names');
  await store.put('plain.bin', Buffer.from('plain'));
  await store.put('control\u0001name.bin', Buffer.from('control'));
}, 60_000);

afterAll(() => store?.stop());

describe('a listing the store answers without a message (Azurite)', () => {
  it('fails naming the store, the container, the error kind and the HTTP status, never with an empty reason', async () => {
    const bucket = new Bucket(store.driver(), { retries: 0, baseDelayMs: 10 });
    const listed = await bucket.list({ pattern: '**' }).then(
      (objects) => ({ objects }),
      (error: unknown) => ({ error }),
    );
    if ('objects' in listed) {
      // An Azurite that encodes such names lists both, each under its own key.
      expect(listed.objects.map((o) => o.key).sort()).toEqual(['control\u0001name.bin', 'plain.bin']);
      return;
    }
    expect(listed.error).toBeInstanceOf(StorageError);
    const { message } = listed.error as StorageError;
    expect(message).toMatch(/^azure azure:\/\/control-names \(endpoint http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1\): list failed: \S/);
    expect(message).toContain('HTTP 500');
    expect(message).toContain('RestError');
  }, 60_000);
});
