"""Grading a learner's structured answer against a lab's key, with partial credit.

A neighbouring service in the call chain (the caller or the callee of the culprit) earns
half: the learner is one hop away. The right attribute key with the wrong value earns
half. A count within the lab's tolerance earns all, within twice the tolerance half. A count
that grows while the fault runs (distinct users who got an error) is compared with every
value it had since the earliest moment the learner may have read it, not only its latest.
Feedback says what was right and where to look again, never the answer itself.

Names are compared as learners spell them: case and width aside, and `.`, `_` or `-`
alike (`Tenant.ID`, `tenant_id`); a service by its process's name too (`catalog-canary`),
a version with a "v" before it, a type by its qualified name. A kind of fault is named in
English or Japanese, and an answer that also holds a negation or other words does not
name it.
"""

from __future__ import annotations

import argparse
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from labs.model import AnswerKey, Text
from sample_app import topology
from sample_app.faults import catalogue

# How an answer's attribute and count are written, for the messages that refuse others.
ATTRIBUTE_FORM = Text(
    "KEY=VALUE, e.g. tenant.id=acme", "KEY=VALUE の形で答えてください（例: tenant.id=acme）"
)
COUNT_FORM = Text("a number, 0 or more (e.g. 12)", "0 以上の数で答えてください（例: 12）")
# A learner reads a count, then writes the answer while the traffic goes on: what the
# traces showed up to this long before the answer is as right as what they show at it.
COUNT_READ_S = 120


@dataclass(frozen=True)
class FieldGrade:
    field: str
    credit: float  # 0, 0.5 or 1
    feedback: Text


@dataclass(frozen=True)
class Grade:
    fields: tuple[FieldGrade, ...]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> int:
        return round(100 * sum(f.credit for f in self.fields) / max(1, len(self.fields)))

    @property
    def correct(self) -> bool:
        return all(f.credit == 1 for f in self.fields)


def _normal(text: Any) -> str:
    """Lower case, words apart: `.`, `_`, `-` and other punctuation are one separator.
    Letters of any script stay (NFKC first: full-width "ＴＥＮＡＮＴ" is "tenant", half-width
    "ｶﾅﾘｱ" is "カナリア")."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    # 無い/無し are ない/なし spelt in kanji.
    text = text.replace("無い", "ない").replace("無し", "なし")
    return " ".join(re.sub(r"[^\w+]|_", " ", text).split())


# A process's name as topology and `o11ykit app status` show it, to the service.name its
# spans carry: "catalog-canary" is the catalog, one version later.
_SERVICE_NAMES = {_normal(s.name): s.service_name for s in topology.SERVICES}


def _service_name(given: Any) -> str:
    """The service a learner names, spelt as its spans' service.name is, normalised."""
    normal = _normal(given)
    return _normal(_SERVICE_NAMES.get(normal, normal))


def neighbours(service: str) -> set[str]:
    """Services one call away, by service.name (the canary is catalog)."""
    names = {s.name: s.service_name for s in topology.SERVICES}
    found = set()
    for caller in topology.SERVICES:
        callees = {names[c] for c in caller.calls}
        if service in callees:
            found.add(caller.service_name)
        if caller.service_name == service:
            found |= callees
    return found - {service}


def _service(expected: str, given: Any) -> FieldGrade:
    if given is None:
        return FieldGrade("service", 0, Text("no service given", "サービスが指定されていません"))
    if _service_name(given) == _service_name(expected):
        return FieldGrade("service", 1, Text("right service", "サービスは正解です"))
    if _service_name(given) in {_normal(name) for name in neighbours(expected)}:
        return FieldGrade(
            "service",
            0.5,
            Text(
                f"{given} is one hop from the cause: follow its calls one step further",
                f"{given} は原因から一つ隣のサービスです。呼び出しをもう一段たどってください",
            ),
        )
    return FieldGrade("service", 0, Text(f"not {given}", f"{given} ではありません"))


def _version(text: Any) -> str:
    """A version as written, "v" before its number aside (v1.8.0 is 1.8.0)."""
    return re.sub(r"^v(?=\d)", "", _normal(text))


