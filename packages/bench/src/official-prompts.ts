// Prompt templates of the official harnesses, reproduced verbatim (including their typos and
// spacing) so that scores are comparable with published numbers:
// - CRUXEval: facebookresearch/cruxeval `prompts.py` (MIT).
// - LiveCodeBench execution: LiveCodeBench/LiveCodeBench `lcb_runner/prompts/code_execution.py` (MIT).
// - REval: r-eval/REval `prompts/{direct,cot}_{coverage,state,path,output}.txt`, filled by
//   `prompt.py` with str.format. Read from the vendored copy in justForAnonymous/ExecVerify, whose
//   direct prompts carry an extra line "output the raw string, no markdown format." that the CoT
//   prompts (and REval's README) lack; it is left out here, with the blank line the CoT prompts have.

/** The system message every official harness sends to chat models. */
export const OFFICIAL_SYSTEM_MESSAGE =
  'You are an expert at Python programming, code execution, test case generation, and fuzzing.';

export function cruxDirectOutputPrompt(code: string, input: string): string {
  return `You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def f(n):
    return n
assert f(17) == ??
[/PYTHON]
[ANSWER]
assert f(17) == 17
[/ANSWER]

[PYTHON]
def f(s):
    return s + "a"
assert f("x9j") == ??
[/PYTHON]
[ANSWER]
assert f("x9j") == "x9ja"
[/ANSWER]

[PYTHON]
${code}
assert f(${input}) == ??
[/PYTHON]
[ANSWER]
`;
}

export function cruxCotOutputPrompt(code: string, input: string): string {
  return `You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Execute the program step by step before arriving at an answer, and provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def f(s):
    s = s + s
    return "b" + s + "a"
assert f("hi") == ??
[/PYTHON]
[THOUGHT]
Let's execute the code step by step:

1. The function f is defined, which takes a single argument s.
2. The function is called with the argument "hi", so within the function, s is initially "hi".
3. Inside the function, s is concatenated with itself, so s becomes "hihi".
4. The function then returns a new string that starts with "b", followed by the value of s (which is now "hihi"), and ends with "a".
5. The return value of the function is therefore "bhihia".
[/THOUGHT]
[ANSWER]
assert f("hi") == "bhihia"
[/ANSWER]

[PYTHON]
${code}
assert f(${input}) == ??
[/PYTHON]
[THOUGHT]
`;
}

export function cruxDirectInputPrompt(code: string, output: string): string {
  return `You will be given a function f and an output in the form f(??) == output. Find any input such that executing f on the input leads to the given output. There may be multiple answers, but you should only output one. In [ANSWER] and [/ANSWER] tags, complete the assertion with one such input that will produce the output when executing the function.

[PYTHON]
def f(my_list):
    count = 0
    for i in my_list:
        if len(i) % 2 == 0:
            count += 1
    return count
assert f(??) == 3
[/PYTHON]
[ANSWER]
assert f(["mq", "px", "zy"]) == 3
[/ANSWER]

[PYTHON]
def f(s1, s2):
    return s1 + s2
assert f(??) == "banana"
[/PYTHON]
[ANSWER]
assert f("ba", "nana") == "banana"
[/ANSWER]

[PYTHON]
${code}
assert f(??) == ${output}
[/PYTHON]
[ANSWER]
`;
}

export function cruxCotInputPrompt(code: string, output: string): string {
  return `You will be given a function f and an output in the form f(??) == output. Your task is to find any input such that executing f on the input leads to the given output. There may be multiple answers, but only output one. First, think step by step. You MUST surround the answer with [ANSWER] and [/ANSWER] tags. Express your answer as a passing assertion containing the input and the given output.

[PYTHON]
def f(x):
    return x + 1
assert f(??) == 17
[/PYTHON]
[THOUGHT]
To find an input such that executing f on the input leads to the given output, we can work backwards from the given assertion. We know that f(??) == 17. 

Since the function f(x) returns x + 1, for f(??) to be equal to 17, the value of ?? should be 16. 
[/THOUGHT]
[ANSWER]
assert f(16) == 17
[/ANSWER]

[PYTHON]
${code}
assert f(??) == ${output}
[/PYTHON]
[THOUGHT]
`;
}

export function lcbDirectPrompt(code: string, input: string): string {
  return `You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def repeatNumber(number : int) -> int:
    return number
assert repeatNumber(number = 17) == ??
[/PYTHON]
[ANSWER]
assert repeatNumber(number = 17) == 17
[/ANSWER]

[PYTHON]
def addCharacterA(string : str) -> str:
    return string + "a"
assert addCharacterA(string = "x9j") == ??
[/PYTHON]
[ANSWER]
assert addCharacterA(string = "x9j") == "x9ja"
[/ANSWER]

[PYTHON]
${code}
assert ${input} == ??
[/PYTHON]
[ANSWER]
`;
}

