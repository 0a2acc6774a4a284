"""The demo's clinical code set, drawn from the national masters (支払基金 基本マスター).

Every 診療行為 and 医薬品 below is a real code of the committed masters table
(models/claim_screening/masters/table, see its DATA_CARD.md); its name, 点数 / 薬価, 上限回数
(算定回数上限) and age conditions are read from the masters when this module is imported, so they
follow a rebuilt table. Diagnoses are ICD-10 categories (what the claim frame carries); each is
written to UKE as the 傷病名コード `DISEASE_CODES` picks from the 傷病名マスター, and which of them
特定疾患療養管理料 accepts is the b master's 特定疾患等対象区分 (05) of that code.

What the masters do not carry is curated here and marked as such: which diagnoses a procedure
or drug is for (適応), sex conditions (no master column has them: マスターファイル仕様説明書
令和6年度版, 医科電子点数表), 3-monthly limits (縦覧: ＰＳＡ's is in the 算定回数テーブル only
with a 特例条件), four 併算定不可 pairs whose tables (02包括, 03-1背反 1日につき) are not in
the copy the masters table is built from (the 同一月内 背反テーブル is applied by
rules.MasterExclusions), approved daily doses and days (添付文書), and prevalences. The five
歯科 procedures are invented codes: the 歯科診療行為マスター is not in the table
(`Procedure.from_master` is False for them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from models.claim_screening import masters as M


@dataclass(frozen=True)
class Diagnosis:
    """An ICD-10 diagnosis (3-character category) and who it can apply to."""

    code: str
    name: str
    chronic: bool = False
    injury: bool = False
    sex: int = 0  # 0 any, 1 male, 2 female (レセプト convention)
    min_age: int = 0
    max_age: int = 120
    dental: bool = False
    # chronic: share of NHI insured aged 40+ with it; acute: relative weight among acute codes
    prevalence: float = 0.0


@dataclass(frozen=True)
class Procedure:
    """A 診療行為 with its points, limits and indications."""

    code: str
    name: str
    points: int
    max_per_month: int = 99  # 上限回数 of the s master (99: none)
    every_months: int = 1  # 3 means at most once in any 3 consecutive months (縦覧)
    indications: tuple[str, ...] = ()  # empty: any diagnosis
    sex: int = 0
    min_age: int = 0
    max_age: int = 120  # inclusive (the master's 上限年齢 is "under", one more)
    dental: bool = False
    inpatient: bool = False
    section: str = ""  # 区分 letter of the s master (A 基本診療料 .. N 病理)
    from_master: bool = True


@dataclass(frozen=True)
class Drug:
    """A 医薬品 with points per unit and day (薬価 / 10) and approved limits."""

    code: str
    name: str
    points_per_day: float  # per unit of the daily quantity
    max_daily_qty: int
    max_days: int
    indications: tuple[str, ...] = field(default=())
    sex: int = 0
    min_age: int = 0


# -- the codes the generator's clinical logic names (s master) -----------------------------
SHOSHIN = "111000110"  # 初診料
SAISHIN = "112007410"  # 再診料
INFANT_ADDON = "112000970"  # 乳幼児加算（再診）: 上限年齢 06 (under 6) in the master
TOKUTEI = "113001810"  # 特定疾患療養管理料（診療所）: 上限回数 2
SEIKATSU = "113707110"  # 生活習慣病管理料２: 上限回数 1
CBC = "160008010"  # 末梢血液一般検査
HBA1C = "160010010"  # ＨｂＡ１ｃ
LDL = "160167250"  # ＬＤＬ－コレステロール
PSA = "160037510"  # ＰＳＡ: 上限回数 1
ECG = "160068410"  # ＥＣＧ１２
ECHO = "160072210"  # 超音波検査（断層撮影法）（胸腹部）
BLOOD_JUDGEMENT = "160061810"  # 血液学的検査判断料: 上限回数 1
XRAY = "170027910"  # 単純撮影（デジタル撮影）
CT = "170011810"  # ＣＴ撮影（１６列以上６４列未満マルチスライス型機器）
REHAB = "180755710"  # 運動器リハビリテーション料（１）（理学療法士による場合）
SHOEN = "140029610"  # 消炎鎮痛等処置（マッサージ等の手技による療法）
WOUND = "150001010"  # 創傷処理（筋肉、臓器に達しない）（長径５ｃｍ未満）
REDUCTION_FOREARM = "150016810"  # 骨折非観血的整復術（前腕）
REDUCTION_LEG = "150016910"  # 骨折非観血的整復術（下腿）
CATARACT = "150253010"  # 水晶体再建術（眼内レンズを挿入）（その他）
PSYCHOTHERAPY = "180067410"  # 通院精神療法（３０分以上）（１以外）
FUNDUS = "160081010"  # 精密眼底検査（片）
WARD = "190117710"  # 急性期一般入院料１
# invented 歯科 codes (no 歯科診療行為マスター in the table)
DENTAL_FIRST, DENTAL_RE, PERIO, CARIES, FILLING = (
    "302000110", "302000210", "309000110", "309002310", "313000110")
# 医薬品 the generator names
LOXOPROFEN = "620098902"  # ロキソプロフェンＮａ錠６０ｍｇ「ＹＤ」
ACETAMINOPHEN = "620002636"  # アセトアミノフェン錠２００ｍｇ「ＮＰ」

INJURY = ("S13", "S52", "S82", "T14")
LIFESTYLE = ("I10", "E11", "E78")  # 生活習慣病管理料's 主病 (高血圧症, 糖尿病, 脂質異常症)

DIAGNOSES: tuple[Diagnosis, ...] = (
    Diagnosis("I10", "本態性高血圧症", chronic=True, min_age=20, prevalence=0.30),
    Diagnosis("E11", "2型糖尿病", chronic=True, min_age=20, prevalence=0.12),
    Diagnosis("E78", "脂質異常症", chronic=True, min_age=20, prevalence=0.20),
    Diagnosis("K21", "胃食道逆流症", chronic=True, prevalence=0.06),
    Diagnosis("M17", "膝関節症", chronic=True, min_age=40, prevalence=0.08),
    Diagnosis("N40", "前立腺肥大症", chronic=True, sex=1, min_age=45, prevalence=0.08),
    Diagnosis("N18", "慢性腎臓病", chronic=True, min_age=30, prevalence=0.04),
    Diagnosis("J45", "喘息", chronic=True, prevalence=0.05),
    Diagnosis("F32", "うつ病エピソード", chronic=True, min_age=12, prevalence=0.03),
    Diagnosis("F03", "認知症", chronic=True, min_age=60, prevalence=0.03),
    Diagnosis("G47", "睡眠障害", chronic=True, prevalence=0.05),
    Diagnosis("I48", "心房細動", chronic=True, min_age=40, prevalence=0.03),
    Diagnosis("I50", "心不全", chronic=True, min_age=40, prevalence=0.02),
    Diagnosis("E03", "甲状腺機能低下症", chronic=True, prevalence=0.02),
    Diagnosis("C16", "胃の悪性新生物", chronic=True, min_age=35, prevalence=0.006),
    Diagnosis("C34", "気管支及び肺の悪性新生物", chronic=True, min_age=35, prevalence=0.006),
    Diagnosis("C50", "乳房の悪性新生物", chronic=True, sex=2, min_age=25, prevalence=0.008),
    Diagnosis("H25", "老人性白内障", chronic=True, min_age=50, prevalence=0.05),
    Diagnosis("L20", "アトピー性皮膚炎", chronic=True, max_age=60, prevalence=0.03),
    Diagnosis("J06", "急性上気道炎", prevalence=5.0),
    Diagnosis("J20", "急性気管支炎", prevalence=1.5),
    Diagnosis("J18", "肺炎", prevalence=0.5),
    Diagnosis("A09", "感染性胃腸炎", prevalence=1.2),
    Diagnosis("M54", "腰痛症", prevalence=2.0),
    Diagnosis("K29", "胃炎", prevalence=1.2),
    Diagnosis("D50", "鉄欠乏性貧血", prevalence=0.4),
    Diagnosis("H52", "屈折異常", prevalence=0.6),
    Diagnosis("O21", "妊娠悪阻", sex=2, min_age=15, max_age=50, prevalence=0.15),
    Diagnosis("S13", "頸部の脱臼、捻挫及びストレイン", injury=True, prevalence=0.5),
    Diagnosis("S52", "前腕の骨折", injury=True, prevalence=0.3),
    Diagnosis("S82", "下腿の骨折", injury=True, prevalence=0.2),
    Diagnosis("T14", "部位不明の損傷", injury=True, prevalence=0.4),
    Diagnosis("K02", "う蝕", dental=True, prevalence=3.0),
    Diagnosis("K05", "歯肉炎及び歯周疾患", dental=True, prevalence=3.0),
)

DIAGNOSIS_BY_CODE = {d.code: d for d in DIAGNOSES}


class MastersMissing(RuntimeError):
    """The masters table lacks a code the demo's clinical set names (rebuild it)."""


