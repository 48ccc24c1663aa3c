/**
 * Layout of the SharedArrayBuffer a Pyodide worker shares with the main thread:
 * int32[interrupt] is Pyodide's interrupt buffer (2 = SIGINT, raises KeyboardInterrupt),
 * int32[index] the task now running (-1 idle), int32[interruptedIndex] the task the main thread
 * interrupted, float64 at clockByteOffset the time (ms since epoch) the current task started.
 */
export const CONTROL = {
  interrupt: 0,
  index: 1,
  interruptedIndex: 2,
  int32Length: 4,
  clockByteOffset: 16,
  byteLength: 24,
} as const;