def _exact(
    name: str, expected: Any, given: Any, what: Text, spelt: Callable[[Any], str] = _normal
) -> FieldGrade:
    if given is not None and spelt(given) == spelt(expected):
        return FieldGrade(name, 1, Text(f"right {what.en}", f"{what.ja}は正解です"))
    return FieldGrade(
        name,
        0,
        Text(f"not the {what.en} that explains it", f"原因を説明する{what.ja}ではありません"),
    )


def _same_value(key: str, expected: Any, given: Any) -> bool:
    """Whether `given` is the attribute's value; a type (error.type) also by the qualified
    name the waterfall prints, sqlalchemy.exc.TimeoutError for TimeoutError."""
    if _normal(given) == _normal(expected):
        return True
    qualified = re.fullmatch(r"(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", str(given).strip())
    return (
        _normal(key).endswith("type")
        and qualified is not None
        and _normal(qualified.group(1)) == _normal(expected)
    )


def _attribute(expected: dict[str, Any], given: Any) -> FieldGrade:
    ((key, value),) = expected.items()
    if not isinstance(given, dict) or not given:
        return FieldGrade("attribute", 0, Text("no attribute given", "属性が指定されていません"))
    ((given_key, given_value),) = list(given.items())[:1]
    if not _normal(given_key):
        return FieldGrade(
            "attribute",
            0,
            Text(
                f"no attribute key given: {ATTRIBUTE_FORM.en}",
                f"属性のキーが指定されていません。{ATTRIBUTE_FORM.ja}",
            ),
        )
    # `_normal` makes `.`, `_` and `-` one separator: Tenant.ID and tenant_id are tenant.id.
    right_key = _normal(given_key) == _normal(key)
    if right_key and _same_value(key, value, given_value):
        return FieldGrade("attribute", 1, Text("right attribute and value", "属性と値は正解です"))
    if right_key:
        return FieldGrade(
            "attribute",
            0.5,
            Text(
                f"{key} is the right attribute; compare its values again",
                f"{key} は正しい属性です。値をもう一度比べてください",
            ),
        )
    return FieldGrade(
        "attribute",
        0,
        Text(f"{given_key} does not single the cause out", f"{given_key} では原因を絞り込めません"),
    )


# Words a sentence adds around a kind of fault ("it's a retry storm issue", "おそらく悪い
# デプロイです"): allowed around a name, never a name themselves.
# fmt: off
_FILLER = frozenset({
    "a", "an", "the", "it", "its", "s", "is", "was", "this", "that", "looks", "like",
    "probably", "likely", "caused", "by", "of", "from", "issue", "problem", "fault", "bug",
    "の", "が", "は", "を", "に", "で", "と", "です", "でした", "だ", "だった", "である",
    "でしょう", "と思います", "と思う", "おそらく", "恐らく", "たぶん", "多分", "きっと",
    "らしい", "みたい", "ようです", "による", "によって", "つまり", "起因", "原因", "問題", "障害",
    "不具合", "バグ", "これ", "それ", "している", "しています", "起きている", "起きています",
})
# An answer saying what the fault is not ("not a slow query", "悪いデプロイではない") names
# no kind of fault. "no" is also part of some names ("no index"): whole, they stand.
_NEGATIONS = frozenset({
    "not", "no", "non", "never", "none", "nor", "isn", "aren", "wasn", "don", "doesn",
    "ない", "なし", "ません", "違う", "ちがう",
})
# Japanese negations that no name holds: wherever they stand, the answer is one. (Bare なく
# is not among them: 際限なく増えるバッファ is a name.)
_JAPANESE_NEGATIONS = (
    "ではなく", "じゃなく", "ではない", "じゃない", "ではなかった", "じゃなかった",
)
# fmt: on

# Japanese is written without spaces: each of its characters is a token, and names, words
# and fillers are runs of them; other scripts' words are tokens whole.
_JAPANESE = "\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(f"[{_JAPANESE}]|[^\\s{_JAPANESE}]+")

