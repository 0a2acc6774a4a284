"""The 74 items of the 要介護認定 基本調査, their official answer scales, and the care levels.

Items are keyed by their official numbers: "1-1-1".."1-1-5" (麻痺等, one per body part),
"1-2-1".."1-2-4" (拘縮), "1-3".."1-13", "2-1".."2-12", "3-1".."3-9", "4-1".."4-15",
"5-1".."5-6" and "6-1".."6-12" for the 12 特別な医療 (section 6 of the survey form:
処置内容 6-1..6-9, 特別な対応 6-10..6-12, received in the last 14 days).
Answer codes are the form's option numbers; code 1 is always the least dependent answer.
The 麻痺/拘縮 body parts (multiple choice on the form) and 特別な医療 are coded 1 ない / 2 ある.
"""

from __future__ import annotations

from dataclasses import dataclass

ABILITY_GRIP = ("つかまらないでできる", "何かにつかまればできる", "できない")
ABILITY_STAND = ("支えなしでできる", "何か支えがあればできる", "できない")
HELP3 = ("介助されていない", "一部介助", "全介助")
HELP4 = ("介助されていない", "見守り等", "一部介助", "全介助")
CAN2 = ("できる", "できない")
FREQ3 = ("ない", "ときどきある", "ある")
PRESENT2 = ("ない", "ある")


@dataclass(frozen=True)
class Item:
    """One survey item: official number, Japanese name, group and answer labels (code 1..k)."""

    code: str
    name: str
    group: int  # 1-5 群, 6 = 特別な医療
    choices: tuple[str, ...]

    @property
    def levels(self) -> int:
        """Number of answer codes."""
        return len(self.choices)

    @property
    def column(self) -> str:
        """Column name in CSV files: 'item_1-7'."""
        return f"item_{self.code}"


GROUPS: dict[int, str] = {1: "第1群 身体機能・起居動作", 2: "第2群 生活機能", 3: "第3群 認知機能",
                          4: "第4群 精神・行動障害", 5: "第5群 社会生活への適応",
                          6: "特別な医療（過去14日間）"}

