import type { RunResult } from '@codereasoner/sandbox';

// SandboxFusion's /run_code protocol, as defined by bytedance/SandboxFusion
// (sandbox/server/sandbox_api.py: RunCodeRequest, RunCodeResponse, RunStatus, parse_run_status;
// sandbox/runners/types.py: CommandRunResult, CommandRunStatus) and as verl's sandbox_fusion reward
// calls it (verl/utils/reward_score/sandbox_fusion/utils.py: call_sandbox_api sends code, stdin,
// language, compile_timeout, run_timeout, files {}, fetch_files []; it retries on 504 and reads
// status, run_result.status/stdout/stderr/return_code/execution_time).

/** RunCodeRequest. Extra fields are ignored, as pydantic does. */
export interface RunCodeRequest {
  code: string;
  language: string;
  stdin?: string | null;
  compile_timeout?: number;
  run_timeout?: number;
  memory_limit_MB?: number;
  files?: Record<string, string | null>;
  fetch_files?: string[];
  args?: string[];
}

/** CommandRunStatus. */
export type CommandRunStatus = 'Finished' | 'Error' | 'TimeLimitExceeded';

/** CommandRunResult. */
export interface CommandRunResult {
  status: CommandRunStatus;
  execution_time: number | null;
  return_code: number | null;
  stdout: string | null;
  stderr: string | null;
}

/** RunStatus. */
export type SandboxFusionRunStatus = 'Success' | 'Failed' | 'SandboxError';

/** RunCodeResponse. */
export interface RunCodeResponse {
  status: SandboxFusionRunStatus;
  message: string;
  compile_result: CommandRunResult | null;
  run_result: CommandRunResult | null;
  executor_pod_name: string | null;
  files: Record<string, string>;
}

/** SandboxFusion's defaults (RunCodeRequest fields). */
export const SANDBOX_FUSION_DEFAULT_TIMEOUT_SECONDS = 10;

/** JSON Schema of the request body (fastify validates with it; violations answer 422 as FastAPI does). */
export const runCodeRequestSchema = {
  type: 'object',
  required: ['code', 'language'],
  properties: {
    code: { type: 'string' },
    language: { type: 'string' },
    stdin: { type: ['string', 'null'] },
    compile_timeout: { type: 'number' },
    run_timeout: { type: 'number' },
    memory_limit_MB: { type: 'integer' },
    files: { type: 'object', additionalProperties: { type: ['string', 'null'] } },
    fetch_files: { type: 'array', items: { type: 'string' } },
    args: { type: 'array', items: { type: 'string' } },
  },
} as const;

/** A refusal in SandboxFusion's own shape: status SandboxError, the reason in `message`, no results. */
export function sandboxErrorResponse(message: string): RunCodeResponse {
  return {
    status: 'SandboxError',
    message,
    compile_result: null,
    run_result: null,
    executor_pod_name: null,
    files: {},
  };
}

/** What SandboxFusion cannot do here, as a refusal message, or undefined when the request can run. */
export function unsupported(request: RunCodeRequest): string | undefined {
  if (request.language !== 'python') {
    return `language '${request.language}' is not supported by cr serve: only 'python' runs here (CPython in WebAssembly, isolated by Pyodide); send other languages to a SandboxFusion server`;
  }
  const files = Object.keys(request.files ?? {});
  if (files.length > 0) {
    return `files are not supported by cr serve (the program has no shared file system); got ${files.length} file(s): ${files.slice(0, 3).join(', ')}`;
  }
  if ((request.fetch_files ?? []).length > 0) {
    return 'fetch_files is not supported by cr serve (programs cannot write files)';
  }
  return undefined;
}

/** The exit status Python gives `SystemExit(<message>)`: none or empty is 0, an integer is itself, anything else is 1. */
function exitCode(message: string): number {
  const text = message.trim();
  if (text === '' || text === 'None') return 0;
  return /^-?\d+$/.test(text) ? Number(text) : 1;
}

/**
 * The sandbox's result as SandboxFusion would report running `python3 main.py < stdin`: a
 * finished program with its return code (an uncaught exception is return code 1 with the
 * exception's last traceback line on stderr), TimeLimitExceeded past `run_timeout`, and
 * SandboxError when the sandbox itself failed. `status` follows parse_run_status: Success only
 * for return code 0.
 */
export function toRunCodeResponse(result: RunResult): RunCodeResponse {
  const seconds = result.durationMs / 1000;
  const stdout = result.stdout;
  let stderr = result.stderr ?? '';
  let returnCode = 0;
  let status: CommandRunStatus = 'Finished';
  switch (result.status) {
    case 'ok':
      break;
    case 'exception': {
      const type = result.exception?.type ?? 'Exception';
      const message = result.exception?.message ?? '';
      if (type === 'SystemExit') {
        returnCode = exitCode(message);
        // Python prints a non-integer exit message to stderr.
        if (returnCode === 1 && !/^-?\d+$/.test(message.trim())) stderr += `${message}\n`;
      } else {
        returnCode = 1;
        stderr += `Traceback (most recent call last):\n${type}: ${message}\n`.replace(
          /: \n$/,
          '\n',
        );
      }
      break;
    }
    case 'syntax_error':
      returnCode = 1;
      stderr += `${(result.detail ?? 'SyntaxError').replace(/^code: /, '')}\n`;
      break;
    case 'memory':
      returnCode = 1;
      stderr += 'MemoryError\n';
      break;
    case 'output_limit':
      returnCode = 1;
      stderr += `${result.detail ?? 'output limit exceeded'} (cr serve's output limit)\n`;
      break;
    case 'timeout':
      status = 'TimeLimitExceeded';
      returnCode = -1;
      break;
    case 'sandbox_error':
      return {
        ...sandboxErrorResponse(result.detail ?? 'the sandbox failed to run the program'),
        run_result: {
          status: 'Error',
          execution_time: seconds,
          return_code: null,
          stdout,
          stderr: result.detail ?? '',
        },
      };
  }
  const runResult: CommandRunResult = {
    status,
    execution_time: seconds,
    return_code: status === 'TimeLimitExceeded' ? null : returnCode,
    stdout,
    stderr,
  };
  return {
    status: status === 'Finished' && returnCode === 0 ? 'Success' : 'Failed',
    message: '',
    compile_result: null,
    run_result: runResult,
    executor_pod_name: null,
    files: {},
  };
}
