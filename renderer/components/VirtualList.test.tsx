// @vitest-environment jsdom
import { fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '@testing-library/react';
import { VirtualList, visibleRange } from './VirtualList.tsx';

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
});