_SPEC: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    ("1-1-1", "麻痺等の有無（左上肢）", 1, PRESENT2),
    ("1-1-2", "麻痺等の有無（右上肢）", 1, PRESENT2),
    ("1-1-3", "麻痺等の有無（左下肢）", 1, PRESENT2),
    ("1-1-4", "麻痺等の有無（右下肢）", 1, PRESENT2),
    ("1-1-5", "麻痺等の有無（その他）", 1, PRESENT2),
    ("1-2-1", "拘縮の有無（肩関節）", 1, PRESENT2),
    ("1-2-2", "拘縮の有無（股関節）", 1, PRESENT2),
    ("1-2-3", "拘縮の有無（膝関節）", 1, PRESENT2),
    ("1-2-4", "拘縮の有無（その他）", 1, PRESENT2),
    ("1-3", "寝返り", 1, ABILITY_GRIP),
    ("1-4", "起き上がり", 1, ABILITY_GRIP),
    ("1-5", "座位保持", 1, ("できる", "自分の手で支えればできる", "支えてもらえればできる",
                           "できない")),
    ("1-6", "両足での立位保持", 1, ABILITY_STAND),
    ("1-7", "歩行", 1, ABILITY_GRIP),
    ("1-8", "立ち上がり", 1, ABILITY_GRIP),
    ("1-9", "片足での立位", 1, ABILITY_STAND),
    ("1-10", "洗身", 1, (*HELP3, "行っていない")),
    ("1-11", "つめ切り", 1, HELP3),
    ("1-12", "視力", 1, ("普通（日常生活に支障がない）", "約1m離れた視力確認表の図が見える",
                        "目の前に置いた視力確認表の図が見える", "ほとんど見えない",
                        "見えているのか判断不能")),
    ("1-13", "聴力", 1, ("普通", "普通の声がやっと聞き取れる",
                        "かなり大きな声なら何とか聞き取れる", "ほとんど聞えない",
                        "聞えているのか判断不能")),
    ("2-1", "移乗", 2, HELP4),
    ("2-2", "移動", 2, HELP4),
    ("2-3", "えん下", 2, ("できる", "見守り等", "できない")),
    ("2-4", "食事摂取", 2, HELP4),
    ("2-5", "排尿", 2, HELP4),
    ("2-6", "排便", 2, HELP4),
    ("2-7", "口腔清潔", 2, HELP3),
    ("2-8", "洗顔", 2, HELP3),
    ("2-9", "整髪", 2, HELP3),
    ("2-10", "上衣の着脱", 2, HELP4),
    ("2-11", "ズボン等の着脱", 2, HELP4),
    ("2-12", "外出頻度", 2, ("週1回以上", "月1回以上", "月1回未満")),
    ("3-1", "意思の伝達", 3, ("調査対象者が意思を他者に伝達できる", "ときどき伝達できる",
                           "ほとんど伝達できない", "できない")),
    ("3-2", "毎日の日課を理解", 3, CAN2),
    ("3-3", "生年月日や年齢を言う", 3, CAN2),
    ("3-4", "短期記憶", 3, CAN2),
    ("3-5", "自分の名前を言う", 3, CAN2),
    ("3-6", "今の季節を理解する", 3, CAN2),
    ("3-7", "場所の理解", 3, CAN2),
    ("3-8", "常時の徘徊", 3, FREQ3),
    ("3-9", "外出すると戻れない", 3, FREQ3),
    ("4-1", "物を盗られたなどと被害的になる", 4, FREQ3),
    ("4-2", "作話", 4, FREQ3),
    ("4-3", "泣いたり、笑ったりして感情が不安定になる", 4, FREQ3),
    ("4-4", "昼夜の逆転", 4, FREQ3),
    ("4-5", "しつこく同じ話をする", 4, FREQ3),
    ("4-6", "大声をだす", 4, FREQ3),
    ("4-7", "介護に抵抗", 4, FREQ3),
    ("4-8", "「家に帰る」等と言い落ち着きがない", 4, FREQ3),
    ("4-9", "一人で外に出たがり目が離せない", 4, FREQ3),
    ("4-10", "いろいろなものを集めたり、無断でもってくる", 4, FREQ3),
    ("4-11", "物を壊したり、衣類を破いたりする", 4, FREQ3),
    ("4-12", "ひどい物忘れ", 4, FREQ3),
    ("4-13", "意味もなく独り言や独り笑いをする", 4, FREQ3),
    ("4-14", "自分勝手に行動する", 4, FREQ3),
    ("4-15", "話がまとまらず、会話にならない", 4, FREQ3),
    ("5-1", "薬の内服", 5, HELP3),
    ("5-2", "金銭の管理", 5, HELP3),
    ("5-3", "日常の意思決定", 5, ("できる（特別な場合でもできる）", "特別な場合を除いてできる",
                              "日常的に困難", "できない")),
    ("5-4", "集団への不適応", 5, FREQ3),
    ("5-5", "買い物", 5, HELP4),
    ("5-6", "簡単な調理", 5, HELP4),
    ("6-1", "点滴の管理", 6, PRESENT2),
    ("6-2", "中心静脈栄養", 6, PRESENT2),
    ("6-3", "透析", 6, PRESENT2),
    ("6-4", "ストーマ（人工肛門）の処置", 6, PRESENT2),
    ("6-5", "酸素療法", 6, PRESENT2),
    ("6-6", "レスピレーター（人工呼吸器）", 6, PRESENT2),
    ("6-7", "気管切開の処置", 6, PRESENT2),
    ("6-8", "疼痛の看護", 6, PRESENT2),
    ("6-9", "経管栄養", 6, PRESENT2),
    ("6-10", "モニター測定（血圧、心拍、酸素飽和度等）", 6, PRESENT2),
    ("6-11", "じょくそうの処置", 6, PRESENT2),
    ("6-12", "カテーテル（コンドームカテーテル、留置カテーテル、ウロストーマ等）", 6, PRESENT2),
)

