"""Synthetic code tables shaped like the national ones (ICD-10, 診療行為コード, 医薬品コード)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    max_per_month: int = 99
    every_months: int = 1  # 3 means at most once in any 3 consecutive months (縦覧)
    indications: tuple[str, ...] = ()  # empty: any diagnosis
    sex: int = 0
    min_age: int = 0
    max_age: int = 120
    dental: bool = False
    inpatient: bool = False


@dataclass(frozen=True)
class Drug:
    """A 医薬品 with points per daily dose and approved limits."""

    code: str
    name: str
    points_per_day: float
    max_daily_qty: int
    max_days: int
    indications: tuple[str, ...] = field(default=())
    sex: int = 0
    min_age: int = 0


INJURY = ("S13", "S52", "S82", "T14")

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

PROCEDURES: tuple[Procedure, ...] = (
    Procedure("111000110", "初診料", 291, max_per_month=1),
    Procedure("112007410", "再診料", 75, max_per_month=4),
    Procedure("113001810", "特定疾患療養管理料", 225, max_per_month=2,
              indications=("I10", "E11", "E78", "K21", "J45", "I48", "I50", "E03", "C16", "C34")),
    Procedure("113009010", "生活習慣病管理料", 333, max_per_month=1,
              indications=("I10", "E11", "E78")),
    Procedure("160008010", "末梢血液一般検査", 21, max_per_month=2),
    Procedure("160062110", "HbA1c", 49, max_per_month=1, indications=("E11",)),
    Procedure("160023410", "LDLコレステロール", 18, max_per_month=1, indications=("E78", "E11")),
    Procedure("160100410", "前立腺特異抗原(PSA)", 124, max_per_month=1, every_months=3,
              indications=("N40",), sex=1),
    Procedure("160095710", "心電図検査", 130, max_per_month=1, indications=("I48", "I50", "I10")),
    Procedure("160060010", "超音波検査", 530, max_per_month=1, every_months=3,
              indications=("O21", "K21", "I50", "N18", "C16", "C50")),
    Procedure("170011810", "胸部単純X線撮影", 210, max_per_month=2,
              indications=("J18", "J20", "C34", "I50", "J45")),
    Procedure("170012110", "CT撮影", 1020, max_per_month=1,
              indications=("J18", "C16", "C34", "C50", "S82", "S52", "S13", "T14")),
    Procedure("180019310", "運動器リハビリテーション料", 185, max_per_month=13,
              indications=("M54", "M17", "S13", "S52", "S82")),
    Procedure("180000110", "消炎鎮痛等処置", 35, max_per_month=31,
              indications=("M54", "M17", "S13", "T14")),
    Procedure("150000110", "創傷処理", 530, max_per_month=2, indications=("T14", "S52", "S82")),
    Procedure("150073510", "骨折非観血的整復術", 1780, max_per_month=1,
              indications=("S52", "S82")),
    Procedure("150285010", "水晶体再建術", 12100, max_per_month=2, indications=("H25",)),
    Procedure("180018610", "通院精神療法", 330, max_per_month=2,
              indications=("F32", "G47", "F03")),
    Procedure("160168050", "眼底検査", 56, max_per_month=1, indications=("H25", "E11", "H52")),
    Procedure("112011010", "乳幼児加算", 38, max_per_month=4, max_age=5),
    Procedure("190117710", "急性期一般入院料", 1650, max_per_month=31, inpatient=True),
    Procedure("302000110", "歯科初診料", 267, max_per_month=1, dental=True),
    Procedure("302000210", "歯科再診料", 58, max_per_month=4, dental=True),
    Procedure("309000110", "歯周基本治療", 200, max_per_month=2,
              indications=("K05",), dental=True),
    Procedure("309002310", "う蝕処置", 18, max_per_month=8, indications=("K02",), dental=True),
    Procedure("313000110", "充填(レジン)", 160, max_per_month=8,
              indications=("K02",), dental=True),
)

DRUGS: tuple[Drug, ...] = (
    Drug("620004312", "アムロジピン錠5mg", 1.0, 2, 90, ("I10",)),
    Drug("621903201", "メトホルミン錠500mg", 1.5, 4, 90, ("E11",)),
    Drug("622224501", "インスリン グラルギン注", 55.0, 1, 30, ("E11",)),
    Drug("621973301", "ロスバスタチン錠2.5mg", 1.5, 2, 90, ("E78",)),
    Drug("620008601", "ランソプラゾール錠15mg", 2.5, 2, 60, ("K21", "K29")),
    Drug("620098801", "ロキソプロフェン錠60mg", 1.0, 3, 30, ("M54", "M17", "S13", "S52", "S82",
                                                       "T14", "J06", "K05", "K02")),
    Drug("620160501", "アセトアミノフェン錠200mg", 0.6, 8, 14, ("J06", "J20", "M54", "A09")),
    Drug("620007801", "クラリスロマイシン錠200mg", 3.5, 2, 14, ("J18", "J20", "J06")),
    Drug("622095901", "レボフロキサシン錠500mg", 12.0, 1, 14, ("J18", "J20")),
    Drug("621433001", "モンテルカスト錠10mg", 7.0, 1, 90, ("J45",)),
    Drug("620010101", "タムスロシンOD錠0.2mg", 3.0, 1, 90, ("N40",), sex=1),
    Drug("621971701", "ドネペジル錠5mg", 8.0, 2, 90, ("F03",), min_age=40),
    Drug("622083201", "エスシタロプラム錠10mg", 10.0, 2, 30, ("F32",)),
    Drug("620004501", "ゾルピデム錠5mg", 1.5, 2, 30, ("G47",)),
    Drug("622355601", "アピキサバン錠5mg", 25.0, 2, 90, ("I48",)),
    Drug("620001501", "フロセミド錠20mg", 1.0, 4, 90, ("I50", "N18")),
    Drug("620004005", "クエン酸第一鉄錠50mg", 1.0, 4, 60, ("D50",)),
    Drug("620006801", "レボチロキシン錠50μg", 1.0, 4, 90, ("E03",)),
    Drug("622131001", "テガフール配合カプセル", 180.0, 2, 28, ("C16",)),
    Drug("622600101", "オシメルチニブ錠80mg", 2300.0, 1, 28, ("C34",)),
    Drug("620002901", "タモキシフェン錠20mg", 10.0, 1, 90, ("C50",)),
    Drug("620009901", "ヒアルロン酸点眼液", 6.0, 1, 30, ("H25", "H52")),
    Drug("620003301", "ベタメタゾン軟膏", 4.0, 1, 30, ("L20",)),
    Drug("620005501", "ビフィズス菌製剤", 0.6, 3, 14, ("A09",)),
    Drug("622777701", "新規糖尿病薬(新薬)", 28.0, 1, 14, ("E11",)),
)

DIAGNOSIS_BY_CODE = {d.code: d for d in DIAGNOSES}
PROCEDURE_BY_CODE = {p.code: p for p in PROCEDURES}
DRUG_BY_CODE = {d.code: d for d in DRUGS}

# 併算定不可: pairs that cannot be billed in the same claim; the second is the one disallowed.
EXCLUSIVE_PAIRS: tuple[tuple[str, str], ...] = (
    ("113009010", "113001810"),  # 生活習慣病管理料 includes 特定疾患療養管理料
    ("111000110", "112007410"),  # 初診料 and 再診料 in the same claim
    ("302000110", "302000210"),  # 歯科初診料 and 歯科再診料
    ("180019310", "180000110"),  # rehab includes 消炎鎮痛等処置 on the same day
)

CLAIM_TYPES = ("医科入院", "医科入院外", "歯科", "調剤")
LINE_KINDS = ("diagnosis", "procedure", "drug")


def item_name(code: str) -> str:
    """Japanese name of any code in the tables, or the code itself when unknown."""
    for table in (DIAGNOSIS_BY_CODE, PROCEDURE_BY_CODE, DRUG_BY_CODE):
        if code in table:
            return table[code].name
    return code
