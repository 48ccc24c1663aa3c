def first_repeat(text: str) -> str:
    seen = set()
    steps = 0
    log_lines = []
    i = 0
    while True:
        steps += 1
        if i >= len(text):
            log_lines.append('end')
            break
        ch = text[i]
        i += 1
        if ch == ' ':
            continue
        if ch in seen:
            log_lines.append('found ' + ch)
            return ch
        seen.add(ch)
    return ''

# call: first_repeat('abca')
# call: first_repeat('a b c')
# call: first_repeat('')
# call: first_repeat('x  x')
# removed: steps
# removed: log_lines
# kept: break
# kept: continue
# kept: seen.add(ch)
