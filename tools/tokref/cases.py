#!/usr/bin/python3
"""The tokenizer test strings, shared by clip_ref.py and qwen2_ref.mjs (via cases.json).

    /usr/bin/python3 tools/tokref/cases.py > tools/tokref/cases.json

Hand-picked strings cover the regex branches, contractions, digits, HTML entities, scripts,
combining marks, NFC, special tokens; a seeded generator adds mixed random strings.
U+FEFF and U+0085 are avoided on purpose: JavaScript's \\s (transformers.js) and Unicode
White_Space (Hugging Face's Rust tokenizers) disagree on them."""
import json
import random

HAND = [
    "", " ", "   ", "\t\n\r ", "a", "A", "Hello world", "Hello, World!", "a photo of a cat",
    "A photo of a DOG.", "  leading and trailing  ", "multiple    spaces   here",
    "tabs\tand\nnewlines\r\nand CRLF\r\n", "line1\nline2\n\nline4\n\n\n", "trailing newline\n",
    "It's", "it's", "IT'S", "don't", "DON'T", "we're", "they've", "I'm", "you'll", "he'd",
    "'s 't 're 've 'm 'll 'd", "''s", "'''", "rock'n'roll", "O'Neil's", "'hello'",
    "12345", "3.14159", "1,000,000", "2024-06-01", "v1.2.3", "0x1F", "a1b2c3", "１２３",
    "٣٤٥ Arabic-Indic digits", "Ⅻ roman numeral", "½ ¾ ²",
    "&amp;", "&amp;amp;", "&lt;b&gt;bold&lt;/b&gt;", "&#39;quoted&#39;", "&#x27;hex&#x27;",
    "&quot;hi&quot;", "&copy 2024", "&nbsp;x&nbsp;", "&notit;", "&notin;", "&#0;", "&#128;",
    "&#x110000;", "&#xD800;", "&#1;", "& amp;", "&&amp;&", "&#65;&#66;&#67", "AT&T", "a&b",
    "&eacute;t&eacute;", "&AMP;", "&ampere;",
    "café", "CAFÉ", "naïve résumé", "e\u0301", "E\u0301", "a\u0300\u0301\u0302", "n\u0303",
    "\u0041\u030A", "\u212B", "\u1E9B\u0323", "q\u0307\u0323", "\uAC00\u11A8", "\u1100\u1161\u11A8",
    "한국어 텍스트", "日本語のテキスト", "中文文本测试", "ｶﾀｶﾅ", "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ",
    "Ελληνικά ΣΟΦΟΣ σοφος ΟΔΥΣΣΕΥΣ", "Σ", "ΑΣ", "ΑΣ.", "Σα", "ΑΣ'Α", "Русский текст",
    "İstanbul", "ıI", "Straße STRASSE", "ﬁnance ﬂower", "Ĳssel",
    "العربية نص", "עברית טקסט", "हिन्दी पाठ", "ภาษาไทย", "ქართული", "Հայերեն", "ᚠᚢᚦ",
    "👍", "👨‍👩‍👧‍👦 family", "🇺🇸🇬🇧", "❤️", "emoji 😀😃😄 sequence", "a\u200db", "a\u200cb",
    "zero\u200bwidth", "\u00a0nbsp\u00a0", "\u3000ideographic space\u3000", "\u2028\u2029",
    "“curly quotes” and ‘single’", "it’s", "don’t", "ʼn", "—em dash– en dash…",
    "\x01\x02 control", "\x7f del", "\x1c\x1d\x1e\x1f separators", "\x0b\x0c vt ff",
    "\u202ertl override\u202c", "\u2066isolate\u2069", "soft\u00adhyphen", "\x80\x81\x9f c1",
    "<start_of_text>", "<end_of_text>", "a <start_of_text> b <end_of_text> c", "<START_OF_TEXT>x",
    "<|startoftext|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|><|im_end|><|endoftext|>", "x<|endoftext|>y", "<|im_start", "<|im_end|",
    "<|endoftext|><|endoftext|>", "<image>", "<|IM_START|>",
    "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) { a[i] += b[i]; }",
    "if (a && b || !c) {}", "#include <stdio.h>\nint main(void) { puts(\"hi\"); }\n",
    "SELECT * FROM t WHERE id = 42;", "<html><body>hi</body></html>", "{\"key\": [1, 2, 3]}",
    "https://example.com/path?q=1&r=2#frag", "user@example.com", "C:\\\\path\\\\file.txt",
    "~/.bashrc && echo $HOME", "a+b=c", "x^2 + y^2 = z^2", "50% off!!!", "$100.00", "€50 £30 ¥100",
    "!!!???...", "...", "---", "___", "***", "(((nested)))", "[brackets]", "{braces}",
    "a.b.c", "a-b-c", "snake_case_name", "camelCaseName", "PascalCaseName", "kebab-case-name",
    "    indented", "\n\n\n", "\r\r\r", "\r\n\r\n", " \n \n ", "a \n b", "a\t\tb", "a \t b",
    "a  b   c    d", "x" * 300, "ab" * 200, "hello " * 60, " " * 50, "\n" * 40, "!" * 100,
    "1" * 100, "é" * 100, "漢" * 100, "a" + "\u0301" * 40, "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "The quick brown fox jumps over the lazy dog. " * 20,
    "a photo of a " + "very " * 80 + "long caption",
    "Ünïcödé Ŧëxŧ", "Ⓐⓑⓒ", "𝐁𝐨𝐥𝐝 𝕯𝖔𝖚𝖇𝖑𝖊", "𝟘𝟙𝟚", "ℌℑℜ", "ǅungla ǈj", "ﬀ ﬃ ﬄ ﬅ ﬆ",
    "ｈｅｌｌｏ，ｗｏｒｌｄ！", "￥１００", "ﾊﾟ ﾊﾞ", "Ａ\u0301",
    "tab\tseparated\tvalues", "trailing spaces   ", "   ", "\t", "\u2003em space", "mixed 中文 English 日本語 한국어",
    "Привет, мир! Hello, world! 你好，世界！", "ΑΒΓ αβγ", "ß", "ẞ", "ǰ", "ŉ", "K Kelvin", "Å angstrom",
    "\u0345", "\u03a3\u0345", "A\u0345\u03a3", "\u0130i\u0307", "ǲ", "ᾼ", "ῼ",
    "x\u0327\u0301", "x\u0301\u0327", "\u0f73", "\u0344", "\u0958", "\u2126", "\uf900", "\U0002F800",
    "\U0001F600\U0001F3FB", "\U0001D400\U0001D401", "\U00020000 ext-B", "\U000E0041 tag", "\uFFFD replacement",
    "\x1b[31mred\x1b[0m text", "\x1b[1;32;40mbold\x1b[m", "\x1b[\u0661\u0662mx", "\x1b[12", "\x1b[;;Z!",
    "\x1b\uff3b31m", "\x1bx", "\uE000 private", "\uFFFC object", "\u206A deprecated", "\uFFF9anno\uFFFB",
]


