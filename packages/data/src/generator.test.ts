import { describe, expect, it } from 'vitest';
import { extractFunctions } from './extract.js';
import { DIFFICULTY_LEVELS, DIFFICULTY_PRESETS, generateProgram } from './generator.js';
import { parsePython, type SyntaxNode } from './python-parser.js';

function loopDepth(node: SyntaxNode, depth = 0): number {
  let deepest = depth;
  for (const child of node.namedChildren) {
    if (child === null) continue;
    const isLoop = child.type === 'for_statement' || child.type === 'while_statement';
    deepest = Math.max(deepest, loopDepth(child, depth + (isLoop ? 1 : 0)));
  }
  return deepest;
}

describe('generateProgram', () => {
  it('is deterministic per seed and index, and varies with them', () => {
    const a = generateProgram(7, 3);
    expect(generateProgram(7, 3)).toEqual(a);
    expect(generateProgram(8, 3).code).not.toBe(a.code);
    expect(generateProgram(7, 4).code).not.toBe(a.code);
    const codes = new Set(
      Array.from({ length: 100 }, (_, index) => generateProgram(1, index).code),
    );
    expect(codes.size).toBe(100);
  });

  it('writes valid, self-contained Python whose parameters match the type hints', async () => {
    for (let index = 0; index < 150; index += 1) {
      const program = generateProgram(11, index);
      const tree = await parsePython(program.code);
      expect(tree.rootNode.hasError, program.code).toBe(false);
      tree.delete();
      const extracted = await extractFunctions(program.code);
      expect(extracted.status).toBe('ok');
      if (extracted.status !== 'ok') continue;
      const entry = extracted.outcomes.find(
        (o) => o.ok && o.unit.entryPoint === program.entryPoint,
      );
      expect(entry?.ok, program.code).toBe(true);
      if (entry?.ok === true)
        expect(entry.unit.params.map((p) => p.name)).toEqual(Object.keys(program.paramTypes));
    }
  });

  it('respects the difficulty knobs', async () => {
    let deepestHard = 0;
    for (let index = 0; index < 60; index += 1) {
      const easy = generateProgram(3, index, 'easy');
      expect(easy.difficulty).toBe('easy');
      const tree = await parsePython(easy.code);
      expect(loopDepth(tree.rootNode)).toBeLessThanOrEqual(DIFFICULTY_PRESETS.easy.maxLoopDepth);
      // Easy programs have no helpers: the entry is the only function.
      expect(
        tree.rootNode.namedChildren.filter((c) => c?.type === 'function_definition'),
      ).toHaveLength(1);
      tree.delete();
      const hard = await parsePython(generateProgram(3, index, 'hard').code);
      deepestHard = Math.max(deepestHard, loopDepth(hard.rootNode));
      hard.delete();
    }
    expect(deepestHard).toBeGreaterThanOrEqual(2);
    const flat = generateProgram(5, 0, { ...DIFFICULTY_PRESETS.medium, maxLoopDepth: 0 });
    expect(flat.code).not.toMatch(/^\s*(for|while) /m);
  });

  it('bounds value sizes and trip counts by level, and draws levels from a mix', async () => {
    const levels = new Map<string, number>();
    for (let index = 0; index < 80; index += 1) {
      const basic = generateProgram(4, index, 'basic');
      expect(basic.difficulty).toBe('basic');
      const tree = await parsePython(basic.code);
      expect(tree.rootNode.hasError, basic.code).toBe(false);
      expect(loopDepth(tree.rootNode)).toBeLessThanOrEqual(1);
      tree.delete();
      for (const type of Object.values(basic.paramTypes)) {
        if (type.kind === 'list' || type.kind === 'dict') expect(type.maxLength).toBe(3);
        if (type.kind === 'str') expect(type.maxLength).toBeLessThanOrEqual(5);
        if (type.kind === 'list' && type.of.kind === 'int') expect(type.of.max).toBe(9);
        // an int argument bounds range(n) loops: at most twice the item count
        if (type.kind === 'int') expect(type.max).toBeLessThanOrEqual(9);
      }
      const mixed = generateProgram(4, index, { mix: { basic: 1, hard: 1 } });
      levels.set(mixed.difficulty, (levels.get(mixed.difficulty) ?? 0) + 1);
    }
    expect([...levels.keys()].sort()).toEqual(['basic', 'hard']);
    expect(Math.min(...levels.values())).toBeGreaterThan(20);
    expect(DIFFICULTY_LEVELS).toEqual(['basic', 'easy', 'medium', 'hard']);
    expect(() => generateProgram(4, 0, { mix: { easy: 0 } })).toThrow(/no level a positive weight/);
  });

  it('keeps the programs of the original levels when value sizes are left at their defaults', () => {
    // the mixed corpus predates the size knobs: its lists of ints still take up to 7 items in -5..20
    const program = generateProgram(1, 0, 'mixed');
    for (const type of Object.values(program.paramTypes))
      if (type.kind === 'list' && type.of.kind === 'int') {
        expect(type.maxLength).toBeUndefined();
        expect(type.of.max).toBeUndefined();
      }
    expect(generateProgram(1, 0, 'mixed').code).toBe(program.code);
  });
});
