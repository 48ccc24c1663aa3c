import { describe, expect, it } from 'vitest';
import { parameterNames, traceChain, type ChainTrace } from './trace-chain.js';

const code = [
  'def f(xs):',
  '    s = 0',
  '    for x in xs:',
  '        if x > 1:',
  '            s += x',
  '    return s',
].join('\n');

/** The trace of f([3, 1, 2]) in sandbox's shape: locals after each executed line. */
function traceOf(xs: number[]): ChainTrace {
  const path: number[] = [];
  const states: ChainTrace['states'] = [];
  const xsRepr = `[${xs.join(', ')}]`;
  let s = 0;
  const push = (line: number, locals: Record<string, string>) => {
    path.push(line);
    states.push({ line, locals: { xs: xsRepr, ...locals } });
  };
  push(2, { s: '0' });
  let last: Record<string, string> = { s: '0' };
  for (const x of xs) {
    last = { s: String(s), x: String(x) };
    push(3, last);
    push(4, last);
    if (x > 1) {
      s += x;
      last = { s: String(s), x: String(x) };
      push(5, last);
    }
  }
  push(3, last);
  push(6, last);
  return { status: 'ok', repr: String(s), path, states, truncated: false };
}

describe('traceChain', () => {
  it('writes one line per executed line with changes, branch decisions and the result', () => {
    expect(traceChain(code, traceOf([3, 1, 2]))).toBe(
      [
        'L2 s = 0 | xs=[3, 1, 2] s=0',
        'L3 for x in xs | x=3',
        'L4 if x > 1 | True',
        'L5 s += x | s=3',
        'L3 for x in xs | x=1',
        'L4 if x > 1 | False',
        'L3 for x in xs | x=2',
        'L4 if x > 1 | True',
        'L5 s += x | s=5',
        'L3 for x in xs | done',
        'L6 return s',
        'Result: 5',
      ].join('\n'),
    );
  });

  it('leaves out line numbers and the known arguments on request', () => {
    const chain = traceChain(code, traceOf([2]), { lineNumbers: false, known: ['xs'] });
    expect(chain.split('\n').slice(0, 3)).toEqual([
      's = 0 | s=0',
      'for x in xs | x=2',
      'if x > 1 | True',
    ]);
  });

  it('finds the parameter names of the entry point', () => {
    expect(parameterNames(code, 'f')).toEqual(['xs']);
    const other = 'def h(k):\n    pass\ndef g(a, b: int = 3, *rest, c=(1, 2), **kw):\n    pass';
    expect(parameterNames(other, 'g')).toEqual(['a', 'b', 'rest', 'c', 'kw']);
    expect(parameterNames(other, 'missing')).toEqual([]);
  });

  it('summarises the middle of a long trace with the values it leaves behind', () => {
    const xs = Array.from({ length: 30 }, (_, i) => i + 2);
    const chain = traceChain(code, traceOf(xs), { maxSteps: 10 }).split('\n');
    // 6 head steps, the summary, 4 tail steps, the result
    expect(chain).toHaveLength(12);
    expect(chain[6]).toMatch(/^\.\.\. skip L3 for x in xs x\d+ \| s=\d+ x=\d+$/);
    const total = xs.reduce((a, b) => a + b, 0);
    expect(chain[chain.length - 1]).toBe(`Result: ${total}`);
    expect(chain[chain.length - 2]).toBe('L6 return s');
  });

  it('writes the compact format: the line number and only what changed there', () => {
    expect(traceChain(code, traceOf([3, 1, 2]), { format: 'compact' })).toBe(
      [
        'L2 xs=[3, 1, 2] s=0',
        'L3 x=3',
        'L4 True',
        'L5 s=3',
        'L3 x=1',
        'L4 False',
        'L3 x=2',
        'L4 True',
        'L5 s=5',
        'L3 done',
        'L6',
        'Result: 5',
      ].join('\n'),
    );
    // line numbers stay even where the full format would leave them out: they are all a step has
    expect(
      traceChain(code, traceOf([2]), { format: 'compact', lineNumbers: false, known: ['xs'] }),
    ).toBe(['L2 s=0', 'L3 x=2', 'L4 True', 'L5 s=2', 'L3 done', 'L6', 'Result: 2'].join('\n'));
  });

  it('summarises a long trace in the compact format by line number', () => {
    const xs = Array.from({ length: 30 }, (_, i) => i + 2);
    const chain = traceChain(code, traceOf(xs), { maxSteps: 10, format: 'compact' }).split('\n');
    expect(chain).toHaveLength(12);
    expect(chain[6]).toMatch(/^\.\.\. skip L3 x\d+ \| s=\d+ x=\d+$/);
    expect(chain.slice(-2)).toEqual(['L6', `Result: ${xs.reduce((a, b) => a + b, 0)}`]);
  });

  it('reports an exception instead of a result', () => {
    const chain = traceChain('def g(a):\n    return 1 // a', {
      status: 'exception',
      exception: { type: 'ZeroDivisionError', message: 'integer division or modulo by zero' },
      path: [2],
      states: [{ line: 2, locals: { a: '0' } }],
      truncated: false,
    });
    expect(chain).toBe(
      'L2 return 1 // a | a=0\nRaises ZeroDivisionError: integer division or modulo by zero',
    );
  });
});
