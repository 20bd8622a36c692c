// Colours of the distribution picture. Files get categorical colours (Okabe–Ito and Paul Tol's colour-blind safe
// sets, with every red, pink and magenta left out), assigned in the order files first appear, so neighbouring files
// never get near-identical hues. State is never shown by hue alone: a failed chunk is a red cell with a white
// cross, a moved one has a dark outline, one still in flight is faded.

export const FAILED_COLOUR = '#dc2626';
export const MOVED_OUTLINE = '#111827';
export const HIGHLIGHT_OUTLINE = '#0f172a';

export const FILE_PALETTE: readonly string[] = [
  '#0072b2', // blue
  '#e69f00', // orange
  '#009e73', // bluish green
  '#56b4e9', // sky blue
  '#f0e442', // yellow
  '#332288', // indigo
  '#44aa99', // teal
  '#999933', // olive
  '#8c564b', // brown
  '#117733', // green
  '#ddcc77', // sand
];

/** How a file's cells look: its colour, and a mark that tells apart files sharing a colour past the palette's end. */
export interface FileStyle {
  colour: string;
  /** 0: plain, 1: stripe, 2: dot, 3: hollow. */
  mark: 0 | 1 | 2 | 3;
}

export function fileStyle(order: number): FileStyle {
  const colour = FILE_PALETTE[order % FILE_PALETTE.length]!;
  const mark = (Math.floor(order / FILE_PALETTE.length) % 4) as FileStyle['mark'];
  return { colour, mark };
}

/** Files in the order they first appear in the run, each with its style. */
export function fileStyles(files: Iterable<string>): Map<string, FileStyle> {
  const out = new Map<string, FileStyle>();
  for (const f of files) if (!out.has(f)) out.set(f, fileStyle(out.size));
  return out;
}

function channel(c: number): number {
  const v = c / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

/** CIE L*a*b* of a #rrggbb colour (D65). */
export function toLab(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  const r = channel((n >> 16) & 255);
  const g = channel((n >> 8) & 255);
  const b = channel(n & 255);
  const x = (r * 0.4124 + g * 0.3576 + b * 0.1805) / 0.95047;
  const y = r * 0.2126 + g * 0.7152 + b * 0.0722;
  const z = (r * 0.0193 + g * 0.1192 + b * 0.9505) / 1.08883;
  const f = (t: number): number => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  return [116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))];
}

/** CIE76 colour difference: above ~10 two swatches are told apart at a glance. */
export function deltaE(a: string, b: string): number {
  const [l1, a1, b1] = toLab(a);
  const [l2, a2, b2] = toLab(b);
  return Math.hypot(l1 - l2, a1 - a2, b1 - b2);
}
