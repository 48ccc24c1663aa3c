from collections import Counter


def top_letters(s, k):
    counter = Counter()
    ignored = 0
    def bump(ch):
        counter[ch] += 1
    for ch in s:
        if not ch.isalpha():
            ignored += 1
            continue
        bump(ch.lower())
    result = ''.join(ch for ch, _ in counter.most_common(k))
    return result

# call: top_letters('Hello, World!', 2)
# call: top_letters('', 3)
# call: top_letters('aAbB cc', 1)
# removed: ignored
# kept: bump(ch.lower())
# kept: counter[ch] += 1
