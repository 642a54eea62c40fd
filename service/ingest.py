"""Bytes in, the text every span indexes out.

Decoding is the only transformation: offsets in the digest refer to exactly the string
returned here. HTML is *not* stripped here (``service.clean`` finds its visible text and
keeps offsets into the page source), because the contract says spans index the decoded
page source.
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

from service.errors import InputError

# Chinese files in the wild are UTF-8 or GB18030 (a superset of GBK and GB2312). Trying
# them strictly first is both faster and more reliable than statistical detection, which
# confuses short GBK text with Big5 or Latin-1.
_PREFERRED = ("utf-8", "gb18030")


def read_bytes(data: bytes, source: str = "<input>") -> str:
    """Decode raw input; raise ``InputError`` naming ``source`` when it cannot be text."""
    if not data:
        raise InputError("input is empty", source)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _checked(data.decode("utf-16"), source)
    if _looks_binary(data):
        raise InputError("input looks binary (NUL bytes or control characters), not text", source)
    for encoding in _PREFERRED:
        try:
            return _checked(data.decode(encoding), source)
        except UnicodeDecodeError:
            continue
    best = from_bytes(data).best()
    if best is None:
        raise InputError("cannot decode input as UTF-8, GB18030 or any known text encoding", source)
    return _checked(str(best), source)


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls > len(head) * 0.02


def _checked(text: str, source: str) -> str:
    if not text.strip():
        raise InputError("input holds only whitespace", source)
    if not _has_cjk_or_letters(text):
        raise InputError("input holds no readable text", source)
    return text


def _has_cjk_or_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text[:20000])


def looks_like_html(text: str) -> bool:
    """Web-page source (HTML, JSP/PHP templates) rather than plain text."""
    head = text[:4096].lower()
    markers = ("<html", "<!doctype", "<body", "<div", "<p>", "<p ", "<meta", "<%@", "<?php", "<br")
    return sum(head.count(m) for m in markers) >= 2 or head.lstrip().startswith(("<!doctype", "<html"))
