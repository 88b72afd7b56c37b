"""Grading answers as learners write them, in English or Japanese: the kind of fault by
any of its names and nothing else, a version with a "v", a type by its qualified name, and
counts and attributes that are not one refused with a message."""

from __future__ import annotations

import argparse

import pytest

from labs import grading, model
from sample_app.faults import catalogue


def _field(lab_id: str, field: str, given, count_truth: float | None = 9) -> grading.FieldGrade:
    result = grading.grade(model.get(lab_id).answer, {field: given}, count_truth=count_truth)
    return next(f for f in result.fields if f.field == field)


@pytest.mark.parametrize(
    ("lab_id", "said"),
    [
        # The words the Japanese hints use ("カナリアの catalog 1.8.0、つまり悪いデプロイです").
        ("bad-deploy", "カナリア"),
        ("bad-deploy", "悪いデプロイ"),
        ("bad-deploy", "悪い デプロイです"),
        ("bad-deploy", "おそらくカナリアのリリースが原因です"),
        ("bad-deploy", "ｶﾅﾘｱ"),  # half-width, as some input methods leave it
        ("failing-tenant", "一つのテナントのデータエラー"),
        ("n-plus-one", "N+1クエリ"),
        ("n-plus-one", "遅延ロードによる N+1 クエリ"),
        ("pool-exhaustion", "リークによるコネクションプール枯渇"),
        ("slow-query", "インデックスの欠落"),
        ("retry-storm", "リトライストーム"),
        ("silent-failure", "サイレント障害"),
        ("gradual-degradation", "徐々に進む劣化"),
        ("heavy-user", "一人のヘビーユーザー"),
    ],
)
def test_a_kind_of_fault_named_in_japanese_is_right(lab_id, said):
    grade = _field(lab_id, "fault_class", said)
    assert grade.credit == 1, grade.feedback.ja


@pytest.mark.parametrize(
    "lab", [lab for lab in model.all_labs() if lab.fault], ids=lambda lab: lab.id
)
def test_every_lab_takes_the_catalogue_s_japanese_names_of_its_fault(lab):
    for name in catalogue.get(lab.fault).aliases_ja:
        if "fault_class" in lab.answer.fields:
            assert _field(lab.id, "fault_class", name.replace(" ", "")).credit == 1, name


@pytest.mark.parametrize(
    ("lab_id", "said"),
    [
        ("bad-deploy", "bad deploy ではない"),
        ("bad-deploy", "悪いデプロイではない"),
        ("bad-deploy", "カナリアじゃない"),
        ("bad-deploy", "not a bad deploy"),
        ("bad-deploy", "no canary"),
        ("n-plus-one", "N+1 ではない"),
        ("slow-query", "no slow query"),  # "no" is a word of "no index", not a name alone
        ("slow-query", "インデックスがないではない"),
        # なく ("not ... but"): a word of one name (際限なく増えるバッファ), never a name alone.
        ("gradual-degradation", "リークではなく"),
        ("gradual-degradation", "メモリリークではなく"),
        ("bad-deploy", "悪いデプロイではなく"),
    ],
)
def test_a_negation_is_refused_in_both_languages(lab_id, said):
    grade = _field(lab_id, "fault_class", said)
    assert grade.credit == 0
    assert "negation" in grade.feedback.en and "否定" in grade.feedback.ja


def test_a_name_that_holds_no_itself_still_stands():
    assert _field("slow-query", "fault_class", "no index").credit == 1
    assert _field("slow-query", "fault_class", "インデックスがない").credit == 1
    # Another kind's name with "no" in it is wrong, not a negation.
    other = _field("heavy-user", "fault_class", "no index")
    assert other.credit == 0 and "negation" not in other.feedback.en


def test_words_outside_every_name_are_refused_and_named():
    english = _field("bad-deploy", "fault_class", "totally a bad deploy")
    assert english.credit == 0 and "“totally”" in english.feedback.en
    japanese = _field("bad-deploy", "fault_class", "悪いデプロイかも")
    assert japanese.credit == 0 and "「かも」" in japanese.feedback.ja
    assert "名前だけ" in japanese.feedback.ja
    # A wrong kind in known words says only that it is not the kind: nothing is given away.
    for other_kind in ("connection leak", "data errors", "インデックスがない"):
        wrong = _field("bad-deploy", "fault_class", other_kind)
        assert wrong.feedback.en == "not the kind of fault the traces show", other_kind


@pytest.mark.parametrize("said", ["", "   ", None])
def test_no_kind_of_fault_given_says_so(said):
    answer = {} if said is None else {"fault_class": said}
    grade = grading.grade(model.get("bad-deploy").answer, answer, count_truth=3)
    fault_class = next(f for f in grade.fields if f.field == "fault_class")
    assert fault_class.credit == 0
    assert fault_class.feedback == model.Text(
        "no kind of fault given", "障害の種類が指定されていません"
    )