def _masters() -> M.Masters:
    masters = M.in_use()
    for kind in ("s", "y", "b"):
        if not masters.has(kind):
            raise MastersMissing(f"the claim masters table has no {M.KIND_NAMES[kind]} ({kind}); "
                                 "build it with `kyodo claims masters build --source DIR`")
    return masters


def _row(table: pd.DataFrame, code: str, kind: str) -> pd.Series:
    rows = table.loc[table["code"] == code]
    if rows.empty:
        raise MastersMissing(f"{M.KIND_NAMES[kind]} lacks {code}: rebuild the masters table "
                             "from the 支払基金 files (see masters/DATA_CARD.md)")
    return rows.iloc[0]


def age_limits(min_years: object, max_years: object) -> tuple[int, int]:
    """(min_age, max_age) inclusive in full years from the s master's 下限年齢 (以上) and 上限年齢
    (未満) in years; a missing value (00, or a day/month code) sets no limit."""
    low = 0 if pd.isna(min_years) else int(min_years)  # type: ignore[call-overload]
    high = 120 if pd.isna(max_years) else int(max_years) - 1  # type: ignore[call-overload]
    return low, high


def _procedure(s: pd.DataFrame, code: str, indications: tuple[str, ...] = (), *,
               every_months: int = 1, sex: int = 0, inpatient: bool = False) -> Procedure:
    """A procedure whose name, points, 上限回数 and ages come from the s master."""
    row = _row(s, code, "s")
    low, high = age_limits(row["min_age_years"], row["max_age_years"])
    limit = int(row["max_count"]) if row["max_count"] > 0 else 99
    return Procedure(code, str(row["name"]), round(float(row["points"])), limit, every_months,
                     indications, sex, low, high, inpatient=inpatient, section=str(row["section"]))


