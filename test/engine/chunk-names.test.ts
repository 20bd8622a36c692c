// Chunk file names: the documented rule (letters, digits and `_` kept, `.` and `-` kept except first, every other
// byte of UTF-8 percent-encoded in upper case), checked against a plain statement of it for every ASCII character
// at the start and inside a name, and for mixed ASCII and non-ASCII ids.
import { describe, expect, it } from 'vitest';
import { chunkFileName, encodeNamePart } from '../../electron/engine/chunk-names.ts';

function byTheRule(text: string): string {
  let name = '';
  for (const char of text) {
    const kept = /[\p{L}\p{N}_]/u.test(char) || ((char === '.' || char === '-') && name.length > 0);
    name += kept ? char : [...Buffer.from(char, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return name;
}

describe('chunk file names', () => {
  it('follow the rule for every ASCII character, first and inside a name', () => {
    for (let code = 0; code < 128; code++) {
      const char = String.fromCharCode(code);
      for (const id of [`${char}x`, `x${char}`, `${char}${char}`, `dir/${char}.bin_chunk_0`]) {
        expect(chunkFileName(id), JSON.stringify(id)).toBe(byTheRule(id));
        expect(encodeNamePart(id), JSON.stringify(id)).toBe(byTheRule(id));
      }
    }
  });

  it('follow it for random ASCII ids, whatever runs of kept and encoded characters they hold', () => {
    let seed = 7;
    const next = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
    const alphabet = 'ab09_.-/ %~\\:\n\tZ';
    for (let n = 0; n < 5000; n++) {
      let id = '';
      for (let length = next() % 40; id.length < length; ) id += next() % 4 === 0 ? String.fromCharCode(next() % 128) : alphabet[next() % alphabet.length];
      expect(chunkFileName(id), JSON.stringify(id)).toBe(byTheRule(id));
      expect(encodeNamePart(id), JSON.stringify(id)).toBe(byTheRule(id));
    }
  });

  it('follow it for ids mixing ASCII and other scripts', () => {
    for (const id of ['train/猫/01.jpg_chunk_0', 'é-x.bin_chunk_3', '-数.txt_chunk_0', 'a b/ü.bin_chunk_1']) {
      expect(chunkFileName(id)).toBe(byTheRule(id));
      expect(encodeNamePart(id)).toBe(byTheRule(id));
    }
  });
});
