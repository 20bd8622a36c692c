// A windowed list: however many rows there are, the DOM holds only the visible ones plus a small overscan.
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { ReactNode } from 'react';

export interface VirtualListProps {
  count: number;
  rowHeight: number;
  /** Viewport height in px. */
  height: number;
  overscan?: number;
  renderRow: (index: number) => ReactNode;
  label: string;
  testId?: string;
  /** Scrolls `index` to the middle of the view whenever `key` changes (a problem clicked elsewhere). */
  scrollTo?: { index: number; key: number } | null;
  /** Extra class for a row (the one scrolled to, rows with a problem). */
  rowClass?: (index: number) => string;
  /** Told the rows rendered (`first` to `last - 1`, overscan included) whenever they change: a paged table fetches them. */
  onRange?: (first: number, last: number) => void;
}

/**
 * The most pixels the list is ever made tall. Browsers cap an element's height (~33.5 million px in Chromium, ~17.9
 * million in Firefox), so past this (a million rows) the scroll bar moves through the rows in proportion instead.
 */
export const MAX_SCROLL_PX = 15_000_000;

/** How tall the list's content is made, and how many pixels of rows one pixel of scroll moves. */
export function scrollScale(count: number, rowHeight: number, height: number): { content: number; ratio: number } {
  const rows = count * rowHeight;
  const content = Math.min(rows, MAX_SCROLL_PX);
  return { content, ratio: content > height ? (rows - height) / (content - height) : 1 };
}

export function visibleRange(scrollTop: number, height: number, rowHeight: number, count: number, overscan: number): [number, number] {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(count, Math.ceil((scrollTop + height) / rowHeight) + overscan);
  return [first, Math.max(first, last)];
}

export function VirtualList({ count, rowHeight, height, overscan = 6, renderRow, label, testId, scrollTo, rowClass, onRange }: VirtualListProps) {
  const [scrollTop, setScrollTop] = useState(0);
  const ref = useRef<HTMLDivElement>(null);
  const onScroll = useCallback(() => setScrollTop(ref.current?.scrollTop ?? 0), []);
  const { content, ratio } = scrollScale(count, rowHeight, height);
  const target = scrollTo?.index;
  const targetKey = scrollTo?.key;
  useEffect(() => {
    const el = ref.current;
    if (!el || target === undefined || target < 0) return;
    el.scrollTop = Math.max(0, (target * rowHeight - height / 2 + rowHeight / 2) / ratio);
    setScrollTop(el.scrollTop);
  }, [target, targetKey, rowHeight, height, ratio]);
  // When the list shrinks under the scroll position, pull back to the end. Only then is scrollTop read: reading it
  // forces a layout, which a list growing ten times a second during a run must not pay for.
  const previousCount = useRef(count);
  useLayoutEffect(() => {
    const shrank = count < previousCount.current;
    previousCount.current = count;
    const el = ref.current;
    if (shrank && el && el.scrollTop > Math.max(0, content - height)) setScrollTop(el.scrollTop);
  }, [count, content, height]);
  // The rows' own offset at this scroll position (the same as scrollTop unless the content is capped).
  const offset = Math.min(scrollTop * ratio, Math.max(0, count * rowHeight - height));
  const [first, last] = visibleRange(offset, height, rowHeight, count, overscan);
  useEffect(() => {
    onRange?.(first, last);
  }, [onRange, first, last]);
  const rows: ReactNode[] = [];
  for (let i = first; i < last; i += 1) {
    rows.push(
      <div key={i} role="row" aria-rowindex={i + 1} className={`vrow ${rowClass?.(i) ?? ''}`} style={{ top: i * rowHeight - offset + scrollTop, height: rowHeight }}>
        {renderRow(i)}
      </div>,
    );
  }
  return (
    <div ref={ref} className="vlist" style={{ height }} onScroll={onScroll} role="table" aria-label={label} aria-rowcount={count} data-testid={testId} tabIndex={0}>
      <div style={{ height: content, position: 'relative' }}>{rows}</div>
    </div>
  );
}