export function lcbCotPrompt(code: string, input: string): string {
  return `You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Execute the program step by step before arriving at an answer, and provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def performOperation(s):
    s = s + s
    return "b" + s + "a"
assert performOperation(s = "hi") == ??
[/PYTHON]
[THOUGHT]
Let's execute the code step by step:

1. The function performOperation is defined, which takes a single argument s.
2. The function is called with the argument "hi", so within the function, s is initially "hi".
3. Inside the function, s is concatenated with itself, so s becomes "hihi".
4. The function then returns a new string that starts with "b", followed by the value of s (which is now "hihi"), and ends with "a".
5. The return value of the function is therefore "bhihia".
[/THOUGHT]
[ANSWER]
assert performOperation(s = "hi") == "bhihia"
[/ANSWER]

[PYTHON]
${code}
assert ${input} == ??
[/PYTHON]
[THOUGHT]
`;
}

export interface RevalPromptFields {
  code: string;
  invocation: string;
  invocationAbbr: string;
  line: number;
  codeline: string;
  variable: string;
}

const REVAL_DIRECT_HEAD = {
  coverage:
    'You are given a Python function and a question on the function. Answer the question with only YES or NO, considering executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Provide your answer in [ANSWER] and [/ANSWER] tags, following the examples.',
  state:
    'You are given a Python function and a question on the function. Answer the question in "value; type" format, considering executing the provided code on the given input, even if the function is incorrect or incomplete. Make sure the value is a valid Python constant and the type is a valid Python class name. There may be multiple answers, but you should only output one. Do NOT output any extra information. Provide your answer in [ANSWER] and [/ANSWER] tags, following the examples.',
  path: 'You are given a Python function and a question on the function. Answer the question with only one line of code, considering executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Provide your answer in [ANSWER] and [/ANSWER] tags, following the examples.',
  output:
    'You are given a Python function and test code containing inputs to the function. Complete the assertion in the test code by just replacing the question marks with your answers, considering executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Do NOT modify any other parts of the test code. Provide your answer as the completed code snippet in [ANSWER] and [/ANSWER] tags, following the examples.',
} as const;

const REVAL_COT_HEAD = {
  coverage:
    'You are given a Python function and a question on the function. Answer the question with only YES or NO, considering executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Think step by step. Your thoughts should be concise and contain no more than 10 steps. For loop logics, express your thoughts without detailing each iteration. Provide your answer in [ANSWER] and [/ANSWER] tags, following the examples.',
  state:
    'You are given a Python function and a question on the function. Answer the question in "value; type" format, considering executing the provided code on the given input, even if the function is incorrect or incomplete. Make sure the value is a valid Python constant and the type is a valid Python class name. There may be multiple answers, but you should only output one. Do NOT output any extra information.  Think step by step. Your thoughts should be concise and contain no more than 10 steps. For loop logics, express your thoughts without detailing each iteration. Provide your answer in [ANSWER] and [/ANSWER] tags, following the examples.',
  path: 'You are given a Python function and a question on the function. Answer the question with only one line of code, considering executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Think step by step. Your thoughts should be concise and contain no more than 10 steps. For loop logics, express your thoughts without detailing each iteration. Provide your answer in [ANSWER] and [/ANSWER] tags, following the examples.',
  output:
    'You are given a Python function and test code containing inputs to the function. Complete the assertion in the test code by just replacing the question marks with your answers, considering executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Do NOT modify any other parts of the test code. Think step by step. Your thoughts should be concise and contain no more than 10 steps. For loop logics, express your thoughts without detailing each iteration. Provide your answer as the completed code snippet in [ANSWER] and [/ANSWER] tags, following the examples.',
} as const;

// Few-shot examples: [python block, question (or null for output), thought (CoT only), answer].
type Shot = [python: string, question: string | null, thought: string, answer: string];

const STATE_F = `def f(a, b):
    ans = a + b
    if ans > 0:
        ans = int(a)
    else:
        ans = b
    return ans
`;

const REVAL_SHOTS: Record<
  'coverage' | 'state' | 'path' | 'output',
  { direct: Shot[]; cot: Shot[] }
