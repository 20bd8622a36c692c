// Hashing off the calling thread. Only node: imports, so Node runs this file directly.
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

type Message =
  | { op: 'open'; id: number; algorithm: string }
  | { op: 'update'; id: number; buffer: ArrayBuffer; length: number }
  | { op: 'digest'; id: number };

const hashes = new Map<number, Hash>();
const port = parentPort;
if (!port) throw new Error('hash worker must run in a worker thread');

port.on('message', (message: Message) => {
  switch (message.op) {
    case 'open':
      hashes.set(message.id, createHash(message.algorithm));
      break;
    case 'update': {
      hashes.get(message.id)?.update(new Uint8Array(message.buffer, 0, message.length));
      // The buffer goes back to the sender for reuse: no allocation per block.
      port.postMessage({ op: 'ack', id: message.id, buffer: message.buffer }, [message.buffer]);
      break;
    }
    case 'digest': {
      const hash = hashes.get(message.id);
      hashes.delete(message.id);
      port.postMessage({ op: 'digest', id: message.id, hex: hash?.digest('hex') ?? '' });
      break;
    }
  }
});
