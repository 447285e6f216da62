#!/usr/bin/python3
"""Expected CLIP token ids: our own re-implementation of OpenCLIP's SimpleTokenizer algorithm
(mlfoundations/open_clip src/open_clip/tokenizer.py, clean='lower'), without ftfy.

    /usr/bin/python3 tools/tokref/clip_ref.py > tests/data/tok/clip_cases.json
    (an optional argument names another strings file, for larger one-off differential runs)

ftfy is not packaged for Debian, so ftfy.fix_text is replaced by the subset of its default
fixes that the C tokenizer also implements ("ftfy-lite", see src/text/clip_tok.c):
fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes,
remove_terminal_escapes, remove_control_chars and NFC. Not replicated: mojibake repair
(fix_encoding and friends) and ftfy's own HTML unescaping. The rest follows SimpleTokenizer:
html.unescape twice, strip, whitespace collapse, str.lower(), the pre-tokenizer regex
(python3-regex, IGNORECASE), byte-level BPE with '</w>', ids [sot] + ... + [eot]."""
import gzip
import html
import json
import os
import re
import sys
import unicodedata

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = os.path.join(HERE, "..", "..", "..", "shared", "data", "clip", "bpe_simple_vocab_16e6.txt.gz")


def byte_table():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table, [table[b] for b in keep] + [table[b] for b in range(256) if b not in keep]


# ---- ftfy-lite -------------------------------------------------------------------------------
LIGATURES = {"Ĳ": "IJ", "ĳ": "ij", "ŉ": "ʼn", "Ǳ": "DZ", "ǲ": "Dz", "ǳ": "dz", "Ǆ": "DŽ", "ǅ": "Dž",
             "ǆ": "dž", "Ǉ": "LJ", "ǈ": "Lj", "ǉ": "lj", "Ǌ": "NJ", "ǋ": "Nj", "ǌ": "nj", "ﬀ": "ff",
             "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ſt", "ﬆ": "st"}
WIDTH = {0x3000: " "}
for _cp in range(0xFF01, 0xFFF0):
    _alt = unicodedata.normalize("NFKC", chr(_cp))
    if _alt != chr(_cp):
        WIDTH[_cp] = _alt
CONTROL = set(range(0, 9)) | {0x0B} | set(range(0x0E, 0x20)) | {0x7F} | set(range(0x206A, 0x2070)) \
    | {0xFEFF} | set(range(0xFFF9, 0xFFFD))


def c1(ch):
    try:
        return bytes([ord(ch)]).decode("cp1252")
    except UnicodeDecodeError:  # "sloppy" windows-1252 keeps undefined bytes as Latin-1
        return ch


ANSI_RE = re.compile("\033\\[((?:\\d|;)*)([a-zA-Z])")  # ftfy's, with Python re's Unicode \d


def ftfy_lite(t):
    out = []
    for ch in t:
        cp = ord(ch)
        if 0x80 <= cp <= 0x9F:
            ch = c1(ch)
        ch = LIGATURES.get(ch, ch)
        ch = "".join(WIDTH.get(ord(x), x) for x in ch)
        ch = regex.sub("[\u02bc\u2018-\u201b]", "'", ch)
        ch = regex.sub("[\u201c-\u201f]", '"', ch)
        out.append(ch)
    t = ANSI_RE.sub("", "".join(out))
    t = "".join(x for x in t if ord(x) not in CONTROL)
    return unicodedata.normalize("NFC", t)


def clean(t):
    t = ftfy_lite(t)
    t = html.unescape(html.unescape(t)).strip()
    t = " ".join(t.split()).strip()
    return t.lower()


# ---- BPE ---------------------------------------------------------------------------------------
class Clip:
    def __init__(self, path):
        self.byte_enc, base = byte_table()
        lines = gzip.open(path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in lines]
        vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges]
        vocab += ["<start_of_text>", "<end_of_text>"]
        self.ids = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.pat = regex.compile(r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"
                                 r"[^\s\p{L}\p{N}]+", regex.IGNORECASE)

    def bpe(self, token):
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            best = min(((self.ranks.get(p, 1 << 60), p) for p in zip(word, word[1:])))
            if best[0] == 1 << 60:
                break
            a, b = best[1]
            new, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    new.append(a + b)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = new
        return word

    def encode(self, text):
        out = []
        for tok in self.pat.findall(clean(text)):
            if tok in ("<start_of_text>", "<end_of_text>"):
                out.append(self.ids[tok])
                continue
            mapped = "".join(self.byte_enc[b] for b in tok.encode("utf-8"))
            out.extend(self.ids[t] for t in self.bpe(mapped))
        return out


def main():
    clip = Clip(VOCAB)
    cases = json.load(open(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "cases.json")))
    out = [json.dumps({"text": t, "ids": clip.encode(t)}, ensure_ascii=False, separators=(",", ":"))
           for t in cases]
    sys.stdout.write("[\n" + ",\n".join(out) + "\n]\n")


main()