def rand_strings(seed, count):
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r  ",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "éèêëàâäôöûüçñÉÈÀÇÑ",
        "\u0300\u0301\u0302\u0303\u0308\u0327\u0323",
        "日本語中文字漢한국어テキスト",
        "αβγδΣσςΩπ",
        "абвгдежАБВГД",
        "عربيةעבריתहिन्दीไทย",
        "😀👍🏽❤️‍🔥🇯🇵",
        "’“”‘ﬁﬂ\u00a0\u3000ｈｅ１２",
    ]
    words = ["\x1b[0m", "'s", "'t", "'re", "'ll", "&amp;", "&lt;", "&#39;", "<|im_end|>", "<|endoftext|>",
             "<start_of_text>", "<end_of_text>", "\r\n", "  ", "...", "'", "e\u0301"]
    out = []
    for _ in range(count):
        n = rng.randint(1, 40)
        s = []
        for _ in range(n):
            if rng.random() < 0.12:
                s.append(rng.choice(words))
            else:
                p = rng.choice(pools)
                s.append("".join(rng.choice(p) for _ in range(rng.randint(1, 6))))
        out.append("".join(s))
    return out


def main():
    import sys
    if len(sys.argv) > 2:  # cases.py SEED COUNT: random strings only, for one-off differential runs
        json.dump(rand_strings(int(sys.argv[1]), int(sys.argv[2])), sys.stdout, ensure_ascii=True)
        return
    cases = list(HAND) + rand_strings(1234, 220)
    seen, uniq = set(), []
    for c in cases:
        if c not in seen:
            seen.add(c)
            uniq.append(c)
    json.dump(uniq, __import__("sys").stdout, ensure_ascii=True, indent=0)


main()
