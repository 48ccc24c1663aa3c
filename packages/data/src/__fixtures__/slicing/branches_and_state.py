def classify(nums, threshold: int = 10):
    """Split numbers into small, big and report."""
    small, big = [], []
    stats = {'calls': 0}
    label = 'none'
    for n in nums:
        stats['calls'] += 1
        if n < 0:
            print('negative', n)
            label = 'neg'
        elif n < threshold:
            small.append(n)
        else:
            big.append(n * 2)
            label = 'big'
    if not small and not big:
        print('empty')
    else:
        pass
    return small, big

# call: classify([1, 20, -3, 5])
# call: classify([], 2)
# call: classify([10, 9], 10)
# removed: stats
# removed: label
# removed: print(
# removed: if not small
# kept: elif n < threshold:
# kept: big.append(n * 2)
