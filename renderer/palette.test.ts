import { describe, expect, it } from 'vitest';
import { deltaE, FAILED_COLOUR, FILE_PALETTE, fileStyle, fileStyles } from './palette.ts';

describe('distribution palette', () => {
  it('never comes near the failed colour, and its colours are told apart from each other', () => {
    for (const colour of FILE_PALETTE) expect(deltaE(colour, FAILED_COLOUR), colour).toBeGreaterThan(35);
    let closest = Infinity;
    for (let i = 0; i < FILE_PALETTE.length; i += 1) {
      for (let j = i + 1; j < FILE_PALETTE.length; j += 1) closest = Math.min(closest, deltaE(FILE_PALETTE[i]!, FILE_PALETTE[j]!));
    }
    expect(closest).toBeGreaterThan(15);
  });

  it('gives files colours in the order they appear, and a mark to files that share a colour past the palette', () => {
    const files = Array.from({ length: 50 }, (_, i) => `f${i}`);
    const styles = fileStyles(['f0', ...files]);
    expect(styles.size).toBe(50);
    expect(styles.get('f0')).toEqual({ colour: FILE_PALETTE[0], mark: 0 });
    expect(styles.get('f1')?.colour).toBe(FILE_PALETTE[1]);
    const looks = new Set([...styles.values()].map((s) => `${s.colour}/${s.mark}`));
    expect(looks.size).toBe(44); // 11 colours × 4 marks before any look repeats
    expect(fileStyle(FILE_PALETTE.length)).toEqual({ colour: FILE_PALETTE[0], mark: 1 });
  });
});
