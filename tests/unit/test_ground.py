from service import ground
from service.ground import figures, locate, summarize_evidence, summary_is_faithful

RAW = "全市已建成医养结合机构8个,完成投资1.7亿元;在建13个,总投资19.4亿元。覆盖率达到81.7%、73.4%,出生率4.35‰。"


def test_figures_verbatim_with_units():
    assert figures("全市已建成医养结合机构8个,完成投资1.7亿元") == ["8个", "1.7亿元"]
    assert figures("覆盖率达到81.7%、73.4%,出生率4.35‰") == ["81.7%", "73.4%", "4.35‰"]
    assert figures("169家乡镇卫生院") == ["169家"]


def test_a_range_printed_as_one_is_one_figure_of_an_item():
    # the 2025 Hainan press conference (c52) and a growth target's range
    assert figures("加强对0—6岁儿童口腔保健", ranges=True) == ["0—6岁"]
    assert figures("经济增长5%—5.5%左右，每村配备1-2名乡医", ranges=True) == ["5%—5.5%", "1-2名"]
    # a comparison is two figures, and so are two numbers a list or a "——" aside separates
    assert figures("从4.02‰下降至2.95‰", ranges=True) == ["4.02‰", "2.95‰"]
    assert figures("81.7%、73.4%", ranges=True) == ["81.7%", "73.4%"]
    assert figures("增长5%——2024年以来最高", ranges=True) == ["5%", "2024年"]
    # the guards read numbers one by one (a summary may print a range's dash differently)
    assert figures("加强对0—6岁儿童口腔保健") == ["0", "6岁"]


def test_locate_exact_then_tolerant_of_spaces_and_punctuation():
    assert locate(RAW, "在建13个") == (RAW.index("在建13个"), RAW.index("在建13个") + 5)
    ocr = "市人民医院 与上海第一人民医院,组建医联 体"
    span = locate(ocr, "市人民医院与上海第一人民医院，组建医联体")
    assert span == (0, len(ocr)) and ocr[span[0] : span[1]] == ocr
    assert locate(RAW, "完成投资2.7亿元") is None


def test_summary_keeps_every_number_of_its_evidence():
    evidence = "要进一步抓好14类“应检尽检”人群\n\n核酸检测"
    summary = summarize_evidence(evidence)
    assert summary == "进一步抓好14类“应检尽检”人群核酸检测。"
    assert summary_is_faithful(summary, evidence)
    assert not summary_is_faithful("完成投资1.8亿元。", "完成投资1.7亿元")


def test_a_summary_shares_its_words_with_its_own_evidence_not_a_neighbours():
    own = "设立中医特色康复医院和疗养院"
    assert ground.shared_words("设立中医特色康复医院", own) == 1.0
    assert ground.shared_words("拓展中医特色康复服务能力", own) < 0.5  # another unit's summary
    assert ground.shared_words("", own) == 1.0  # nothing claimed
    # figures and latin letters count as words; punctuation does not
    assert ground.shared_words("HIS系统覆盖80%", "纳入医院HIS管理系统,覆盖80%以上") > 0.5
