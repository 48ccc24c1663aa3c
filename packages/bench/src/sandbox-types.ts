// The part of `@codereasoner/sandbox`'s `Sandbox` that bench uses (docs/contracts.md). A
// structural subset, so a real Sandbox is accepted as is and bench needs no runtime import.

export interface RunRequest {
  code: string;
  call: string;
  timeoutMs?: number;
}

export interface RunResult {
  status:
    'ok' | 'exception' | 'timeout' | 'memory' | 'syntax_error' | 'output_limit' | 'sandbox_error';
  repr?: string;
  json?: unknown;
  exception?: { type: string; message: string };
  stdout: string;
  durationMs: number;
}

export type CheckRequest =
  | { code: string; call: string; expected: string; timeoutMs?: number }
  | { code: string; assertion: string; timeoutMs?: number }
  | {
      code: string;
      answer: string;
      answerForm?: 'value' | 'arguments' | 'call';
      function?: string;
      golds?: string[];
      compare?: 'eq' | 'typed';
      timeoutMs?: number;
    };

export interface CheckResult {
  status:
    | 'passed'
    | 'failed'
    | 'exception'
    | 'timeout'
    | 'memory'
    | 'syntax_error'
    | 'output_limit'
    | 'sandbox_error';
  detail?: string;
  actualRepr?: string;
  /** Judge requests: whether the answer is a literal by the sandbox's rule. */
  literal?: boolean;
  /** Judge requests without golds: repr of the literal answer's value. */
  valueRepr?: string;
  durationMs: number;
}

export interface SandboxLike {
  runBatch(requests: RunRequest[]): Promise<RunResult[]>;
  checkBatch(requests: CheckRequest[]): Promise<CheckResult[]>;
}