# English names (for error messages and the API), by item number.
NAMES_EN: dict[str, str] = {
    "1-1-1": "paralysis (left arm)", "1-1-2": "paralysis (right arm)",
    "1-1-3": "paralysis (left leg)", "1-1-4": "paralysis (right leg)",
    "1-1-5": "paralysis (other)", "1-2-1": "contracture (shoulder)", "1-2-2": "contracture (hip)",
    "1-2-3": "contracture (knee)", "1-2-4": "contracture (other)", "1-3": "rolling over",
    "1-4": "sitting up", "1-5": "keeping a sitting position", "1-6": "standing on both feet",
    "1-7": "walking", "1-8": "standing up", "1-9": "standing on one foot",
    "1-10": "washing the body", "1-11": "nail clipping", "1-12": "eyesight", "1-13": "hearing",
    "2-1": "transfer", "2-2": "moving about", "2-3": "swallowing", "2-4": "eating",
    "2-5": "urination", "2-6": "defecation", "2-7": "oral care", "2-8": "face washing",
    "2-9": "hair care", "2-10": "putting on and taking off a top",
    "2-11": "putting on and taking off trousers", "2-12": "frequency of going out",
    "3-1": "communicating one's wishes", "3-2": "understanding the daily routine",
    "3-3": "saying one's birthday or age", "3-4": "short-term memory", "3-5": "saying one's name",
    "3-6": "knowing the season", "3-7": "knowing where one is", "3-8": "constant wandering",
    "3-9": "unable to return when out", "4-1": "feeling robbed or persecuted",
    "4-2": "confabulation", "4-3": "emotional instability", "4-4": "day-night reversal",
    "4-5": "repeating the same story", "4-6": "shouting", "4-7": "resisting care",
    "4-8": "restlessness (wanting to go home)", "4-9": "wanting to go out alone",
    "4-10": "collecting things", "4-11": "breaking things or tearing clothes",
    "4-12": "severe forgetfulness", "4-13": "talking or laughing to oneself",
    "4-14": "acting selfishly", "4-15": "incoherent talk", "5-1": "taking medicine",
    "5-2": "managing money", "5-3": "daily decision-making", "5-4": "not fitting in groups",
    "5-5": "shopping", "5-6": "simple cooking", "6-1": "IV drip management",
    "6-2": "central venous nutrition", "6-3": "dialysis", "6-4": "stoma care",
    "6-5": "oxygen therapy", "6-6": "respirator", "6-7": "tracheostomy care",
    "6-8": "pain nursing", "6-9": "tube feeding",
    "6-10": "monitoring (blood pressure, heart rate, SpO2)", "6-11": "pressure ulcer care",
    "6-12": "catheter",
}

ITEMS: tuple[Item, ...] = tuple(Item(*s) for s in _SPEC)
ITEM_BY_CODE: dict[str, Item] = {i.code: i for i in ITEMS}
ITEM_CODES: tuple[str, ...] = tuple(i.code for i in ITEMS)
ITEM_COLUMNS: tuple[str, ...] = tuple(i.column for i in ITEMS)

# 障害高齢者の日常生活自立度（寝たきり度） and 認知症高齢者の日常生活自立度, least dependent first.
PHYSICAL_SCALE = ("自立", "J1", "J2", "A1", "A2", "B1", "B2", "C1", "C2")
DEMENTIA_SCALE = ("自立", "I", "IIa", "IIb", "IIIa", "IIIb", "IV", "M")
SCALE_NAMES = {"physical_independence": "障害高齢者の日常生活自立度（寝たきり度）",
               "dementia_independence": "認知症高齢者の日常生活自立度"}

# Care levels in order of need; code 0 (非該当) only appears as an outcome.
LEVELS = ("非該当", "要支援1", "要支援2", "要介護1", "要介護2", "要介護3", "要介護4", "要介護5")
LEVEL_INDEX = {name: i for i, name in enumerate(LEVELS)}
# Outcome after 12 months: a care level, or admission to a facility, or death.
OUTCOMES = (*LEVELS, "施設入所", "死亡")
FACILITY, DEATH = len(LEVELS), len(LEVELS) + 1
# 要介護認定等基準時間 thresholds in minutes/day: 25 / 32 / 50 / 70 / 90 / 110.
TIME_THRESHOLDS = (25.0, 32.0, 50.0, 70.0, 90.0, 110.0)
# 区分支給限度基準額 (units/month) from 2019-10, by LEVELS index.
CAPS_2019_10 = (0, 5032, 10531, 16765, 19705, 27048, 30938, 36217)

CHANGE = ("improve", "maintain", "worsen")
CHANGE_JA = {"improve": "改善", "maintain": "維持", "worsen": "悪化"}
ITEM_CHANGE = ("improve", "same", "worse")
# Group 1-3 items whose 12-month change the deployed system reports (walking, standing up,
# moving about, short-term memory).
KEY_ITEMS = ("1-7", "1-8", "2-2", "3-4")


def form() -> dict:
    """The survey form as JSON for pages: groups, items with choices, scales, levels."""
    return {
        "groups": [{"group": g, "name": name,
                    "items": [{"code": i.code, "name": i.name, "name_en": NAMES_EN[i.code],
                               "choices": [{"code": k + 1, "label": c}
                                           for k, c in enumerate(i.choices)]}
                              for i in ITEMS if i.group == g]}
                   for g, name in GROUPS.items()],
        "scales": {"physical_independence": {"name": SCALE_NAMES["physical_independence"],
                                             "choices": list(PHYSICAL_SCALE)},
                   "dementia_independence": {"name": SCALE_NAMES["dementia_independence"],
                                             "choices": list(DEMENTIA_SCALE)}},
        "care_levels": list(LEVELS[1:]),
        "key_items": [{"code": c, "name": ITEM_BY_CODE[c].name} for c in KEY_ITEMS],
    }
