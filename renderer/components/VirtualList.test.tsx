// @vitest-environment jsdom
import { fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '@testing-library/react';
import { MAX_SCROLL_PX, scrollScale, VirtualList, visibleRange } from './VirtualList.tsx';

afterEach(cleanup);

describe('VirtualList', () => {
  it('computes the visible window with overscan', () => {
    expect(visibleRange(0, 260, 26, 100_000, 6)).toEqual([0, 16]);
    expect(visibleRange(26 * 1000, 260, 26, 100_000, 6)).toEqual([994, 1016]);
    expect(visibleRange(26 * 99_995, 260, 26, 100_000, 6)).toEqual([99_989, 100_000]);
    expect(visibleRange(0, 260, 26, 3, 6)).toEqual([0, 3]);
  });

  it('keeps a bounded number of rows in the DOM for 100,000 items, and follows the scroll', () => {
    render(<VirtualList count={100_000} rowHeight={26} height={260} label="Chunks" renderRow={(i) => <span>row {i}</span>} />);
    const table = screen.getByRole('table', { name: 'Chunks' });
    expect(table.getAttribute('aria-rowcount')).toBe('100000');
    expect(screen.getAllByRole('row').length).toBeLessThanOrEqual(30);
    expect(screen.getByText('row 0')).toBeTruthy();
    table.scrollTop = 26 * 50_000;
    fireEvent.scroll(table);
    expect(screen.queryByText('row 0')).toBeNull();
    expect(screen.getByText('row 50000')).toBeTruthy();
    expect(screen.getAllByRole('row').length).toBeLessThanOrEqual(30);
  });

  it('reaches every row of a list taller than a browser allows (two million rows): the scroll moves through them in proportion', () => {
    const ranges: [number, number][] = [];
    const { rerender } = render(<VirtualList count={2_000_000} rowHeight={28} height={380} label="Huge" renderRow={(i) => <span>row {i}</span>} onRange={(a, b) => ranges.push([a, b])} />);
    const table = screen.getByRole('table', { name: 'Huge' });
    const { content, ratio } = scrollScale(2_000_000, 28, 380);
    expect(content).toBe(MAX_SCROLL_PX);
    expect((table.firstElementChild as HTMLElement).style.height).toBe(`${MAX_SCROLL_PX}px`);
    expect(ranges.at(-1)).toEqual([0, 20]);
    table.scrollTop = content - 380;
    fireEvent.scroll(table);
    expect(screen.getByText('row 1999999')).toBeTruthy();
    expect(ranges.at(-1)![1]).toBe(2_000_000);
    expect(screen.getAllByRole('row').at(-1)!.getAttribute('aria-rowindex')).toBe('2000000');
    table.scrollTop = 1_000_000 * 28 / ratio;
    fireEvent.scroll(table);
    expect(screen.getByText('row 1000000')).toBeTruthy();
    // Scrolled to on request: row 1,500,000 in the middle of the view.
    rerender(<VirtualList count={2_000_000} rowHeight={28} height={380} label="Huge" renderRow={(i) => <span>row {i}</span>} scrollTo={{ index: 1_500_000, key: 1 }} />);
    expect(screen.getByText('row 1500000')).toBeTruthy();
    expect(table.scrollTop * ratio).toBeCloseTo(1_500_000 * 28 - 190 + 14, 3); // its row in the middle of the view
  });
});
