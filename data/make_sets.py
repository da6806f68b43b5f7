"""Writes data/abd.jsonl, data/ded.jsonl and data/elr.jsonl: the built-in problem sets of
the ABD, DED and ELR environments. Every problem here is ours; expected outputs and answers
are computed by running the programs and solutions below with python3.

Run from the repository root: python3 data/make_sets.py
"""
import io
import json
import contextlib
import sys

# ---------------------------------------------------------------- ABD: program + one input
ABD = [
    ("sum-two", "a, b = map(int, input().split())\nprint(a + b)\n", "17 25"),
    ("reverse-word", "s = input().strip()\nprint(s[::-1])\n", "weightlog"),
    ("count-vowels", "s = input()\nprint(sum(c in 'aeiou' for c in s.lower()))\n", "Merkle Tree Audit"),
    ("square-list", "n = int(input())\nprint(' '.join(str(i * i) for i in range(1, n + 1)))\n", "6"),
    ("max-of-line", "xs = list(map(int, input().split()))\nprint(max(xs) - min(xs))\n", "4 19 7 3 11"),
    ("repeat", "w = input()\nk = int(input())\nprint('-'.join([w] * k))\n", "ab\n4"),
    ("cases", "for _ in range(int(input())):\n    a, b = map(int, input().split())\n    print(a * b)\n", "3\n2 3\n4 5\n6 7"),
    ("digits-sum", "n = input().strip()\nprint(sum(int(d) for d in n))\n", "987654321"),
    ("fizz", "n = int(input())\nprint('Fizz' * (n % 3 == 0) + 'Buzz' * (n % 5 == 0) or n)\n", "45"),
    ("sorted-chars", "print(''.join(sorted(input())))\n", "sandbox"),
    ("collatz-steps", "n = int(input())\nsteps = 0\nwhile n != 1:\n    n = n // 2 if n % 2 == 0 else 3 * n + 1\n    steps += 1\nprint(steps)\n", "27"),
    ("binary", "print(bin(int(input()))[2:])\n", "1234"),
    ("upper-first", "print(' '.join(w.capitalize() for w in input().split()))\n", "event sourced signed log"),
    ("triangle", "n = int(input())\nfor i in range(1, n + 1):\n    print('*' * i)\n", "4"),
    ("gcd", "import math\na, b = map(int, input().split())\nprint(math.gcd(a, b))\n", "84 126"),
    ("palindrome", "s = input().strip().lower()\nprint('yes' if s == s[::-1] else 'no')\n", "Racecar"),
    ("mean", "xs = [int(x) for x in input().split()]\nprint(sum(xs) // len(xs))\n", "10 20 30 44"),
    ("word-count", "print(len(input().split()))\n", "one two three four five six seven"),
    ("two-lines", "a = input()\nb = input()\nprint(len(a) * len(b))\n", "abc\nhello"),
    ("factorial", "n = int(input())\nr = 1\nfor i in range(2, n + 1):\n    r *= i\nprint(r)\n", "12"),
    ("hex-upper", "print(format(int(input()), 'X'))\n", "48879"),
    ("swap-case", "print(input().swapcase())\n", "Fuel Metered"),
    ("running-sum", "xs = list(map(int, input().split()))\nt = 0\nout = []\nfor x in xs:\n    t += x\n    out.append(t)\nprint(*out)\n", "1 2 3 4 5"),
    ("char-freq", "from collections import Counter\nc = Counter(input())\nk = min(c, key=lambda ch: (-c[ch], ch))\nprint(k, c[k])\n", "mississippi"),
    ("pairs", "for _ in range(int(input())):\n    s = input()\n    print(s[0] + s[-1])\n", "2\nhello\nworld"),
    ("modpow", "a, b, m = map(int, input().split())\nprint(pow(a, b, m))\n", "3 200 1000"),
    ("primes-below", "n = int(input())\nprint(sum(1 for k in range(2, n) if all(k % d for d in range(2, int(k ** 0.5) + 1))))\n", "100"),
    ("dedupe", "seen = []\nfor w in input().split():\n    if w not in seen:\n        seen.append(w)\nprint(' '.join(seen))\n", "a b a c b d"),
    ("rotate", "s = input()\nk = int(input())\nprint(s[k:] + s[:k])\n", "abcdefg\n3"),
    ("matrix-trace", "n = int(input())\nrows = [list(map(int, input().split())) for _ in range(n)]\nprint(sum(rows[i][i] for i in range(n)))\n", "3\n1 2 3\n4 5 6\n7 8 9"),
]

