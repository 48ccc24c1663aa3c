def running_max(values, scale=1):
    # compute running max, with lots of leftover scaffolding
    total = 0
    count = len(values)
    best = None
    history = []
    tmp = values[:]  # unused copy
    tmp.sort()
    for i, v in enumerate(values):
        total += v
        history.append((i, v))
        if best is None or v * scale > best:
            best = v * scale
    average = total / count if count else 0
    debug = {"avg": average, "n": count}
    return best
    print("unreachable")
    best = 0

# call: running_max([3, 1, 4, 1, 5])
# call: running_max([], 2)
# call: running_max([-2, -7], -1)
# removed: total
# removed: history
# removed: tmp
# removed: average
# removed: debug
# removed: unreachable
# removed: best = 0
# kept: best = v * scale
