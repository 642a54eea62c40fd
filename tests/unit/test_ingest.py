import pytest

from service.errors import InputError
from service.ingest import read_bytes
from tests.conftest import SEEDS


def test_utf8_bom_and_gb18030_decode_to_the_same_text():
    text = SEEDS[0].read_text(encoding="utf-8")
    assert read_bytes(text.encode("utf-8"), "a") == text
    assert read_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"), "a") == text
    assert read_bytes(text.encode("gb18030"), "a") == text


def test_gbk_short_text_is_not_mistaken_for_another_encoding():
    text = "全市已建成医养结合机构8个,完成投资1.7亿元。"
    assert read_bytes(text.encode("gbk"), "short.txt") == text


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"   \n\t \r\n", "whitespace"),
        (b"\x00\x01\x02\x03PK\x03\x04" * 50, "binary"),
        (bytes(range(256)) * 4, "binary"),
    ],
)
def test_bad_input_names_the_file_and_the_reason(data, reason):
    with pytest.raises(InputError) as err:
        read_bytes(data, "bad.txt")
    assert "bad.txt" in str(err.value)
    assert reason in str(err.value)
