// Token counts of reasoning chains: the same tasks distilled in two chain formats (e.g. the trace
// teacher's `full` and `compact`), each measured with one or more run tokenizers. Prints one JSON
// document: per data set and tokenizer, mean / p50 / p90 / p99 / max of the chain (the text
// inside <think>), the completion (what the model generates: chain + answer) and the whole
// training example (prompt + completion in the chat format SFT trains on), and the share of
// examples over --max-seq-len (SFT drops those).
//
// Usage (after `pnpm --filter @codereasoner/sft build`):
//   node bench/chain-tokens.mjs --set full=<run>/sft/distill/sft.jsonl \
//     --set compact=<run2>/sft/distill/sft.jsonl --tokenizer <run>/sft/tokenizer.json
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { renderChat, Tokenizer } from '@codereasoner/core-tensors';
import { trainingMessages } from '../dist/index.js';

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    set: { type: 'string', multiple: true, default: [] },
    tokenizer: { type: 'string', multiple: true, default: [] },
    'max-seq-len': { type: 'string', default: '512' },
  },
});
if (args.set.length === 0 || args.tokenizer.length === 0) {
  process.stderr.write(
    'chain-tokens: give --set name=<sft.jsonl> (one or more) and --tokenizer <tokenizer.json>\n',
  );
  process.exit(2);
}
const maxSeqLen = Number(args['max-seq-len']);

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return {
    n: sorted.length,
    mean: Math.round(mean * 10) / 10,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted[sorted.length - 1],
  };
}

const sets = args.set.map((entry) => {
  const eq = entry.indexOf('=');
  if (eq < 1) throw new Error(`chain-tokens: --set ${entry}: expected name=<path>`);
  return { name: entry.slice(0, eq), path: entry.slice(eq + 1) };
});
const records = {};
for (const set of sets) {
  const text = await readFile(set.path, 'utf8');
  records[set.name] = text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

const result = { maxSeqLen, tokenizers: {} };
for (const path of args.tokenizer) {
  const tokenizer = await Tokenizer.load(path);
  const perSet = {};
  for (const set of sets) {
    const chain = [];
    const completion = [];
    const example = [];
    const byType = {};
    for (const record of records[set.name]) {
      const content = record.messages[record.messages.length - 1].content;
      const think = /<think>\n?([\s\S]*?)\n?<\/think>/.exec(content)?.[1] ?? '';
      const c = tokenizer.encode(think).length;
      const g = tokenizer.encode(content).length;
      const e = tokenizer.encode(renderChat(trainingMessages(record, true))).length;
      chain.push(c);
      completion.push(g);
      example.push(e);
      (byType[record.type] ??= []).push(g);
    }
    perSet[set.name] = {
      examples: example.length,
      chain: stats(chain),
      completion: stats(completion),
      example: stats(example),
      overMaxSeqLen:
        Math.round((1000 * example.filter((e) => e > maxSeqLen).length) / example.length) / 10,
      completionByType: Object.fromEntries(
        Object.entries(byType).map(([type, values]) => [type, stats(values)]),
      ),
    };
  }
  result.tokenizers[path] = perSet;
}
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