# ---------------------------------------------------------------- DED: task + tests + solution
def io_tests(solution, inputs):
    return [{"type": "stdin_stdout", "input": i, "output": run(solution, i)} for i in inputs]

def fn_tests(solution, name, calls):
    namespace = {}
    exec(solution, namespace)
    tests = []
    for args in calls:
        value = namespace[name](*args)
        tests.append({"type": "function_call", "fn_name": name, "args": list(args),
                      "expected": [value], "expected_text": str(value)})
    return tests

def run(program, stdin):
    out = io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out):
            exec(program, {"__name__": "__main__"})
    finally:
        sys.stdin = old_stdin
    return out.getvalue()

DED_IO = [
    ("add", "Read two integers on one line and print their sum.",
     "a, b = map(int, input().split())\nprint(a + b)\n", ["1 2\n", "-5 12\n", "1000000 2345678\n"]),
    ("reverse-lines", "Read an integer n, then n lines; print the lines in reverse order.",
     "n = int(input())\nlines = [input() for _ in range(n)]\nprint('\\n'.join(reversed(lines)))\n", ["3\na\nb\nc\n", "1\nonly\n", "2\nx y\nz\n"]),
    ("even-sum", "Read a line of integers and print the sum of the even ones.",
     "print(sum(x for x in map(int, input().split()) if x % 2 == 0))\n", ["1 2 3 4\n", "7 9\n", "10 -4 3\n"]),
    ("longest-word", "Read a sentence and print its longest word (the first one if several tie).",
     "print(max(input().split(), key=len))\n", ["a bb ccc dd\n", "hello world\n", "x yy zz\n"]),
    ("fib", "Read n (0 <= n <= 90) and print the n-th Fibonacci number (F(0)=0, F(1)=1).",
     "n = int(input())\na, b = 0, 1\nfor _ in range(n):\n    a, b = b, a + b\nprint(a)\n", ["0\n", "10\n", "90\n"]),
    ("is-prime", "Read n and print YES if it is prime, else NO.",
     "n = int(input())\nprint('YES' if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)) else 'NO')\n", ["2\n", "91\n", "97\n", "1\n"]),
    ("anagram", "Read two words on separate lines; print YES if they are anagrams, else NO.",
     "a = input().strip()\nb = input().strip()\nprint('YES' if sorted(a) == sorted(b) else 'NO')\n", ["listen\nsilent\n", "abc\nabd\n"]),
    ("count-words", "Read a line and print how many distinct words (case-insensitive) it has.",
     "print(len(set(input().lower().split())))\n", ["The the cat\n", "a b c d\n", "x\n"]),
    ("max-subarray", "Read a line of integers and print the largest sum of a non-empty contiguous run.",
     "xs = list(map(int, input().split()))\nbest = cur = xs[0]\nfor x in xs[1:]:\n    cur = max(x, cur + x)\n    best = max(best, cur)\nprint(best)\n", ["-2 1 -3 4 -1 2 1 -5 4\n", "-3 -1 -2\n", "5\n"]),
    ("caesar", "Read a shift k and a lowercase word; print the word shifted by k letters (wrapping).",
     "k = int(input())\nw = input().strip()\nprint(''.join(chr((ord(c) - 97 + k) % 26 + 97) for c in w))\n", ["3\nabc\n", "1\nzzz\n", "25\nhello\n"]),
    ("digits-product", "Read a non-negative integer and print the product of its digits.",
     "r = 1\nfor d in input().strip():\n    r *= int(d)\nprint(r)\n", ["123\n", "9099\n", "7\n"]),
    ("pascal", "Read n and print the first n rows of Pascal's triangle, numbers separated by spaces.",
     "n = int(input())\nrow = [1]\nfor _ in range(n):\n    print(*row)\n    row = [1] + [a + b for a, b in zip(row, row[1:])] + [1]\n", ["1\n", "4\n", "6\n"]),
    ("balanced", "Read a string of brackets ()[]{} and print YES if balanced, else NO.",
     "s = input().strip()\nst = []\npairs = {')': '(', ']': '[', '}': '{'}\nok = True\nfor c in s:\n    if c in '([{':\n        st.append(c)\n    elif not st or st.pop() != pairs[c]:\n        ok = False\n        break\nprint('YES' if ok and not st else 'NO')\n", ["([]{})\n", "(]\n", "((\n"]),
    ("gcd-list", "Read a line of positive integers and print their greatest common divisor.",
     "import math\nfrom functools import reduce\nprint(reduce(math.gcd, map(int, input().split())))\n", ["12 18 24\n", "7 13\n", "100 75 50\n"]),
    ("run-length", "Read a string and print its run-length encoding (char then count, e.g. a3b1).",
     "s = input().strip()\nout = []\ni = 0\nwhile i < len(s):\n    j = i\n    while j < len(s) and s[j] == s[i]:\n        j += 1\n    out.append(f'{s[i]}{j - i}')\n    i = j\nprint(''.join(out))\n", ["aaab\n", "abc\n", "zzzzzz\n"]),
    ("second-largest", "Read a line of integers (at least two distinct) and print the second largest distinct value.",
     "xs = sorted(set(map(int, input().split())))\nprint(xs[-2])\n", ["1 2 3\n", "5 5 4\n", "-1 -2 -3 -1\n"]),
    ("binary-ones", "Read n and print how many 1 bits its binary form has.",
     "print(bin(int(input())).count('1'))\n", ["0\n", "255\n", "1023\n"]),
    ("matrix-sum", "Read r and c, then r rows of c integers; print each column's sum on one line.",
     "r, c = map(int, input().split())\nm = [list(map(int, input().split())) for _ in range(r)]\nprint(*[sum(row[j] for row in m) for j in range(c)])\n", ["2 3\n1 2 3\n4 5 6\n", "1 1\n9\n"]),
    ("vowel-strip", "Read a line and print it without vowels (aeiouAEIOU).",
     "print(''.join(c for c in input() if c not in 'aeiouAEIOU'))\n", ["Hello World\n", "aeiou\n", "rhythm\n"]),
    ("triangle-type", "Read three side lengths; print equilateral, isosceles, scalene or invalid.",
     "a, b, c = sorted(map(int, input().split()))\nif a + b <= c:\n    print('invalid')\nelif a == c:\n    print('equilateral')\nelif a == b or b == c:\n    print('isosceles')\nelse:\n    print('scalene')\n", ["3 3 3\n", "3 4 5\n", "2 2 3\n", "1 2 3\n"]),
]