> = {
  coverage: {
    direct: [
      [
        'def f(x):\n    if x > 2:\n        return x*2\n    else:\n        return x\nf(3)',
        'Is Line 3 (        return x*2) executed when f(3) is called?',
        '',
        'YES',
      ],
      [
        'class A:\n    def g(self, x):\n        if x > 2:\n            return self.h(x)\n        else:\n            return x\n\n    def h(self, y):\n        return y*2\n\na = A()\nassertEqual(a.g(1), 1)',
        'Is Line 9 (        return y*2) executed when the above test code is called?',
        '',
        'NO',
      ],
    ],
    cot: [
      [
        'def f(x):\n    if x > 2:\n        return x*2\n    else:\n        return x\n\nf(3)',
        'Is Line 3 (        return x*2) executed when f(3) is called?',
        '1. The function f is defined, which takes a single argument x. Then f is called with x being 3.\n2. Inside f, the condition `x > 2` at Line 2 is True because x is 3 at this point and 3 > 2, so the next statement to execute is `return x*2` at Line 3.\n3. Therefore, the answer should be YES.',
        'YES',
      ],
      [
        'class A:\n    def g(self, x):\n        if x > 2:\n            return self.h(x)\n        else:\n            return x\n\n    def h(self, y):\n        return y*2\n\na = A()\nassertEqual(a.g(1), 1)',
        'Is Line 9 (        return y*2) executed when the above test code is called?',
        '1. The class A is defined, which has two methods g and h.\n2. An instance of A is created. Then g is called with x being 1.\n3. Inside g, the condition `x > 2` at Line 3 is False because x is 1 at this point and 1 > 2 is False, so the next statement to execute is `return x` at Line 6.\n4. After Line 6, function g returns. Therefore, the method h is not called, and Line 9 is not executed. The answer should be NO.',
        'NO',
      ],
    ],
  },
  state: {
    direct: [],
    cot: [],
  },
  path: {
    direct: [],
    cot: [],
  },
  output: {
    direct: [],
    cot: [],
  },
};

const STATE_QUESTION = (call: string, line: string, variable: string) =>
  `Is Line 4 (        ans = int(a)) executed when ${call} is called? If so, what is the value and type of the variable ${variable} after Line ${line} is executed? If not, answer Nil.`;
const STATE_CLASS =
  "class A:\n    def __init__(self):\n        self.x = []\n    \n    def f(self, y):\n        self.x.append(y)\n        return y\n\na = A()\nassertEqual(a.f('a'), 'a')";
const STATE_CLASS_QUESTION =
  'Is Line 6 (        self.x.append(y)) executed when the above test code is called? If so, what is the value and type of the variable self.x after Line 6 is executed? If not, answer Nil.';
const STATE_THOUGHTS = [
  '1. Function f is called with arguments a=1.1 and b=2. Thus ans should be 1.1 + 2 = 3.1.\n2. Since ans is greater than 0, Line 4 is executed.\n3. At Line 4, the value of a is 1.1, so int(a) is 1. \n4. Thus ans is 1 with type int. The answer should be 1; int.',
  '1. Function f is called with arguments a=1.1 and b=-2. Thus ans should be 1.1 + (-2) = -0.9.\n2. Since ans is not greater than 0, Line 6 is executed and Line 4 is not executed.\n3. Thus the answer should be Nil.',
  "1. The test code creates an instance of class A, and self.x is an empty list initially.\n2. The method f is called with argument y='a'.\n3. Then Line 6 is executed, appending 'a' to self.x.\n4. Thus the value of self.x is ['a'] with type list. The answer should be ['a']; list.",
];
for (const mode of ['direct', 'cot'] as const) {
  REVAL_SHOTS.state[mode] = [
    [
      `${STATE_F}\nf(1.1, 2)`,
      STATE_QUESTION('f(1.1, 2)', '4', 'ans'),
      mode === 'cot' ? STATE_THOUGHTS[0]! : '',
      '1; int',
    ],
    [
      `${STATE_F}\nf(1.1, -2)`,
      STATE_QUESTION('f(1.1, -2)', '4', 'ans'),
      mode === 'cot' ? STATE_THOUGHTS[1]! : '',
      'Nil',
    ],
    [STATE_CLASS, STATE_CLASS_QUESTION, mode === 'cot' ? STATE_THOUGHTS[2]! : '', "['a']; list"],
  ];
}

const PATH_QUESTION = (call: string) =>
  `If the line \`        ans = int(a)\` is executed when ${call} is called, answer with the next line of code to be executed inside the function. Do NOT answer lines in the test code. If not or program terminates after this line, answer with -1.`;
const PATH_CLASS =
  'class A:\n    def f(self, x):\n        z = self.g(x)\n        return z\n    \n    def g(self, y):\n        return y*2\n\na = A()\nassertEqual(a.f(3), 6)';
const PATH_CLASS_QUESTION =
  'If the line `        z = self.g(x)` is executed when the above test code is called, answer with the next line of code to be executed inside the function. Do NOT answer lines in the test code. If not or program terminates after this line, answer with -1.';
