/**
 * Thin helpers over `ctx.storage.sql`: bound parameters only, and every cursor is drained at once
 * (`toArray`) so no cursor is ever held across an `await`.
 */
export type SqlValue = string | number | null;

export class Sql {
  constructor(private readonly storage: SqlStorage) {}

  all<T>(query: string, ...bindings: SqlValue[]): T[] {
    return this.storage.exec(query, ...bindings).toArray() as T[];
  }

  one<T>(query: string, ...bindings: SqlValue[]): T | null {
    return this.all<T>(query, ...bindings)[0] ?? null;
  }

  run(query: string, ...bindings: SqlValue[]): number {
    return this.storage.exec(query, ...bindings).rowsWritten;
  }
}