@pytest.mark.parametrize(
    ("lab_id", "said"),
    [
        # Kanji for the kana of a name, and katakana with or without its long marks.
        ("slow-query", "インデックスが無い"),
        ("slow-query", "インデックス無し"),
        ("n-plus-one", "N+1クエリー"),
        ("slow-query", "スロークエリー"),
        ("heavy-user", "ヘビーユーザ"),
        ("gradual-degradation", "増え続けるバッファー"),
        ("silent-failure", "誤ったフィルタ"),
    ],
)
def test_other_spellings_of_a_japanese_name_are_the_name(lab_id, said):
    assert _field(lab_id, "fault_class", said).credit == 1


@pytest.mark.parametrize(
    ("lab_id", "said"),
    [
        ("retry-storm", "retry"),  # the singular of a plural name ("retries")
        ("retry-storm", "aggressive retry"),
        ("pool-exhaustion", "leaked connection"),
        ("silent-failure", "empty result"),
        ("silent-failure", "zero result"),
    ],
)
def test_a_plural_name_said_in_the_singular_is_the_name(lab_id, said):
    assert _field(lab_id, "fault_class", said).credit == 1


@pytest.mark.parametrize(
    ("lab_id", "said"),
    [
        # なく alone is a word of a name (際限なく増えるバッファ), not a negation.
        ("gradual-degradation", "際限なく増え続けるバッファ"),
        ("gradual-degradation", "バッファが際限なく増える"),
        # Particles a name holds as words of their own may be left out, or put in.
        ("retry-storm", "リトライ嵐"),
        ("retry-storm", "リトライの嵐"),
        ("silent-failure", "ロケールの不一致"),
        # Terms Japanese engineers use.
        ("slow-query", "フルスキャン"),
        ("pool-exhaustion", "コネクション枯渇"),
        ("failing-tenant", "データ不整合"),
    ],
)
def test_japanese_names_as_engineers_write_them_are_the_name(lab_id, said):
    assert _field(lab_id, "fault_class", said).credit == 1


def test_feedback_quotes_the_words_as_written_long_marks_included():
    grade = _field("bad-deploy", "fault_class", "サーバーの障害")
    assert grade.credit == 0 and "「サーバー」" in grade.feedback.ja


def test_a_name_word_in_the_plural_is_the_name():
    assert _field("failing-tenant", "fault_class", "data errors").credit == 1
    assert _field("bad-deploy", "fault_class", "bad deploys").credit == 1
    assert _field("slow-query", "fault_class", "missing indexes").credit == 1
    assert _field("failing-tenant", "fault_class", "data horrors").credit == 0


@pytest.mark.parametrize(("given", "credit"), [("v1.8.0", 1), ("V1.8.0", 1), ("v1.7.3", 0)])
def test_a_version_may_have_a_v_before_it(given, credit):
    assert _field("bad-deploy", "version", given, count_truth=3).credit == credit


def test_a_type_by_its_qualified_name_is_the_type():
    key = {"error.type": "TimeoutError"}

    def credit(given: dict) -> float:
        return grading._attribute(key, given).credit

    assert credit({"error.type": "sqlalchemy.exc.TimeoutError"}) == 1
    assert credit({"error.type": "TimeoutError"}) == 1
    assert credit({"error.type": "sqlalchemy.exc.OperationalError"}) == 0.5
    assert credit({"error.type": "TimeoutError.extra"}) == 0.5
    # Only a type is qualified: a tenant is not "something.globex".
    assert grading._attribute({"tenant.id": "globex"}, {"tenant.id": "x.globex"}).credit == 0.5


@pytest.mark.parametrize("given", [float("nan"), float("inf"), -5, "nan", "-1", "many", True])
def test_a_count_that_is_not_one_is_refused(given):
    grade = _field("failing-tenant", "count", given)
    assert grade.credit == 0
    assert "is not a count: a number, 0 or more" in grade.feedback.en
    assert "0 以上の数" in grade.feedback.ja


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "-5", "twelve"])
def test_count_argument_refuses_what_is_not_a_count_naming_the_option(text, capsys):
    parser = argparse.ArgumentParser(prog="answer")
    parser.add_argument("--count", type=grading.count_argument)
    with pytest.raises(SystemExit) as exited:
        parser.parse_args([f"--count={text}"])
    assert exited.value.code == 2
    assert f"argument --count: {text!r} is not a count" in capsys.readouterr().err
    assert parser.parse_args(["--count", "12"]).count == 12.0
    assert parser.parse_args(["--count", "0"]).count == 0.0