DED_FN = [
    ("fn-square", "Write a function square(x) returning x squared.", "def square(x):\n    return x * x\n", "square", [(3,), (-4,), (0,)]),
    ("fn-join", "Write a function join_words(words, sep) joining a list of words with sep.", "def join_words(words, sep):\n    return sep.join(words)\n", "join_words", [(["a", "b"], "-"), (["x"], ","), ([], "+")]),
    ("fn-count", "Write a function count_char(s, c) returning how often character c occurs in s.", "def count_char(s, c):\n    return s.count(c)\n", "count_char", [("banana", "a"), ("xyz", "q"), ("aaaa", "a")]),
    ("fn-sorted", "Write a function sort_desc(xs) returning the list sorted in descending order.", "def sort_desc(xs):\n    return sorted(xs, reverse=True)\n", "sort_desc", [([3, 1, 2],), ([],), ([5, 5, 1],)]),
    ("fn-leap", "Write a function is_leap(year) returning True for Gregorian leap years.", "def is_leap(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n", "is_leap", [(2000,), (1900,), (2024,), (2023,)]),
    ("fn-flatten", "Write a function flatten(xss) returning the concatenation of a list of lists.", "def flatten(xss):\n    return [x for xs in xss for x in xs]\n", "flatten", [([[1, 2], [3]],), ([[], [4]],)]),
]

