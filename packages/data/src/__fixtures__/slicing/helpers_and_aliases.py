import math
import json

VOWELS = 'aeiou'
UNUSED_TABLE = {'x': 1}


def is_vowel(ch: str) -> bool:
    """True for lowercase vowels."""
    return ch.lower() in VOWELS


def unused_helper(x):
    return x * 2


def summarize(words, limit=3):
    '''Count vowels per word and keep the top ones.'''
    counts = {}
    report = []
    buckets = counts  # alias: mutations through buckets reach counts
    for word in words:
        n = sum(1 for ch in word if is_vowel(ch))
        buckets[word] = n
        report.append(json.dumps({word: n}))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ranked[:limit]
    spread = math.sqrt(len(report))
    assert len(top) <= limit, "too many"
    return [w for w, _ in top]

# call: summarize(['banana', 'sky', 'queue', 'idea'])
# call: summarize(['a'], 0)
# call: summarize([], 5)
# removed: report
# removed: json
# removed: spread
# removed: import math
# removed: assert
# removed: unused_helper
# removed: UNUSED_TABLE
# kept: buckets[word] = n
# kept: def is_vowel(ch):
# kept: VOWELS = 'aeiou'
