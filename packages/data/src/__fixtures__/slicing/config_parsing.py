import logging
from typing import Dict, List

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8080


def parse_config(lines: List[str], strict: bool = False) -> Dict[str, str]:
    """Parse `key=value` lines into a dict.

    Lines starting with '#' are comments.
    """
    logger.debug("parsing %d lines", len(lines))
    result: Dict[str, str] = {}
    seen = 0  # how many lines we looked at
    errors = []
    for raw in lines:
        seen += 1
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        if '=' not in line:
            errors.append(line)
            if strict:
                logger.warning("bad line: %s", line)
            continue
        key, value = line.split('=', 1)
        result[key.strip()] = value.strip()
    print(f"parsed {len(result)} keys, {len(errors)} errors")
    logger.info("done after %d lines", seen)
    return result

# call: parse_config(['a = 1', '# c', 'b=2', 'oops'])
# call: parse_config([], True)
# call: parse_config(['x=1=2', '  y = z  '], True)
# removed: logger.debug
# removed: seen
# removed: errors
# removed: print(
# removed: """Parse
# removed: Dict[str, str] = {}
# removed: import logging
# removed: DEFAULT_PORT
# kept: result[key.strip()] = value.strip()
# kept: continue