# ---------------------------------------------------------------- ELR: question + answer
def elr():
    def primes(n):
        sieve = [True] * (n + 1)
        sieve[0:2] = [False, False]
        for i in range(2, int(n ** 0.5) + 1):
            if sieve[i]:
                sieve[i * i::i] = [False] * len(sieve[i * i::i])
        return [i for i, p in enumerate(sieve) if p]
    def digit_sum(n):
        return sum(map(int, str(n)))
    def collatz_len(n):
        k = 1
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            k += 1
        return k
    from math import comb, factorial, gcd
    items = [
        ("multiples-7-11", "What is the sum of all natural numbers below 5000 that are multiples of 7 or 11?", sum(k for k in range(5000) if k % 7 == 0 or k % 11 == 0)),
        ("even-fib", "Consider the Fibonacci numbers 1, 2, 3, 5, 8, ... that do not exceed ten million. What is the sum of the odd-valued ones?", None),
        ("prime-2000th", "What is the 2000th prime number?", primes(20000)[1999]),
        ("prime-sum-50k", "What is the sum of all primes below fifty thousand?", sum(primes(49999))),
        ("digit-sum-2-500", "What is the sum of the digits of 2 to the power 500?", digit_sum(2 ** 500)),
        ("digit-sum-60-fact", "What is the sum of the digits of 60 factorial?", digit_sum(factorial(60))),
        ("collatz-under-30000", "Which starting number under 30000 produces the longest Collatz chain (n -> n/2 if even, 3n+1 if odd, until 1)?", max(range(1, 30000), key=collatz_len)),
        ("lattice-12", "How many monotone lattice paths (only right and down moves) cross a 12 by 12 grid from the top-left to the bottom-right corner?", comb(24, 12)),
        ("square-diff-150", "What is the difference between the square of the sum and the sum of the squares of the first 150 natural numbers?", sum(range(151)) ** 2 - sum(k * k for k in range(151))),
        ("smallest-multiple-15", "What is the smallest positive number evenly divisible by every number from 1 to 15?", None),
        ("pythagorean-840", "For how many right triangles with integer sides does the perimeter equal 840? (Count each unordered triple once.)", sum(1 for a in range(1, 840) for b in range(a, 840) if (c := 840 - a - b) > b and a * a + b * b == c * c)),
        ("palindrome-products-2", "What is the largest palindrome made from the product of two 2-digit numbers?", max(a * b for a in range(10, 100) for b in range(10, 100) if str(a * b) == str(a * b)[::-1])),
        ("triangle-divisors-100", "What is the first triangular number (1, 3, 6, 10, ...) with more than 100 divisors?", None),
        ("amicable-5000", "What is the sum of all amicable numbers below 5000?", None),
        ("power-digits-3-200", "How many digits does 3 to the power 200 have?", len(str(3 ** 200))),
        ("fib-digits-300", "What is the index of the first Fibonacci number (F1 = F2 = 1) with 300 digits?", None),
        ("distinct-powers-30", "How many distinct terms are in the sequence a^b for 2 <= a <= 30 and 2 <= b <= 30?", len({a ** b for a in range(2, 31) for b in range(2, 31)})),
        ("self-powers-500", "What are the last ten digits of the sum 1^1 + 2^2 + ... + 500^500?", sum(pow(k, k, 10 ** 10) for k in range(1, 501)) % 10 ** 10),
        ("coprime-count-1000", "How many integers between 1 and 1000 inclusive are coprime to 1000?", sum(1 for k in range(1, 1001) if gcd(k, 1000) == 1)),
        ("sum-squares-odd-999", "What is the sum of the squares of the odd numbers from 1 to 999?", sum(k * k for k in range(1, 1000, 2))),
        ("binary-palindromes-5000", "What is the sum of all numbers below 5000 that are palindromic in both base 10 and base 2?", sum(k for k in range(1, 5000) if str(k) == str(k)[::-1] and bin(k)[2:] == bin(k)[:1:-1])),
        ("goldbach-count-1000", "In how many ways can 1000 be written as the sum of two primes p <= q?", None),
        ("catalan-15", "What is the 15th Catalan number (C0 = 1)?", comb(30, 15) // 16),
        ("divisor-sum-720", "What is the sum of all positive divisors of 720?", sum(d for d in range(1, 721) if 720 % d == 0)),
        ("perfect-below-10000", "What is the sum of the perfect numbers below 10000?", sum(k for k in range(2, 10000) if sum(d for d in range(1, k // 2 + 1) if k % d == 0) == k)),
        ("trailing-zeros-1000", "How many trailing zeros does 1000 factorial have?", len(str(factorial(1000))) - len(str(factorial(1000)).rstrip('0'))),
        ("digit-fifth-powers-4", "What is the sum of all numbers (greater than 9) that equal the sum of the fourth powers of their digits?", sum(k for k in range(10, 10 ** 6) if k == sum(int(d) ** 4 for d in str(k)))),
        ("partitions-30", "In how many ways can 30 be written as a sum of positive integers, order ignored?", None),
    ]
    def even_fib():
        a, b, total = 1, 2, 0
        while a <= 10_000_000:
            if a % 2 == 1:
                total += a
            a, b = b, a + b
        return total
    def smallest_multiple():
        from math import lcm
        r = 1
        for k in range(1, 16):
            r = lcm(r, k)
        return r
    def triangle_divisors():
        n = 1
        while True:
            t = n * (n + 1) // 2
            count = 0
            d = 1
            while d * d <= t:
                if t % d == 0:
                    count += 1 if d * d == t else 2
                d += 1
            if count > 100:
                return t
            n += 1
    def amicable():
        def s(n):
            return sum(d for d in range(1, n // 2 + 1) if n % d == 0)
        return sum(a for a in range(2, 5000) if (b := s(a)) != a and s(b) == a)
    def fib_digits():
        a, b, i = 1, 1, 1
        while len(str(a)) < 300:
            a, b, i = b, a + b, i + 1
        return i
    def goldbach():
        ps = set(primes(1000))
        return sum(1 for p in ps if p <= 500 and (1000 - p) in ps)
    def partitions():
        ways = [1] + [0] * 30
        for part in range(1, 31):
            for total in range(part, 31):
                ways[total] += ways[total - part]
        return ways[30]
    fill = {"even-fib": even_fib, "smallest-multiple-15": smallest_multiple,
            "triangle-divisors-100": triangle_divisors, "amicable-5000": amicable,
            "fib-digits-300": fib_digits, "goldbach-count-1000": goldbach, "partitions-30": partitions}
    return [(i, q, a if a is not None else fill[i]()) for i, q, a in items]


def main():
    with open("data/abd.jsonl", "w") as out:
        for ident, program, stdin in ABD:
            output = run(program, stdin + "\n")
            out.write(json.dumps({"id": ident, "program": program, "input": stdin, "output": output}) + "\n")
    with open("data/ded.jsonl", "w") as out:
        for ident, prompt, solution, inputs in DED_IO:
            out.write(json.dumps({"id": ident, "prompt": prompt, "tests": io_tests(solution, inputs), "solution": solution}) + "\n")
        for ident, prompt, solution, name, calls in DED_FN:
            out.write(json.dumps({"id": ident, "prompt": prompt, "tests": fn_tests(solution, name, calls), "solution": solution}) + "\n")
    with open("data/elr.jsonl", "w") as out:
        for ident, question, answer in elr():
            out.write(json.dumps({"id": ident, "question": question, "answer": str(answer)}) + "\n")


if __name__ == "__main__":
    main()