Tokens = tuple[str, ...]


def _singular(token: str) -> str:
    """An English plural as its singular ("queries" query, "indexes" index, "errors" error).
    Applied to names and answers alike, so a word it shortens wrongly ("status") still
    matches itself."""
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "xes", "ches", "shes")):
        return token[:-2]
    if token.endswith("s") and not token.endswith("ss") and len(token) > 3:
        return token[:-1]
    return token


_KATAKANA = re.compile("[\u30a1-\u30fa]")
_LONG_MARK = "\u30fc"


def _read(text: Any) -> tuple[Tokens, Tokens]:
    """The tokens as matched, and as written (for feedback), one for one. Matched: plurals
    as their singular, on both sides ("retries" and "retry" read alike, whichever a name
    has), and katakana without its long marks (クエリー and クエリ, ユーザー and ユーザ:
    a closing one is often left out, and names are spaced into words where answers are
    not, so every one goes); as written, the mark stays with the character before it."""
    matched: list[str] = []
    written: list[str] = []
    for token in _TOKEN.findall(_normal(text)):
        if token == _LONG_MARK and written and _KATAKANA.fullmatch(written[-1][-1]):
            written[-1] += token
            continue
        matched.append(_singular(token))
        written.append(token)
    return tuple(matched), tuple(written)


def _tokens(text: Any) -> Tokens:
    return _read(text)[0]


def _negates(tokens: Tokens) -> bool:
    return any(_occurs(n, tokens, at) for n in _NEGATION_PHRASES for at in range(len(tokens)))


def _words(name: str) -> set[Tokens]:
    """A name's words, as its spaces separate them ("悪い デプロイ": 悪い, デプロイ)."""
    return {_tokens(word) for word in _normal(name).split()}


_FILLER_TOKENS = frozenset(_tokens(word) for word in _FILLER)
_NEGATION_TOKENS = frozenset(_tokens(word) for word in (*_NEGATIONS, *_JAPANESE_NEGATIONS))
_NEGATION_PHRASES = tuple(_tokens(word) for word in _JAPANESE_NEGATIONS)


def _occurs(piece: Tokens, tokens: Tokens, at: int) -> bool:
    return tokens[at : at + len(piece)] == piece


def _said_of(names: list[str], given: Any) -> tuple[Tokens, set[Tokens], set[Tokens]]:
    """The answer's tokens, with the names' phrases and their words, negations aside (all
    of them with plurals as their singular)."""
    phrases, words = _phrases_and_words(tuple(names))
    return _tokens(given), set(phrases), set(words)


@cache
def _phrases_and_words(names: tuple[str, ...]) -> tuple[frozenset[Tokens], frozenset[Tokens]]:
    """Read once per set of names: reading every name of the catalogue (for what an answer
    holds beyond them) was 30 ms of each grade."""
    phrases = {_tokens(spelling) for name in names for spelling in _spellings(name)} - {()}
    words = {word for name in names for word in _words(name)} - _NEGATION_TOKENS
    return frozenset(phrases), frozenset(words)


# Particles a Japanese name may hold as words of their own ("リトライ の 嵐"), which many
# leave out ("リトライ嵐"): the name stands without them too.
_PARTICLES = frozenset({"の", "が", "を", "は", "に", "で", "と"})


def _spellings(name: str) -> set[str]:
    """The name, and the name without its particles."""
    words = _normal(name).split()
    return {" ".join(words), " ".join(word for word in words if word not in _PARTICLES)}


def _names_whole(tokens: Tokens, phrases: set[Tokens], words: set[Tokens]) -> bool:
    """Whether `tokens` are one or more whole phrases, with only the phrases' words and
    fillers around them: a search over where each piece may end."""
    pieces = [(piece, False) for piece in words | _FILLER_TOKENS] + [(p, True) for p in phrases]
    reached: list[set[bool]] = [set() for _ in range(len(tokens) + 1)]
    reached[0].add(False)
    for at in range(len(tokens)):
        for named in reached[at]:
            for piece, whole in pieces:
                if _occurs(piece, tokens, at):
                    reached[at + len(piece)].add(named or whole)
    return bool(tokens) and True in reached[-1]


