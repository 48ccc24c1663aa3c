// What a self-contained program may reference: the builtins below and the modules of
// ALLOWED_MODULES. Builtins that read or write the outside world, or whose results differ
// between processes (id, hash of str), are not allowed: gold answers must come out the same on
// every machine and every run.

export const ALLOWED_BUILTINS: ReadonlySet<string> = new Set([
  'abs', 'all', 'any', 'ascii', 'bin', 'bool', 'bytearray', 'bytes', 'callable', 'chr', 'complex', 'dict',
  'divmod', 'enumerate', 'filter', 'float', 'format', 'frozenset', 'getattr', 'hasattr', 'hex', 'int',
  'isinstance', 'issubclass', 'iter', 'len', 'list', 'map', 'max', 'min', 'next', 'object', 'oct', 'ord',
  'pow', 'print', 'range', 'repr', 'reversed', 'round', 'set', 'setattr', 'slice', 'sorted', 'str', 'sum',
  'tuple', 'type', 'zip', 'True', 'False', 'None', 'NotImplemented', 'Ellipsis', '__name__',
  'ArithmeticError', 'AssertionError', 'AttributeError', 'Exception', 'IndexError', 'KeyError',
  'LookupError', 'NotImplementedError', 'OverflowError', 'RecursionError', 'RuntimeError', 'StopIteration',
  'TypeError', 'ValueError', 'ZeroDivisionError',
]);

/** Standard-library modules without I/O, clocks or randomness. */
export const ALLOWED_MODULES: ReadonlySet<string> = new Set([
  'bisect', 'collections', 'copy', 'decimal', 'fractions', 'functools', 'heapq', 'itertools', 'json',
  'logging', 'math', 'operator', 're', 'statistics', 'string', 'textwrap', 'typing', 'unicodedata',
  'warnings', '__future__', 'dataclasses', 'enum', 'numbers', 'cmath', 'array',
]);

/** Builtins and module functions whose calls never mutate their arguments. */
export const PURE_FUNCTIONS: ReadonlySet<string> = new Set([
  'abs', 'all', 'any', 'ascii', 'bin', 'bool', 'chr', 'dict', 'divmod', 'enumerate', 'filter', 'float',
  'format', 'frozenset', 'hex', 'int', 'isinstance', 'issubclass', 'len', 'list', 'map', 'max', 'min', 'oct',
  'ord', 'pow', 'range', 'repr', 'reversed', 'round', 'set', 'sorted', 'str', 'sum', 'tuple', 'type', 'zip',
  'hasattr', 'getattr', 'callable', 'iter', 'bytes', 'complex', 'slice',
]);

/** Methods that mutate their receiver (list, dict, set, deque, bytearray). */
export const MUTATING_METHODS: ReadonlySet<string> = new Set([
  'append', 'extend', 'insert', 'pop', 'remove', 'clear', 'sort', 'reverse', 'update', 'setdefault',
  'popitem', 'add', 'discard', 'difference_update', 'intersection_update', 'symmetric_difference_update',
  'appendleft', 'extendleft', 'popleft', 'rotate', '__setitem__', '__delitem__', 'move_to_end',
]);

/** Methods known not to mutate their receiver (str methods, read-only dict/list/set methods). */
export const PURE_METHODS: ReadonlySet<string> = new Set([
  'capitalize', 'casefold', 'center', 'count', 'encode', 'endswith', 'expandtabs', 'find', 'format',
  'index', 'isalnum', 'isalpha', 'isascii', 'isdecimal', 'isdigit', 'isidentifier', 'islower',
  'isnumeric', 'isprintable', 'isspace', 'istitle', 'isupper', 'join', 'ljust', 'lower', 'lstrip',
  'partition', 'removeprefix', 'removesuffix', 'replace', 'rfind', 'rindex', 'rjust', 'rpartition',
  'rsplit', 'rstrip', 'split', 'splitlines', 'startswith', 'strip', 'swapcase', 'title', 'translate',
  'upper', 'zfill', 'get', 'keys', 'values', 'items', 'copy', 'union', 'intersection', 'difference',
  'symmetric_difference', 'issubset', 'issuperset', 'isdisjoint', 'most_common', 'decode', 'hex',
  'bit_length', 'is_integer', 'fromkeys', 'maketrans',
]);

/** Call targets that only print or log (removed by slicing). */
export function isOutputCall(functionText: string): boolean {
  if (functionText === 'print' || functionText === 'pprint' || functionText === 'pprint.pprint') return true;
  if (/^(sys\.(stdout|stderr)\.write|warnings\.warn)$/.test(functionText)) return true;
  // logging.info(...), logger.debug(...), self.log.warning(...), LOGGER.error(...)
  return /^(?:[A-Za-z_][A-Za-z_0-9]*\.)*(?:logging|logger|log|_logger|_log|LOGGER|LOG)\.(debug|info|warning|warn|error|exception|critical|log)$/.test(
    functionText,
  );
}