def test_an_attribute_without_a_key_is_refused():
    grade = _field("failing-tenant", "attribute", {"": "globex"})
    assert grade.credit == 0
    assert grade.feedback.en == "no attribute key given: KEY=VALUE, e.g. tenant.id=acme"
    assert "属性のキーが指定されていません" in grade.feedback.ja
    for text in ("=globex", "tenant.id", "tenant.id=", " = "):
        with pytest.raises(argparse.ArgumentTypeError, match="is not KEY=VALUE"):
            grading.attribute_argument(text)
    assert grading.attribute_argument(" tenant.id = globex ") == {"tenant.id": "globex"}


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--count", "nan"], "argument --count: 'nan' is not a count"),
        (["--count", "-5"], "argument --count: '-5' is not a count"),
        (["--attr", "=globex"], "argument --attr: '=globex' is not KEY=VALUE"),
        (["--attr", "foo"], "argument --attr: 'foo' is not KEY=VALUE"),
    ],
)
def test_lab_answer_refuses_a_malformed_count_or_attribute_before_grading(argv, said, capsys):
    # Refused by the command line (exit 2), so nothing is graded or saved in lab.json.
    from o11ykit.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["lab", "answer", *argv])
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


# Each lab's last hint names the kind of fault in a phrase of its own, in each language: a
# learner who answers in the hint's words is right in either (the English ones scored 0:
# "of", "from", "eager", "wrong locale" were part of no name).
HINT_PHRASES = {
    "failing-tenant": (["a data error of one tenant"], ["一つのテナントのデータエラー"]),
    "n-plus-one": (["N+1 queries, from lazy loading"], ["遅延ロードによる N+1 クエリ"]),
    "slow-query": (["a missing index"], ["インデックスの欠落"]),
    "bad-deploy": (["the canary: a bad deploy"], ["カナリア", "悪いデプロイ"]),
    "retry-storm": (["eager retries", "a retry storm"], ["即時リトライ", "リトライストーム"]),
    "silent-failure": (
        ["a silent failure", "the wrong locale"],
        ["サイレント障害", "誤ったロケール"],
    ),
    "gradual-degradation": (["gradual degradation, a leak"], ["徐々に進む劣化、つまりリーク"]),
    "pool-exhaustion": (
        ["connection pool exhaustion, from a leak"],
        ["リークによるコネクションプール枯渇"],
    ),
    "heavy-user": (
        ["one heavy user", "an unbounded query"],
        ["一人のヘビーユーザー", "上限のないクエリ"],
    ),
}
KEYED_LABS = [lab for lab in model.all_labs() if "fault_class" in lab.answer.fields]


def test_every_lab_graded_on_its_kind_of_fault_has_its_hint_phrases_here():
    assert set(HINT_PHRASES) == {lab.id for lab in KEYED_LABS}


@pytest.mark.parametrize("lab", KEYED_LABS, ids=lambda lab: lab.id)
@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_last_hint_s_words_for_the_kind_of_fault_are_right(lab, language):
    phrases = HINT_PHRASES[lab.id][0 if language == "en" else 1]
    hint = lab.hints[-1](language)
    for phrase in phrases:
        assert phrase in hint, (phrase, hint)
        grade = _field(lab.id, "fault_class", phrase)
        assert grade.credit == 1, (phrase, grade.feedback(language))


@pytest.mark.parametrize(
    ("lab_id", "said"),
    [
        # The words "of" and "from" join names; they name nothing, and make no other kind right.
        ("failing-tenant", "one tenant"),
        ("failing-tenant", "data error of one user"),
        ("retry-storm", "eager"),
        ("slow-query", "a slow query from n+1"),
        ("gradual-degradation", "leak of connections"),
        ("gradual-degradation", "connection leak"),  # docs/labs.md: a neighbouring kind
        ("silent-failure", "wrong locale of a retry storm"),
        ("bad-deploy", "totally a bad deploy"),  # docs/labs.md: other words
    ],
)
def test_near_misses_with_the_joining_words_stay_wrong(lab_id, said):
    assert _field(lab_id, "fault_class", said).credit == 0


@pytest.mark.parametrize(
    ("lab_id", "said"),
    [
        ("slow-query", "not a slow query"),
        ("n-plus-one", "not N+1 queries, from lazy loading"),
        ("pool-exhaustion", "not connection pool exhaustion from a leak"),
        ("failing-tenant", "not a data error of one tenant"),
        ("bad-deploy", "N+1 じゃない"),
        ("gradual-degradation", "リークではなく"),
    ],
)
def test_a_negation_of_a_hint_s_phrase_is_still_a_negation(lab_id, said):
    grade = _field(lab_id, "fault_class", said)
    assert grade.credit == 0 and "negation" in grade.feedback.en
