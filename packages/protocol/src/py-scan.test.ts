import { describe, expect, it } from 'vitest';
import { topLevelArguments } from './py-scan.js';

describe('topLevelArguments', () => {
  it('splits at the commas outside brackets and strings', () => {
    expect(topLevelArguments("[1, (2, 3)], 'a,b', {'k': [4, 5]}")).toEqual([
      '[1, (2, 3)]',
      "'a,b'",
      "{'k': [4, 5]}",
    ]);
    expect(topLevelArguments('"x\\",y", 2')).toEqual(['"x\\",y"', '2']);
    expect(topLevelArguments(' 7 ')).toEqual(['7']);
    expect(topLevelArguments('1, 2,')).toEqual(['1', '2']);
  });

  it('gives undefined for unbalanced text or an empty part', () => {
    expect(topLevelArguments('[1, 2')).toBeUndefined();
    expect(topLevelArguments("'a, 2")).toBeUndefined();
    expect(topLevelArguments('1,, 2')).toBeUndefined();
    expect(topLevelArguments('')).toBeUndefined();
  });
});