def names_fault_class(expected: str, aliases: tuple[str, ...], given: Any) -> bool:
    """Whether `given` names the kind of fault: it holds one accepted phrase whole, and no
    word that none of the phrases has. "bad canary deploy" names a bad deploy, and so does
    "悪いデプロイです"; a list of every kind there is ("n+1 leak retry storm canary ..."), a
    negation ("not a slow query", "N+1 ではない") or a neighbouring kind ("connection leak"
    where "leak" means a buffer's) does not."""
    if given is None:
        return False
    tokens, phrases, words = _said_of([expected, *aliases], given)
    return not _negates(tokens) and _names_whole(tokens, phrases, words)


@cache
def _every_name() -> tuple[str, ...]:
    """Every name of every kind of fault in the catalogue, in both languages."""
    return tuple(
        name
        for fault in catalogue.FAULTS
        for name in (fault.fault_class, *fault.aliases, *fault.aliases_ja)
    )


def _join(tokens: Tokens) -> str:
    """Tokens as a learner wrote them: Japanese without spaces, other words with them."""
    text = ""
    for token in tokens:
        japanese = re.fullmatch(f"[{_JAPANESE}]+", token) is not None  # サー: one, mark kept
        if text and not (japanese and re.fullmatch(f".*[{_JAPANESE}]", text)):
            text += " "
        text += token
    return text


def _unnamed(given: Any, names: list[str]) -> tuple[list[str], bool]:
    """What in `given` is part of no name of any kind of fault (each run of it), and
    whether a negation stands outside the names; read as names, their words, fillers and
    negations, with the fewest tokens left over, then the fewest negations."""
    tokens, phrases, words = _said_of(names, given)
    shown = _read(given)[1]  # as written, for the feedback: "results", not "result"
    pieces = phrases | words | _FILLER_TOKENS | _NEGATION_TOKENS
    # best[end]: (tokens left over, negations) of the best reading of tokens[:end], where
    # its last piece starts, and that piece (None: one token left over).
    best: list[tuple[tuple[int, int], int, Tokens | None]] = [((0, 0), 0, None)]
    best += [((len(tokens) + 1, 0), 0, None)] * len(tokens)
    for at in range(len(tokens)):
        (left, negations), _, _ = best[at]
        options = [((left + 1, negations), at + 1, None)]
        for piece in pieces:
            if _occurs(piece, tokens, at):
                cost = (left, negations + (piece in _NEGATION_TOKENS))
                options.append((cost, at + len(piece), piece))
        for cost, end, piece in options:
            if cost < best[end][0]:
                best[end] = (cost, at, piece)
    over, end = [], len(tokens)
    while end > 0:
        _, start, piece = best[end]
        if piece is None:
            over.insert(0, start)
        end = start
    runs: list[list[str]] = []
    for index, at in enumerate(over):
        if index == 0 or over[index - 1] != at - 1:
            runs.append([])
        runs[-1].append(shown[at])
    return [_join(tuple(run)) for run in runs], best[-1][0][1] > 0


def _fault_class(expected: str, aliases: tuple[str, ...], given: Any) -> FieldGrade:
    names = [expected, *aliases]
    tokens, phrases, words = _said_of(names, "" if given is None else given)
    if not tokens:
        return FieldGrade(
            "fault_class", 0, Text("no kind of fault given", "障害の種類が指定されていません")
        )
    negated = _negates(tokens)
    if not negated and _names_whole(tokens, phrases, words):
        return FieldGrade("fault_class", 1, Text("right kind of fault", "障害の種類は正解です"))
    unnamed, negation_read = _unnamed(given, [*names, *_every_name()])
    if negated or negation_read:
        return FieldGrade(
            "fault_class",
            0,
            Text(
                "a negation says what the fault is not: name the kind it is",
                "否定では答えになりません。障害が何であるかを、その種類の名前で答えてください",
            ),
        )
    if unnamed:
        return FieldGrade(
            "fault_class",
            0,
            Text(
                f"{', '.join(f'“{w}”' for w in unnamed)}: not part of any name for a kind of"
                " fault; give the name alone, in the words the hints use",
                f"{'、'.join(f'「{w}」' for w in unnamed)}は障害の種類の名前に含まれません。"
                "ヒントで使われている言葉で、種類の名前だけを答えてください",
            ),
        )
    return FieldGrade(
        "fault_class",
        0,
        Text("not the kind of fault the traces show", "トレースが示す障害の種類ではありません"),
    )