def _drug(y: pd.DataFrame, code: str, max_daily_qty: int, max_days: int,
          indications: tuple[str, ...], *, unit_share: float = 1.0, sex: int = 0,
          min_age: int = 0) -> Drug:
    """A drug whose name and 薬価 (yen per unit) come from the y master; unit_share is the share
    of a unit one daily quantity uses (a pen or a bottle lasts several days)."""
    row = _row(y, code, "y")
    return Drug(code, str(row["name"]), float(row["price"]) * unit_share / 10, max_daily_qty,
                max_days, indications, sex, min_age)


def _specific_diseases(masters: M.Masters, book: dict[str, str]) -> tuple[str, ...]:
    """Categories whose 傷病名コード the b master marks 特定疾患療養管理料 対象 (特定疾患等対象区分
    05): since the 2024 改定 that excludes 高血圧症, 糖尿病 and 脂質異常症 (生活習慣病管理料)."""
    b = masters.tables["b"].set_index("code")["specific_disease"]
    return tuple(c for c, code in book.items() if b.get(code) == "05")


def _tables() -> tuple[tuple[Procedure, ...], tuple[Drug, ...], dict[str, str]]:
    masters = _masters()
    s, y = masters.tables["s"], masters.tables["y"]
    book = masters.disease_codes({d.code: d.name for d in DIAGNOSES})
    missing = [d.code for d in DIAGNOSES if d.code not in book]
    if missing:
        raise MastersMissing(f"傷病名マスター has no current code for ICD-10 {missing}")
    tokutei = _specific_diseases(masters, book)
    p = _procedure
    procedures = (
        p(s, SHOSHIN), p(s, SAISHIN), p(s, INFANT_ADDON),
        p(s, TOKUTEI, tokutei), p(s, SEIKATSU, LIFESTYLE),
        p(s, CBC), p(s, BLOOD_JUDGEMENT),
        p(s, HBA1C, ("E11",)), p(s, LDL, ("E78", "E11")),
        p(s, PSA, ("N40",), every_months=3, sex=1),
        p(s, ECG, ("I48", "I50", "I10")),
        p(s, ECHO, ("O21", "K21", "I50", "N18", "C16", "C50"), every_months=3),
        p(s, XRAY, ("J18", "J20", "C34", "I50", "J45")),
        p(s, CT, ("J18", "C16", "C34", "C50", "S82", "S52", "S13", "T14")),
        p(s, REHAB, ("M54", "M17", "S13", "S52", "S82")),
        p(s, SHOEN, ("M54", "M17", "S13", "T14")),
        p(s, WOUND, ("T14", "S52", "S82")),
        p(s, REDUCTION_FOREARM, ("S52",)), p(s, REDUCTION_LEG, ("S82",)),
        p(s, CATARACT, ("H25",)),
        p(s, PSYCHOTHERAPY, ("F32", "G47", "F03")),
        p(s, FUNDUS, ("H25", "E11", "H52")),
        p(s, WARD, inpatient=True),
        Procedure(DENTAL_FIRST, "歯科初診料", 267, max_per_month=1, dental=True,
                  from_master=False),
        Procedure(DENTAL_RE, "歯科再診料", 58, max_per_month=4, dental=True, from_master=False),
        Procedure(PERIO, "歯周基本治療", 200, max_per_month=2, indications=("K05",), dental=True,
                  from_master=False),
        Procedure(CARIES, "う蝕処置", 18, max_per_month=8, indications=("K02",), dental=True,
                  from_master=False),
        Procedure(FILLING, "充填(レジン)", 160, max_per_month=8, indications=("K02",),
                  dental=True, from_master=False),
    )
    d = _drug
    drugs = (
        d(y, "620007818", 2, 90, ("I10",)),  # アムロジピンＯＤ錠５ｍｇ「トーワ」
        d(y, "622421201", 4, 90, ("E11",)),  # メトホルミン塩酸塩錠５００ｍｇＭＴ「ＴＥ」
        # インスリン グラルギンＢＳ注ミリオペン 300単位: about 20 単位 a day
        d(y, "622411001", 1, 30, ("E11",), unit_share=1 / 15),
        d(y, "622537301", 2, 90, ("E78",)),  # ロスバスタチン錠２．５ｍｇ「杏林」
        d(y, "620007127", 2, 60, ("K21", "K29")),  # ランソプラゾールカプセル１５ｍｇ「トーワ」
        d(y, LOXOPROFEN, 3, 30, ("M54", "M17", "S13", "S52", "S82", "T14", "J06", "K05",
                                 "K02")),
        d(y, ACETAMINOPHEN, 8, 14, ("J06", "J20", "M54", "A09")),
        d(y, "620003928", 2, 14, ("J18", "J20", "J06")),  # クラリスロマイシン錠２００ｍｇ
        d(y, "622366001", 1, 14, ("J18", "J20")),  # レボフロキサシン錠５００ｍｇ「杏林」
        d(y, "622510801", 1, 90, ("J45",)),  # モンテルカスト錠１０ｍｇ「ＹＤ」
        d(y, "621686201", 1, 90, ("N40",), sex=1),  # タムスロシン塩酸塩カプセル０．２ｍｇ
        d(y, "622092201", 2, 90, ("F03",), min_age=40),  # ドネペジル塩酸塩錠５ｍｇ「アメル」
        d(y, "622920301", 2, 30, ("F32",)),  # エスシタロプラム錠１０ｍｇ「明治」
        d(y, "622134101", 2, 30, ("G47",)),  # ゾルピデム酒石酸塩錠５ｍｇ「明治」
        d(y, "622225001", 2, 90, ("I48",)),  # エリキュース錠５ｍｇ
        d(y, "620004042", 4, 90, ("I50", "N18")),  # フロセミド錠２０ｍｇ「ＮＰ」
        d(y, "620730201", 4, 60, ("D50",)),  # クエン酸第一鉄Ｎａ錠５０ｍｇ「サワイ」
        d(y, "612430006", 4, 90, ("E03",)),  # レボチロキシンナトリウム５０μｇ錠
        d(y, "620915501", 2, 28, ("C16",)),  # ティーエスワン配合カプセルＴ２０
        d(y, "622472101", 1, 28, ("C34",)),  # タグリッソ錠８０ｍｇ
        d(y, "622053001", 1, 90, ("C50",)),  # タモキシフェン錠２０ｍｇ「サワイ」
        # ヒアルロン酸Ｎａ点眼液０．１％ 5 mL: a bottle lasts about 10 days
        d(y, "621467301", 1, 30, ("H25", "H52"), unit_share=0.1),
        # ビオフェルミン配合散 (g): 3 g a day at most
        d(y, "620420001", 3, 14, ("A09",)),
        d(y, "622869901", 1, 14, ("E11",)),  # ツイミーグ錠５００ｍｇ (a newer diabetes drug)
    )
    return procedures, drugs, book


