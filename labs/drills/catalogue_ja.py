"""The fault catalogue's texts that drills show, in Japanese: a `fault:<id>` drill's title
and briefing (its story), the postmortem's root cause (title, kind, mechanism) and action
items (fix, signal), a mitigation's effect. The catalogue (sample_app/faults/catalogue.py)
holds them in English only; a fault missing here is shown in English (a test says so)."""

from __future__ import annotations

from dataclasses import dataclass

from sample_app.faults import catalogue


@dataclass(frozen=True)
class FaultText:
    title: str
    fault_class: str  # one of the names the grading takes for the fault (aliases_ja)
    story: str  # never names the fault: it is a drill's briefing
    mechanism: str
    fix: str
    signal: str  # the first signal's description


JA: dict[str, FaultText] = {
    "null-currency": FaultText(
        title="一つのショップの商品ページが失敗する",
        fault_class="テナントのデータエラー",
        story="サポートから10分間に3件のチケットが転送されてきました。どれも同じショップの顧客"
        "からで、商品ページに「エラーが発生しました」と表示されるという内容です。他のショップは"
        "問題ありません。",
        mechanism="不正な商品インポートで、あるショップの商品の3分の1について products.currency"
        " に NULL が書き込まれました。価格計算は通貨を引こうとして KeyError: None を送出するため、"
        "それらの商品ページ、検索、見積もりは 500 を返します。",
        fix="商品に通貨がないときは、価格計算がショップの通貨にフォールバックします。",
        signal="catalog の商品ページでエラー。一つのテナントだけで起きている",
    ),
    "heavy-user": FaultText(
        title="ある顧客の注文履歴の表示に数秒かかる",
        fault_class="一人のヘビーユーザー",
        story="アカウントマネージャーからエスカレーションです。あるリセラーが「注文履歴」を"
        "開くのにとても時間がかかると言っています。他には誰からも苦情は来ていません。",
        mechanism="注文履歴のクエリから LIMIT が消えました。ほとんどの顧客にとっては数行ですが、"
        "注文の多いアカウント、たとえば約4,500件の注文があるリセラー acme-c00003 は、毎回その"
        "すべてを明細ごと取得します。",
        fix="注文履歴は再びページ単位（1ページ20件）で読み込まれます。",
        signal="注文の最も多いアカウントで注文履歴が遅い（ここでは acme-c00003 を監視）",
    ),
    "n-plus-one": FaultText(
        title="注文履歴が注文ごとにクエリを発行する",
        fault_class="N+1 クエリ",
        story="orders チームのダッシュボードによると、今朝のリリース以降、トラフィックは"
        "変わらないのにデータベースの負荷が2倍になっています。",
        mechanism="注文履歴が明細を先読み（selectinload）しなくなりました。各注文の明細は"
        "遅延ロードされ、ページ内の注文1件ごとに SELECT order_items が1回発行されます。",
        fix="明細はページ全体で1回の追加クエリで読み込まれます（selectinload）。",
        signal="一つの注文履歴のトレースに、注文ごとの SELECT order_items が含まれる",
    ),
    "missing-index": FaultText(
        title="スタッフ向けの売上レポートが遅くなった",
        fault_class="インデックスの欠落 / スロークエリ",
        story="ショップのスタッフによると、以前はすぐに開いた売上レポートが、今は一瞬固まる"
        "ようになりました。昨夜のスキーマのマイグレーションの後からです。",
        mechanism="マイグレーションで ix_orders_shop_created が削除されました。直近30日の"
        "レポートのクエリは、一つのショップの分だけでなく、200,000件の注文すべてをスキャンする"
        "ようになりました。",
        fix="インデックスを作り直します。",
        signal="売上レポートの SELECT orders スパンが、小さなショップも含めてすべての"
        "ショップで遅い",
    ),
    "pool-exhaustion": FaultText(
        title="チェックアウトがデータベース待ちでタイムアウトする",
        fault_class="コネクションプールの枯渇",
        story="チェックアウトのエラーアラートが発火しています。あるショップがフラッシュセールを"
        "始めた数分後にエラーが出始め、今ではすべてのショップのチェックアウトが失敗しています。",
        mechanism="チェックアウトに追加された監査処理が、一つのショップの注文でコネクションを"
        "取得したまま返しません。プール（5コネクション）が空になり、以後はすべてのショップの"
        "すべてのリクエストが pool_timeout（2秒）待った末に QueuePool の TimeoutError で失敗"
        "します。",
        fix="監査処理がコネクションを返すようにします。",
        signal="orders のリクエストが約2秒後に失敗する。すべてのテナントで起きている",
    ),
    "slow-provider": FaultText(
        title="チェックアウトが遅い",
        fault_class="下流のレイテンシ",
        story="この1時間でコンバージョンが20%落ちています。チェックアウトボタンを押すと、確認"
        "画面が出るまで1秒以上待たされます。",
        mechanism="決済プロバイダーのプライマリリージョンの応答が、普段より1.2秒遅くなっています。",
        fix="決済はプロバイダーのセカンダリリージョンに送ります。",
        signal="チェックアウトのトレースの大半を payments のスパンが占める",
    ),
    "retry-storm": FaultText(
        title="payments へのトラフィックが4倍になる",
        fault_class="タイムアウトの不一致 / リトライストーム",
        story="決済プロバイダーのアカウントマネージャーから電話です。1時間前からリクエスト量が"
        "4倍になり、課金の多くが重複していたので拒否せざるを得なかったそうです。",
        mechanism="設定変更で orders の決済タイムアウトが、プロバイダーの通常のレイテンシより"
        "短い 80 ms になり、即時リトライが3回付きました。ほとんどのチェックアウトが4回試行し、"
        "それでも多くが失敗します。",
        fix="タイムアウトを2秒にし、リトライはバックオフ付きで1回にします。",
        signal="一つのチェックアウトのトレースに、payments への POST 呼び出しが複数含まれる",
    ),
    "dependency-down": FaultText(
        title="すべてのチェックアウトが失敗する",
        fault_class="依存先に到達不能",
        story="チェックアウトのエラーアラートが100%で発火しています。商品の閲覧は動いています。",
        mechanism="orders が、廃止済みの古い決済エンドポイントを指したまま再デプロイされました。"
        "課金の試行はすべて connection refused になります。",
        fix="orders が現在の決済エンドポイントを使うようにします。",
        signal="チェックアウトが payments の呼び出しで接続エラーになり失敗する",
    ),
    "bad-canary": FaultText(
        title="デプロイ以降、一部のショップの商品ページが失敗する",
        fault_class="悪いデプロイ（カナリア）",
        story="20分前に catalog 1.8.0 がカナリアとしてデプロイされました。それ以降、全体の"
        "エラー率が少し上がりましたが、一部のショップでは他よりずっと多くのエラーが出ています。",
        mechanism="gateway が catalog へのトラフィックの40%をカナリアに送っています。1.8.0 の"
        "新しい価格フォーマッターには JPY のエントリがなく、円建ての価格すべてで KeyError を"
        "送出します。",
        fix="ロールバックします。gateway はカナリアにトラフィックを送らなくなります。",
        signal="円建てのショップの catalog 商品ページでエラー。すべて service.version 1.8.0 から",
    ),
    "creeping-buffer": FaultText(
        title="商品ページが刻々と遅くなる",
        fault_class="徐々に進む劣化",
        story="誰も何も変えていないのに、前回の再起動以降、商品ページのレイテンシのグラフが"
        "着実に上がり続けています。",
        mechanism="「trending」を支える最近閲覧したバッファには、閲覧のたびに要素が追加され、"
        "切り詰められることがありません。trending はリクエストごとにバッファ全体から計算し直され"
        "ます。",
        fix="バッファは直近1,000件だけを保持します。",
        signal="catalog の商品ページのレイテンシが時間とともに伸びる。SQL ではない",
    ),
    "cache-stampede": FaultText(
        title="catalog のデータベースに負荷が集中する",
        fault_class="キャッシュ障害 / スタンピード",
        story="catalog データベースの CPU アラームが発火しています。商品ページが遅くなって"
        "いて、最も大きなショップで特に遅くなっています。",
        mechanism="設定変更で評価のキャッシュの TTL が 0 になりました。商品ページのたびに、"
        "ショップの評価テーブルをすべてのレビューから計算し直します。",
        fix="TTL を60秒にし、再計算は一度に一つだけにします。",
        signal="すべての商品ページでレビューに対する評価の集計が実行される",
    ),
    "empty-search": FaultText(
        title="一つのショップで検索結果が何も出ない",
        fault_class="サイレント障害",
        story="あるショップのオーナーから連絡です。「昨日から検索経由の売上がゼロになりました」。"
        "アラートは発火しておらず、すべてのリクエストが 200 を返しています。",
        mechanism="リファクタリングで、検索がショップのロケールではなくプラットフォームの既定の"
        "ロケール（en-US）で絞り込むようになりました。ショップの言語での検索は 200 を返し、結果は"
        "空です。",
        fix="検索は再びショップのロケールで絞り込みます。",
        signal="一つのテナントのすべての検索で app.search.results = 0。ステータスは OK",
    ),
    "counter-lock": FaultText(
        title="一つのショップのチェックアウトが止まる",
        fault_class="ロック競合",
        story="新しい請求書のバッチジョブが有効になってから、チェックアウトにときどき2秒"
        "かかると、あるショップから報告がありました。",
        mechanism="請求書のバッチジョブは、最初にショップのカウンター行を更新し、同じ"
        "トランザクションの中で1.5秒処理を続けます。チェックアウトも同じ行を更新するので待たされ"
        "ます。Postgres ではそのショップだけが待ちます（行ロック）が、SQLite ではすべての書き込み"
        "が待ちます（データベースのロック）。",
        fix="ジョブはカウンターの更新をすぐにコミットし、処理はトランザクションの外で行います。",
        signal="チェックアウトの UPDATE shop_counters スパンが待たされる",
    ),
}


def fault_text(fault: catalogue.Fault, language: str = "en") -> FaultText:
    """The fault's texts in `language`: the catalogue's own in English."""
    if language == "ja" and fault.id in JA:
        return JA[fault.id]
    return FaultText(
        title=fault.title,
        fault_class=fault.fault_class,
        story=fault.story,
        mechanism=fault.mechanism,
        fix=fault.fix,
        signal=fault.signals[0].description,
    )
