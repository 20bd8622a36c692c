// Dense positions for ids, in the order they are first seen: a node id as a bit or a column in a typed array.
export class Positions {
  private readonly byId = new Map<string, number>();
  private readonly ids: string[] = [];

  /** The id's position, given it the first time it is asked for. */
  of(id: string): number {
    let position = this.byId.get(id);
    if (position === undefined) {
      position = this.ids.push(id) - 1;
      this.byId.set(id, position);
    }
    return position;
  }

  idAt(position: number): string | undefined {
    return this.ids[position];
  }
}