PROCEDURES, DRUGS, DISEASE_CODES = _tables()
PROCEDURE_BY_CODE = {p.code: p for p in PROCEDURES}
DRUG_BY_CODE = {d.code: d for d in DRUGS}

# 併算定不可: pairs that cannot be billed in the same claim; the second is the one disallowed.
# Curated: 生活習慣病管理料 ⊃ 特定疾患療養管理料 is a 包括 relation (02包括テーブル), 初診料/再診料
# and 運動器リハ/消炎鎮痛等処置 same-day ones (03-1背反テーブル1), neither in the masters' copy;
# the 歯科 codes are invented. rules.MasterExclusions adds the master's 同一月内 relations.
EXCLUSIVE_PAIRS: tuple[tuple[str, str], ...] = (
    (SEIKATSU, TOKUTEI),  # 生活習慣病管理料 includes 特定疾患療養管理料
    (SHOSHIN, SAISHIN),  # 初診料 and 再診料 in the same claim
    (DENTAL_FIRST, DENTAL_RE),  # 歯科初診料 and 歯科再診料
    (REHAB, SHOEN),  # 疾患別リハビリテーション料 on the day includes 消炎鎮痛等処置
)

CLAIM_TYPES = ("医科入院", "医科入院外", "歯科", "調剤")
LINE_KINDS = ("diagnosis", "procedure", "drug")


def item_name(code: str) -> str:
    """Japanese name of any code in the tables, or the code itself when unknown."""
    for table in (DIAGNOSIS_BY_CODE, PROCEDURE_BY_CODE, DRUG_BY_CODE):
        if code in table:
            return table[code].name
    return code
