#!/usr/bin/python3
"""NFC and str.lower() expectations for tests/test_tok_unicode.c.

    /usr/bin/python3 tools/tokref/unicode_ref.py > tests/data/tok/unicode_cases.txt

Each line: "nfc" or "lower", a tab, the input as space-separated hex code points, a tab, the
output the same way. Inputs: every code point that NFC changes on its own, every primary
composite's decomposed pair, seeded random runs of bases + combining marks (all orders) + Hangul
jamo, and random Greek/Turkish/mixed-case strings for lowering (final sigma, U+0130)."""
import random
import unicodedata as ud


def hx(s):
    return " ".join("%X" % ord(c) for c in s)


def main():
    out = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if ud.normalize("NFC", c) != c:
            out.append(("nfc", c))
        d = ud.decomposition(c)
        if d and not d.startswith("<") and len(d.split()) == 2 and ud.normalize("NFC", c) == c:
            out.append(("nfc", "".join(chr(int(x, 16)) for x in d.split())))
    rng = random.Random(4321)
    marks = [chr(c) for c in range(0x300, 0x370)] + ["\u0591", "\u05B0", "\u0E38", "\u093C", "\u1DC0", "\u20D0",
                                                     "\u3099", "\u309A", "\u0F71", "\u0F72", "\u0F74"]
    bases = list("aeiouAEIOUnNcCsSzZyYwW") + ["\u03b1", "\u03c9", "\u0391", "\u0415", "\u0438", "\u05d0",
                                             "\u0915", "\u0E01", "\u304B", "\u30CF", "\u1E9B", "\u0F40"]
    jamo = [chr(c) for c in list(range(0x1100, 0x1113)) + list(range(0x1161, 0x1176)) + list(range(0x11A8, 0x11C3))]
    hangul = [chr(c) for c in (0xAC00, 0xAC01, 0xD7A3, 0xB098, 0xC544)]
    for _ in range(600):
        s = "".join(rng.choice(rng.choice([bases, marks, marks, jamo, hangul])) for _ in range(rng.randint(1, 12)))
        out.append(("nfc", s))
    greek = list("ΣσςΑαΒβΟοΔδ") + ["'", ".", " ", "\u0301", "\u0345", "\u00ad", "A", "b", "\u0130", "I", "\u1F88",
                                   "\u01C5", "\u2126", "\u212A", "\u00DF", "\u1E9E", "1", "\u02B0"]
    for _ in range(300):
        out.append(("lower", "".join(rng.choice(greek) for _ in range(rng.randint(1, 10)))))
    for kind, s in out:
        r = ud.normalize("NFC", s) if kind == "nfc" else s.lower()
        print(f"{kind}\t{hx(s)}\t{hx(r)}")


main()