def parse_count(given: Any) -> float:
    """A learner's count: a finite number, 0 or more; ValueError otherwise (nan, inf, -5)."""
    if isinstance(given, bool):
        raise ValueError(given)
    number = float(given)
    if not math.isfinite(number) or number < 0:
        raise ValueError(given)
    return number


def count_argument(text: str) -> float:
    """`--count` as argparse takes it: refused (exit 2, the option named) unless a count."""
    try:
        return parse_count(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count: {COUNT_FORM.en}") from None


def attribute_argument(text: str) -> dict[str, str]:
    """`--attr KEY=VALUE` as argparse takes it: {KEY: VALUE}; without `=`, a key or a value
    refused (exit 2, the option named)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not {ATTRIBUTE_FORM.en}")
    return {key.strip(): value.strip()}


def _count(
    truth: float | None, tolerance: float, given: Any, earlier: float | None = None
) -> FieldGrade:
    if truth is None:
        return FieldGrade(
            "count",
            0,
            Text(
                "the traces hold no count to compare with yet",
                "比較できる数がまだトレースにありません",
            ),
        )
    if given is None:
        return FieldGrade("count", 0, Text("no count given", "数が指定されていません"))
    try:
        number = parse_count(given)
    except ValueError:
        return FieldGrade(
            "count",
            0,
            Text(
                f"{given!r} is not a count: {COUNT_FORM.en}",
                f"{given!r} は数ではありません。{COUNT_FORM.ja}",
            ),
        )
    # Any value between the earlier count and the latest is what the traces showed at some
    # moment; the distance is to the nearer end of that span.
    low, high = sorted((truth, truth if earlier is None else earlier))
    nearest = min(max(number, low), high)
    error = abs(number - nearest) / max(nearest, 1.0)
    if error <= tolerance + 1e-9:
        return FieldGrade("count", 1, Text("right count", "数は正解です"))
    if error <= 2 * tolerance + 0.1:
        return FieldGrade(
            "count",
            0.5,
            Text(
                "close: count distinct values, over the whole window",
                "惜しいです。期間全体で、異なる値を数えてください",
            ),
        )
    return FieldGrade(
        "count", 0, Text("far from what the traces show", "トレースが示す数とかけ離れています")
    )


def grade(
    key: AnswerKey,
    answer: dict[str, Any],
    count_truth: float | None = None,
    count_earlier: float | None = None,
) -> Grade:
    """Grade `answer` against a lab's (or a drill's) key. `count_truth`: the count the
    traces show now; `count_earlier`: what they showed when the learner may have read it."""
    graders = {
        "service": lambda: _service(key.expected["service"], answer.get("service")),
        "operation": lambda: _exact(
            "operation",
            key.expected["operation"],
            answer.get("operation"),
            Text("operation", "オペレーション"),
        ),
        "version": lambda: _exact(
            "version",
            key.expected["version"],
            answer.get("version"),
            Text("version", "バージョン"),
            _version,
        ),
        "attribute": lambda: _attribute(key.expected["attribute"], answer.get("attribute")),
        "fault_class": lambda: _fault_class(
            key.expected["fault_class"], key.fault_class_aliases, answer.get("fault_class")
        ),
        "count": lambda: _count(
            count_truth, key.count_tolerance, answer.get("count"), count_earlier
        ),
    }
    details = {"count_truth": count_truth, "count_earlier": count_earlier}
    return Grade(tuple(graders[name]() for name in key.fields), details)