const PATH_THOUGHTS = [
  '1. Function f is called with arguments a=1.1 and b=2. Thus ans should be 1.1 + 2 = 3.1.\n2. Since ans is greater than 0, line `ans = int(a)` is executed.\n3. After this line, the program jumps out of the if block and returns ans. Thus, the answer should be return ans.',
  '1. Function f is called with arguments a=1.1 and b=-2. Thus ans should be 1.1 - 2 = -0.9.\n2. Since ans is not greater than 0, line `ans = b` is executed, while line `ans = int(a)` is not executed.\n3. Thus the answer should be -1.',
  '1. Method f is called with argument x=3. Thus z should be self.g(3).\n2. When `self.g(3)` is called, the program jumps to method g with argument y=3.\n3. The first line of method g is `return y*2`. Thus the answer should be return y*2.',
];
for (const mode of ['direct', 'cot'] as const) {
  REVAL_SHOTS.path[mode] = [
    [
      `${STATE_F}\nf(1.1, 2)`,
      PATH_QUESTION('f(1.1, 2)'),
      mode === 'cot' ? PATH_THOUGHTS[0]! : '',
      'return ans',
    ],
    [
      `${STATE_F}\nf(1.1, -2)`,
      PATH_QUESTION('f(1.1, -2)'),
      mode === 'cot' ? PATH_THOUGHTS[1]! : '',
      '-1',
    ],
    [PATH_CLASS, PATH_CLASS_QUESTION, mode === 'cot' ? PATH_THOUGHTS[2]! : '', 'return y*2'],
  ];
}

const OUTPUT_CLASS =
  'class A:\n    def __init__(self, x):\n        self.x = x\n\n    def f(self, y):\n        return self.x + y\n\n# Test code starts here. Only write the completed test code in your answer.\na = A(3)\nassertEqual(a.f(2), ??)\nassertEqual(a.f(4), ??)';
const OUTPUT_THOUGHTS = [
  '1. The function g is defined, which takes a single argument s. Then g is called with argument s="x9j".\n2. In the function, s is concatenated with "a" and returned.\n3. Thus the return value should be "x9ja", and the question marks should be replaced with "x9ja".',
  '1. The class A is defined with an __init__ method and an f method.\n2. An instance of A is created with argument x=3, and assigned to a. Thus a.x is 3.\n3. In method f, the return value is the sum of self.x and y.\n4. Therefore, a.f(2) should return 3 + 2 = 5, and a.f(4) should return 3 + 4 = 7.\n5. The question marks should be replaced with 5 and 7, in order.',
];
for (const mode of ['direct', 'cot'] as const) {
  REVAL_SHOTS.output[mode] = [
    [
      'def g(s):\n    return s + "a"\n\nassert g("x9j") == ??',
      null,
      mode === 'cot' ? OUTPUT_THOUGHTS[0]! : '',
      'assert g("x9j") == "x9ja"',
    ],
    [
      OUTPUT_CLASS,
      null,
      mode === 'cot' ? OUTPUT_THOUGHTS[1]! : '',
      'a = A(3)\nassertEqual(a.f(2), 5)\nassertEqual(a.f(4), 7)',
    ],
  ];
}

function revalQuestion(task: 'coverage' | 'state' | 'path', f: RevalPromptFields): string {
  switch (task) {
    case 'coverage':
      return `Is Line ${f.line} (${f.codeline}) executed when ${f.invocationAbbr} is called?`;
    case 'state':
      return `Is Line ${f.line} (${f.codeline}) executed when ${f.invocationAbbr} is called? If so, what is the value and type of the variable ${f.variable} after Line ${f.line} is executed? If not, answer Nil.`;
    case 'path':
      return `If the line \`${f.codeline}\` is executed when ${f.invocationAbbr} is called, answer with the next line of code to be executed inside the function. Do NOT answer lines in the test code. If not or program terminates after this line, answer with -1.`;
  }
}

/** REval's prompt for one question, in the layout of `prompts/{direct,cot}_<task>.txt`. */
export function revalPrompt(
  task: 'coverage' | 'state' | 'path' | 'output',
  cot: boolean,
  fields: RevalPromptFields,
): string {
  const head = (cot ? REVAL_COT_HEAD : REVAL_DIRECT_HEAD)[task];
  const shots = REVAL_SHOTS[task][cot ? 'cot' : 'direct'];
  const parts: string[] = [`${head}\n`];
  for (const [python, question, thought, answer] of shots) {
    let block = `[PYTHON]\n${python}\n[/PYTHON]\n`;
    if (question !== null) block += `[QUESTION]\n${question}\n[/QUESTION]\n`;
    if (cot) block += `[THOUGHT]\n${thought}\n[/THOUGHT]\n`;
    block += `[ANSWER]\n${answer}\n[/ANSWER]\n`;
    parts.push(block);
  }
  let query = `[PYTHON]\n${fields.code}\n${fields.invocation}\n[/PYTHON]\n`;
  if (task !== 'output') query += `[QUESTION]\n${revalQuestion(task, fields)}\n[/QUESTION]\n`;
  query += cot ? '[THOUGHT]' : '[ANSWER]';
  parts.push(query);
  return parts.join('\n');
}
