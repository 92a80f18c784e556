"""Seeded generator of synthetic Chinese inpatient records with labelled, injected defects.

Each :class:`SyntheticRecord` is one stay in one of several departments (呼吸内科, 心内科,
神经内科, 内分泌科, 消化内科, 普外科, 骨科, 妇科, 泌尿外科), written in one of several house
styles (date format, heading punctuation, signature style, UTF-8 or GBK). A clean record
follows every rule of the standard; an injected record carries one or two deliberate
defects whose categories are its ground-truth ``labels``. Nothing here is real patient data.

The generator is deterministic for a given seed (``random.Random``), so corpora and
benchmarks are reproducible.

References
----------
国家卫生部《病历书写基本规范》(卫医政发〔2010〕11号) 第十八—二十七条 (the structure and the
time limits the clean records obey); DESIGN.md §3 (defect categories used as labels).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# Case templates

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "秀兰",
    "志强",
    "海燕",
    "国庆",
]

CASES: list[dict[str, Any]] = [
    {
        "dept": "呼吸内科",
        "sex": None,
        "age": (45, 85),
        "symptom": "咳嗽、咳痰伴发热",
        "unit": "天",
        "n": (2, 7),
        "hpi": "患者{n}{unit}前受凉后出现咳嗽,咳黄色黏痰,伴发热,体温最高{tmax}℃,无胸痛、咯血。自服感冒药效果不佳,门诊查胸部CT示{side}下肺斑片状渗出影,拟“社区获得性肺炎”收入我科。",
        "exam": "双肺呼吸音粗,{side}下肺可闻及湿性啰音。",
        "special": "呼吸{rr}次/分,气管居中,{side}下肺叩诊稍浊,可闻及湿性啰音。",
        "aux": "血常规:WBC 13.2×10^9/L,NEUT% 84%;胸部CT示{side}下肺斑片状渗出影。",
        "dx": ["社区获得性肺炎(非重症)", "高血压病2级"],
        "basis": "急性起病,咳嗽、咳痰、发热,{side}下肺湿啰音,白细胞升高,胸部CT示渗出影。",
        "ddx": "1.肺结核:多有低热盗汗,痰找抗酸杆菌可鉴别。2.肺癌合并阻塞性肺炎:治疗后复查CT。",
        "antibiotic": ["头孢呋辛", "左氧氟沙星", "莫西沙星", "头孢曲松"],
        "better": [
            "咳嗽较前减轻,痰量减少",
            "体温较前下降,咳痰转白",
            "已无发热,偶有咳嗽",
            "精神食欲好转,咳嗽明显减少",
            "夜间咳嗽减轻,睡眠改善",
        ],
        "surgery": None,
    },
    {
        "dept": "心内科",
        "sex": None,
        "age": (50, 85),
        "symptom": "反复胸闷、胸痛",
        "unit": "月",
        "n": (1, 6),
        "hpi": "患者{n}{unit}前活动后出现胸骨后闷痛,每次持续约5分钟,休息后可缓解,无放射痛,无大汗。近1周发作较前频繁,门诊心电图示ST-T改变,拟“冠心病 不稳定型心绞痛”收入院。",
        "exam": "双肺呼吸音清,未闻及干湿啰音。心率{hr}次/分,律齐,未闻及杂音。",
        "special": "心界不大,心率{hr}次/分,律齐,各瓣膜听诊区未闻及病理性杂音。",
        "aux": "心电图:窦性心律,V4-V6导联ST段压低0.1mV。",
        "dx": ["冠状动脉粥样硬化性心脏病 不稳定型心绞痛", "高脂血症"],
        "basis": "活动后胸骨后闷痛,休息缓解,发作频率增加,心电图ST-T改变。",
        "ddx": "1.急性心肌梗死:肌钙蛋白动态监测可鉴别。2.主动脉夹层:胸痛剧烈呈撕裂样,CTA可鉴别。",
        "antibiotic": [],
        "better": [
            "未再发作胸痛",
            "胸闷较前明显减轻",
            "活动耐量较前提高",
            "夜间无胸闷发作",
            "一般情况可,未诉不适",
        ],
        "surgery": None,
    },
    {
        "dept": "神经内科",
        "sex": None,
        "age": (55, 88),
        "symptom": "言语不清伴肢体无力",
        "unit": "天",
        "n": (1, 3),
        "hpi": "患者{n}{unit}前晨起时出现言语含糊,伴肢体无力,持物不稳,行走拖步,无头痛、呕吐,无意识障碍。头颅MRI示急性腔隙性脑梗死,拟“急性脑梗死”收入院。",
        "exam": "神志清楚,构音障碍,肌力4级,病理征阳性。",
        "special": "神清,构音障碍,伸舌偏斜,肌力4级,肌张力正常,巴氏征阳性。",
        "aux": "头颅MRI:DWI示基底节区点状高信号。",
        "dx": ["急性脑梗死", "2型糖尿病"],
        "basis": "急性起病,局灶神经功能缺损,MRI DWI示新发梗死灶。",
        "ddx": "1.脑出血:头颅CT可鉴别。2.短暂性脑缺血发作:症状持续不缓解且影像学有梗死灶,可排除。",
        "antibiotic": [],
        "better": [
            "言语较前清晰",
            "肢体力量有所恢复",
            "可扶持下床行走",
            "无新发神经功能缺损",
            "吞咽功能良好,进食可",
        ],
        "surgery": None,
    },
    {
        "dept": "内分泌科",
        "sex": None,
        "age": (30, 75),
        "symptom": "口干、多饮、多尿",
        "unit": "月",
        "n": (2, 12),
        "hpi": "患者{n}{unit}前无明显诱因出现口干、多饮,每日饮水约3000ml,伴多尿、夜尿增多,体重下降约4kg。门诊查空腹血糖11.6mmol/L,糖化血红蛋白9.2%,拟“2型糖尿病”收入院。",
        "exam": "双肺呼吸音清,心率{hr}次/分,律齐。双足背动脉搏动可。",
        "special": "甲状腺未触及肿大,双足皮肤完整,10g尼龙丝试验正常。",
        "aux": "空腹血糖11.6mmol/L,糖化血红蛋白9.2%,尿酮体阴性。",
        "dx": ["2型糖尿病", "血脂异常"],
        "basis": "多饮多尿、体重下降,空腹血糖≥7.0mmol/L,糖化血红蛋白升高。",
        "ddx": "1.1型糖尿病:胰岛自身抗体及C肽可鉴别。2.继发性糖尿病:无库欣等表现,暂不考虑。",
        "antibiotic": [],
        "better": [
            "口干多饮较前好转",
            "空腹血糖逐步下降至7mmol/L左右",
            "未发生低血糖反应",
            "已掌握胰岛素注射方法",
            "饮食控制良好",
        ],
        "surgery": None,
    },
    {
        "dept": "消化内科",
        "sex": None,
        "age": (35, 80),
        "symptom": "黑便",
        "unit": "天",
        "n": (1, 4),
        "hpi": "患者{n}{unit}前进食辛辣食物后出现黑便,为柏油样,每日2-3次,伴头晕、乏力,无呕血,无晕厥。门诊查血红蛋白偏低,拟“上消化道出血”收入院。",
        "exam": "贫血貌,睑结膜苍白,心率{hr}次/分,腹软,上腹轻压痛,无反跳痛。",
        "special": "腹平软,上腹部轻压痛,无反跳痛,肝脾未触及,肠鸣音活跃。",
        "aux": "血常规:Hb 68g/L;便潜血阳性。",
        "dx": ["上消化道出血", "十二指肠球部溃疡?"],
        "basis": "黑便、头晕乏力,贫血貌,便潜血阳性,血红蛋白下降。",
        "ddx": "1.食管胃底静脉曲张破裂出血:无肝病史,胃镜可鉴别。2.胃癌出血:胃镜及病理可鉴别。",
        "antibiotic": [],
        "better": [
            "未再解黑便",
            "头晕乏力较前减轻",
            "大便转黄",
            "已过渡至流质饮食",
            "精神好转,无不适",
        ],
        "surgery": None,
        "anemia": True,
    },
    {
        "dept": "普外科",
        "sex": "male",
        "age": (40, 80),
        "symptom": "{side}侧腹股沟区可复性肿物",
        "unit": "月",
        "n": (3, 24),
        "hpi": "患者{n}{unit}前发现{side}侧腹股沟区肿物,约鸡蛋大小,站立及咳嗽时明显,平卧后可回纳,无腹痛、呕吐。门诊拟“{side}侧腹股沟斜疝”收入院。",
        "exam": "腹软,无压痛,{side}侧腹股沟区可见一肿物,可回纳。",
        "special": "{side}侧腹股沟区可触及约5×4cm肿物,平卧可回纳,压迫内环口肿物不再出现,咳嗽冲击感阳性。",
        "aux": "腹股沟区超声:{side}侧腹股沟斜疝。",
        "dx": ["{side}侧腹股沟斜疝", "高血压病1级"],
        "basis": "腹股沟区可复性肿物,压迫内环后不再出现,超声支持。",
        "ddx": "1.直疝:多见于老年,疝块位于直疝三角。2.鞘膜积液:透光试验阳性,不能回纳。",
        "antibiotic": ["头孢唑林"],
        "better": [
            "切口无渗出,疼痛减轻",
            "已下床活动,无不适",
            "切口干燥,愈合良好",
            "饮食恢复正常,大小便通畅",
            "无发热,切口无红肿",
        ],
        "surgery": {
            "name": "{side}侧腹股沟斜疝无张力修补术",
            "anesthesia": "腰硬联合麻醉",
            "dx": "{side}侧腹股沟斜疝",
            "findings": "术中见{side}侧疝囊自内环口突出,予高位游离疝囊,置入补片修补。",
        },
    },
    {
        "dept": "骨科",
        "sex": None,
        "age": (55, 82),
        "symptom": "{side}膝关节疼痛",
        "unit": "年",
        "n": (2, 10),
        "hpi": "患者{n}{unit}前无明显诱因出现{side}膝关节疼痛,上下楼梯时加重,休息后缓解,近半年行走距离明显缩短,保守治疗效果差。门诊X线示{side}膝关节间隙变窄,拟“{side}膝骨关节炎”收入院。",
        "exam": "脊柱无畸形,{side}膝关节轻度内翻畸形,活动受限。",
        "special": "{side}膝关节内翻畸形,内侧关节间隙压痛,活动度0-100°,浮髌试验阴性。",
        "aux": "{side}膝关节X线:关节间隙变窄,骨赘形成。",
        "dx": ["{side}膝骨关节炎", "高血压病2级"],
        "basis": "老年,膝关节疼痛多年,活动受限,X线示关节间隙变窄、骨赘形成。",
        "ddx": "1.类风湿关节炎:多关节受累,类风湿因子可鉴别。2.痛风性关节炎:血尿酸及关节液检查可鉴别。",
        "antibiotic": ["头孢呋辛"],
        "better": [
            "切口疼痛减轻,无渗出",
            "已在助行器辅助下行走",
            "膝关节屈曲达90°",
            "患肢无肿胀,末梢血运好",
            "功能锻炼配合良好",
        ],
        "surgery": {
            "name": "{side}侧全膝关节置换术",
            "anesthesia": "全身麻醉",
            "dx": "{side}膝骨关节炎",
            "findings": "术中见{side}膝关节软骨广泛磨损,截骨后安装假体,活动度良好。",
        },
    },
    {
        "dept": "妇科",
        "sex": "female",
        "age": (30, 50),
        "symptom": "发现子宫肌瘤",
        "unit": "年",
        "n": (1, 5),
        "hpi": "患者{n}{unit}前体检发现子宫肌瘤,约3cm,未予处理,近半年月经量增多,经期延长至8天,伴乏力。复查超声示子宫肌瘤增大至6cm,拟“子宫平滑肌瘤”收入院。",
        "exam": "心肺未见异常,腹软,下腹部未触及包块。",
        "special": "外阴已婚式,阴道通畅,宫颈光滑,子宫如孕10周大小,质硬,双附件未触及异常。",
        "aux": "盆腔超声:子宫前壁肌壁间低回声团约6×5cm。",
        "dx": ["子宫平滑肌瘤", "轻度贫血"],
        "basis": "育龄女性,月经量增多,妇检子宫增大,超声示肌壁间低回声团。",
        "ddx": "1.子宫腺肌病:痛经进行性加重,超声可鉴别。2.子宫肉瘤:肌瘤短期迅速增大需警惕,病理确诊。",
        "antibiotic": ["头孢呋辛"],
        "better": [
            "腹部切口无渗出",
            "已排气,进食半流质",
            "阴道少量流血,无腹痛",
            "无发热,尿管已拔除",
            "下床活动良好",
        ],
        "surgery": {
            "name": "腹腔镜下子宫肌瘤剔除术",
            "anesthesia": "全身麻醉",
            "dx": "子宫平滑肌瘤",
            "findings": "术中见子宫前壁肌壁间肌瘤约6cm,完整剔除,缝合创面。",
        },
    },
    {
        "dept": "泌尿外科",
        "sex": None,
        "age": (30, 70),
        "symptom": "{side}侧腰痛",
        "unit": "天",
        "n": (2, 10),
        "hpi": "患者{n}{unit}前无明显诱因出现{side}侧腰部绞痛,阵发性,向下腹部放射,伴恶心,无发热。泌尿系CT示{side}侧输尿管上段结石约1.0cm,伴{side}肾积水,拟“{side}输尿管结石”收入院。",
        "exam": "腹软,无压痛,{side}肾区叩痛阳性。",
        "special": "{side}肾区叩击痛阳性,{side}侧输尿管走行区轻压痛,膀胱区无隆起。",
        "aux": "泌尿系CT:{side}侧输尿管上段结石,{side}肾轻度积水。",
        "dx": ["{side}输尿管结石", "{side}肾积水"],
        "basis": "腰部绞痛,肾区叩痛,CT示输尿管结石伴肾积水。",
        "ddx": "1.急性阑尾炎:转移性右下腹痛,血象升高可鉴别。2.胆囊结石:右上腹痛,超声可鉴别。",
        "antibiotic": ["左氧氟沙星"],
        "better": [
            "腰痛消失",
            "双J管位置良好,无不适",
            "尿色转清",
            "无发热,饮食正常",
            "复查KUB结石已清除",
        ],
        "surgery": {
            "name": "{side}侧输尿管镜下钬激光碎石取石术",
            "anesthesia": "腰硬联合麻醉",
            "dx": "{side}输尿管结石",
            "findings": "术中见{side}侧输尿管上段结石约1.0cm,钬激光碎石后取出,留置双J管。",
        },
    },
]

DOCTORS = ["李明", "张伟", "王芳", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周涛", "吴霞"]
SENIORS = ["张建国", "王志强", "刘海燕", "陈国庆", "孙秀兰", "马建华"]
OPENERS = ["今日查房", "患者", "查房见患者", "晨间查房", "今日随访", "复诊患者", "下午巡视患者"]
EXTRAS = [
    "睡眠饮食可,二便正常。",
    "精神状态良好,情绪稳定。",
    "家属陪护,对治疗方案表示理解。",
    "已行健康宣教,嘱注意休息。",
    "出入量基本平衡。",
    "继续目前治疗,密切观察病情变化。",
    "患者咨询出院后注意事项,已详细解答。",
    "护理记录无特殊。",
    "夜间睡眠欠佳,予心理疏导。",
    "复查指标较前好转,治疗有效。",
]
PLANS = [
    "继续当前治疗方案。",
    "明日复查血常规及生化。",
    "加强营养支持,适当活动。",
    "监测生命体征,注意病情变化。",
    "调整口服药剂量,观察疗效。",
    "请康复科协助制定康复计划。",
    "完善相关检查,评估出院条件。",
]
CATEGORY_INJECTIONS: dict[str, tuple[str, ...]] = {
    "missing_document": (
        "drop_discharge",
        "drop_first_course",
        "drop_senior_round",
        "drop_surgery_record",
        "drop_post_op",
    ),
    "missing_section": (
        "drop_admission_section",
        "drop_menstrual",
        "drop_discharge_section",
        "drop_first_course_section",
        "drop_surgery_section",
    ),
    "timeliness": (
        "late_admission",
        "late_first_course",
        "late_senior_round",
        "gap_daily",
        "late_surgery_record",
        "late_discharge",
        "late_post_op",
    ),
    "consistency": (
        "flip_sex",
        "shift_age",
        "allergy_conflict",
        "flip_side",
        "admit_date_mismatch",
        "discharge_before_admit",
        "diagnosis_mismatch",
        "operation_date_mismatch",
    ),
    "copy_paste": ("copy_note", "foreign_name"),
    # issue 7 groups "diagnosis basis and differential in 首次病程" under content
    "content": (
        "long_complaint",
        "complaint_no_duration",
        "hpi_mismatch",
        "drop_basis",
        "drop_differential",
    ),
    "signature": ("unsign_note", "unsign_admission", "unsign_discharge", "unsign_surgery"),
    "diagnosis": (
        "drop_discharge_diagnosis",
        "drop_initial_diagnosis",
    ),
    "medication": ("undocumented_antibiotic",),
    "lab_followup": ("abnormal_lab_ignored",),
    "consent": (
        "drop_consent",
        "unsign_consent",
        "consent_after_surgery",
        "transfusion_no_consent",
    ),
}
NEEDS_DISCHARGE = {
    "foreign_name",
    "operation_date_mismatch",
    "drop_discharge_section",
    "late_discharge",
    "flip_sex",
    "shift_age",
    "flip_side",
    "admit_date_mismatch",
    "diagnosis_mismatch",
    "unsign_discharge",
    "drop_discharge_diagnosis",
}
# An injection that removes a document or notes hides earlier defects in them.
CONFLICTS: dict[str, set[str]] = {
    "drop_discharge": NEEDS_DISCHARGE,
    "drop_first_course": {
        "drop_first_course_section",
        "drop_basis",
        "drop_differential",
        "late_first_course",
    },
    "drop_senior_round": {"late_senior_round", "late_first_course"},
    "drop_post_op": {"late_post_op"},
    "drop_initial_diagnosis": {"diagnosis_mismatch"},
    "discharge_before_admit": {"late_discharge"},
    "gap_daily": {"copy_note", "unsign_note", "allergy_conflict", "late_senior_round"},
}
SURGICAL_ONLY = {
    "operation_date_mismatch",
    "drop_surgery_record",
    "drop_post_op",
    "drop_surgery_section",
    "late_surgery_record",
    "late_post_op",
    "flip_side",
    "unsign_surgery",
    "drop_consent",
    "unsign_consent",
    "consent_after_surgery",
}


@dataclass(frozen=True, slots=True)
class SyntheticRecord:
    """One generated stay: document texts, meta, and ground truth."""

    record_id: str
    department: str
    documents: dict[str, str]
    meta: dict[str, Any]
    labels: tuple[str, ...]  # defect categories injected (empty: clean)
    injections: tuple[str, ...]
    encoding: str = "utf-8"
    style: dict[str, str] = field(default_factory=dict)

    def to_request(self) -> dict[str, Any]:
        """The API body ``{"documents": ..., "meta": ...}``."""
        return {"documents": dict(self.documents), "meta": dict(self.meta)}


# ---------------------------------------------------------------------------------------------
# Rendering helpers


def fmt_time(when: datetime, style: str, date_only: bool = False) -> str:
    """Write a time in one of the house styles: iso, zh, slash, dot."""
    if style == "zh":
        day = f"{when.year}年{when.month}月{when.day}日"
        return day if date_only else f"{day}{when.hour}时{when.minute:02d}分"
    if style == "slash":
        day = f"{when.year}/{when.month}/{when.day}"
    elif style == "dot":
        day = f"{when.year}.{when.month:02d}.{when.day:02d}"
    else:
        day = when.strftime("%Y-%m-%d")
    return day if date_only else f"{day} {when.hour:02d}:{when.minute:02d}"


def _heading(title: str, style: str) -> str:
    return {
        "half": f"{title}:",
        "full": f"{title}:",
        "bracket": f"【{title}】",
        "space": f"{title} ",
    }[style]


def _render_sections(sections: list[tuple[str, str]], style: str) -> list[str]:
    lines: list[str] = []
    for title, body in sections:
        if "\n" in body or style == "space":
            lines.append(_heading(title, style).rstrip() if style != "space" else title)
            lines.append(body)
        else:
            lines.append(_heading(title, style) + body)
    return lines


def _signature(name: str, style: str, label: str = "医师签名") -> str:
    if not name:
        return "" if style == "bare" else f"{' ' * 40}{label}:"
    if style == "bare":
        return f"{' ' * 40}{name}"
    if style == "full":
        return f"{' ' * 40}{label}:{name}"
    return f"{' ' * 40}{label}:{name}"


# ---------------------------------------------------------------------------------------------
# Building a structured record


def _fill(template: str, values: dict[str, Any]) -> str:
    return template.format(**values)


def _build(rng: random.Random, index: int) -> dict[str, Any]:
    case = CASES[index % len(CASES)] if index >= 0 else rng.choice(CASES)
    sex = case["sex"] or rng.choice(["male", "female"])
    age = rng.randint(*case["age"])
    side = rng.choice(["左", "右"])
    n = rng.randint(*case["n"])
    values = {
        "side": side,
        "n": n,
        "unit": case["unit"],
        "tmax": f"{rng.uniform(38.1, 39.6):.1f}",
        "hr": rng.randint(66, 96),
        "rr": rng.randint(16, 22),
    }
    style = {
        "date": rng.choice(["iso", "zh", "slash", "dot"]),
        "heading": rng.choice(["half", "full", "bracket", "space"]),
        "sign": rng.choice(["half", "full", "bare"]),
        "encoding": rng.choice(["utf-8", "utf-8", "gbk"]),
    }
    admit = datetime(2024, 1, 1, 8, 0) + timedelta(
        days=rng.randint(0, 300), minutes=rng.randint(0, 12 * 60)
    )
    surgical = case["surgery"] is not None
    stay_days = rng.randint(6, 10)
    discharge = (admit + timedelta(days=stay_days)).replace(
        hour=rng.randint(8, 11), minute=rng.choice([0, 15, 30, 45])
    )
    doctor, senior = rng.choice(DOCTORS), rng.choice(SENIORS)
    name = rng.choice(SURNAMES) + rng.choice(GIVEN)
    complaint = f"{_fill(case['symptom'], values)}{n}{case['unit']}"
    dx = [_fill(d, values) for d in case["dx"]]
    antibiotic = rng.choice(case["antibiotic"]) if case["antibiotic"] else None
    female = sex == "female"
    adm_sections: list[tuple[str, str]] = [
        ("主诉", complaint + "。"),
        ("现病史", _fill(case["hpi"], values)),
        (
            "既往史",
            rng.choice(["既往体健。", "高血压病史5年,规律服药。", "否认高血压、糖尿病病史。"])
            + "否认肝炎、结核等传染病史。否认手术外伤史。否认药物、食物过敏史。",
        ),
        (
            "个人史",
            rng.choice(
                [
                    "生于原籍,无疫区居留史,无烟酒嗜好。",
                    "吸烟20年,每日10支,偶饮酒。",
                    "久居本地,否认毒物接触史。",
                ]
            ),
        ),
        ("婚育史", "已婚,育有1子" + rng.choice(["1女", "", "2女"]) + ",配偶体健。"),
    ]
    if female:
        lmp = admit - timedelta(days=rng.randint(5, 25))
        adm_sections.append(
            (
                "月经史",
                f"初潮14岁,经期5-7天,周期28-30天,末次月经{fmt_time(lmp, style['date'], True)}。"
                if age < 50
                else "初潮14岁,50岁绝经,绝经后无异常阴道流血。",
            )
        )
    adm_sections += [
        (
            "家族史",
            rng.choice(
                [
                    "父母体健,否认家族遗传病史。",
                    "父亲有高血压病史,否认家族遗传病史。",
                    "否认家族性遗传病及传染病史。",
                ]
            ),
        ),
        (
            "体格检查",
            f"T {rng.uniform(36.2, 37.2):.1f}℃ P {values['hr']}次/分 R {values['rr']}次/分 BP {rng.randint(110, 150)}/{rng.randint(65, 95)}mmHg\n神志清楚,查体合作。"
            + _fill(case["exam"], values),
        ),
        ("专科情况", _fill(case["special"], values)),
        ("辅助检查", _fill(case["aux"], values)),
        ("初步诊断", "\n".join(f"{i + 1}.{d}" for i, d in enumerate(dx))),
    ]
    admission = {
        "header": [
            "入院记录",
            f"姓名:{name}  性别:{'女' if female else '男'}  年龄:{age}岁  科室:{case['dept']}",
        ],
        "admit": admit,
        "recorded": admit + timedelta(hours=rng.uniform(2, 20)),
        "sections": adm_sections,
        "signer": doctor,
    }
    notes: list[dict[str, Any]] = []
    first_time = admit + timedelta(hours=rng.uniform(0.5, 6))
    first_sections = [
        (
            "病例特点",
            f"1.{'女' if female else '男'}性,{age}岁,因“{complaint}”入院。\n2.{_fill(case['exam'], values)}\n3.{_fill(case['aux'], values)}",
        ),
        ("诊断依据", _fill(case["basis"], values)),
        ("鉴别诊断", case["ddx"]),
        (
            "诊疗计划",
            "1.完善血常规、生化、凝血等检查。\n2."
            + (f"予{antibiotic}抗感染治疗。" if antibiotic and not surgical else "对症支持治疗。")
            + "\n3.密切观察病情变化。",
        ),
    ]
    notes.append(
        {
            "kind": "first_course",
            "title": "首次病程记录",
            "time": first_time,
            "sections": first_sections,
            "body": f"患者{name},{'女' if female else '男'},{age}岁。",
            "signer": doctor,
        }
    )
    senior_time = admit + timedelta(hours=rng.uniform(16, 40))
    better = list(case["better"])
    rng.shuffle(better)
    extras = list(EXTRAS)
    rng.shuffle(extras)
    plans = list(PLANS)
    rng.shuffle(plans)
    notes.append(
        {
            "kind": "senior_round",
            "title": "主治医师查房记录",
            "time": senior_time,
            "body": f"{senior}主治医师查房:患者入院后{better[0]}。查体:{_fill(case['exam'], values)}{senior}主治医师指出:目前诊断{dx[0]}明确,{plans[0]}",
            "signer": doctor,
        }
    )
    surgery: dict[str, Any] | None = None
    consents: list[dict[str, Any]] = []
    op_day = 0
    if surgical:
        op_day = rng.randint(2, 3)
        start = (admit + timedelta(days=op_day)).replace(
            hour=rng.randint(8, 13), minute=rng.choice([0, 10, 20, 30, 40, 50])
        )
        end = start + timedelta(minutes=rng.randint(50, 150))
        sx = case["surgery"]
        surgery = {
            "start": start,
            "end": end,
            "recorded": end + timedelta(hours=rng.uniform(0.5, 6)),
            "sections": [
                ("手术名称", _fill(sx["name"], values)),
                ("术前诊断", _fill(sx["dx"], values)),
                ("术中诊断", _fill(sx["dx"], values)),
                ("麻醉方式", sx["anesthesia"]),
                (
                    "手术经过",
                    "麻醉成功后患者取合适体位,常规消毒铺巾。"
                    + _fill(sx["findings"], values)
                    + f"术中出血约{rng.randint(10, 200)}ml,清点器械纱布无误,术毕安返病房。",
                ),
            ],
            "signer": rng.choice(SENIORS),
        }
        consent_time = start - timedelta(hours=rng.uniform(12, 30))
        consents.append(
            {
                "title": "手术知情同意书",
                "body": f"拟行手术:{_fill(sx['name'], values)}\n术前诊断:{_fill(sx['dx'], values)}\n手术风险:出血、感染、邻近器官损伤等,已详细告知。",
                "patient": rng.choice([name, rng.choice(SURNAMES) + rng.choice(GIVEN)]),
                "time": consent_time,
                "doctor": doctor,
            }
        )
        pre = start - timedelta(hours=rng.uniform(18, 26))
        notes.append(
            {
                "kind": "daily",
                "title": "术前小结",
                "time": pre,
                "body": f"患者诊断{dx[0]}明确,具备手术指征,无明显手术禁忌,拟于明日在{sx['anesthesia']}下行{_fill(sx['name'], values)}。术前已签署手术知情同意书。{extras.pop()}",
                "signer": doctor,
            }
        )
        notes.append(
            {
                "kind": "post_op",
                "title": "术后首次病程记录",
                "time": end + timedelta(minutes=rng.randint(15, 80)),
                "body": f"患者于{sx['anesthesia']}下行{_fill(sx['name'], values)},手术顺利,术中出血少量。术后安返病房,生命体征平稳。术后予{antibiotic or '抗感染'}预防感染、止痛等治疗,注意观察切口情况。",
                "signer": doctor,
            }
        )
    # daily notes: every 1–2 days from day 2 to the day before discharge
    day = 2
    while day < stay_days:
        when = (admit + timedelta(days=day)).replace(
            hour=rng.randint(8, 17), minute=rng.randint(0, 59)
        )
        if surgery is not None and abs((when - surgery["end"]).total_seconds()) < 10 * 3600:
            day += 1
            continue
        if not better:
            better = list(case["better"])
            rng.shuffle(better)
        if not extras:
            extras = list(EXTRAS)
            rng.shuffle(extras)
        if not plans:
            plans = list(PLANS)
            rng.shuffle(plans)
        body = f"{rng.choice(OPENERS)}{better.pop()},T {rng.uniform(36.2, 37.2):.1f}℃,P {rng.randint(62, 96)}次/分,BP {rng.randint(105, 145)}/{rng.randint(60, 92)}mmHg。{extras.pop()}{plans.pop()}"
        if antibiotic and day == 2:
            body += f"继续{antibiotic}抗感染治疗,疗程拟{rng.randint(5, 7)}天。"
        notes.append(
            {
                "kind": "daily",
                "title": rng.choice(["日常病程记录", "", "病程记录"]),
                "time": when,
                "body": body,
                "signer": doctor,
            }
        )
        day += rng.choice([1, 2])
    notes.sort(key=lambda x: x["time"])
    # orders and labs
    orders: list[tuple[datetime, str]] = [
        (admit + timedelta(minutes=40), f"长期医嘱 {case['dept']}护理常规"),
        (admit + timedelta(minutes=40), "长期医嘱 二级护理"),
    ]
    if antibiotic:
        abx_time = (
            (surgery["start"] - timedelta(minutes=30)) if surgery else admit + timedelta(minutes=50)
        )
        orders.append(
            (
                abx_time,
                f"长期医嘱 注射用{antibiotic} 1.5g ivgtt q12h"
                if not surgery
                else f"临时医嘱 注射用{antibiotic} 1.5g ivgtt 术前30分钟",
            )
        )
        # the drug is named in a note within the window
        target = min(notes, key=lambda x: abs((x["time"] - abx_time).total_seconds()))
        if antibiotic not in target["body"] and all(
            antibiotic not in s for _, s in target.get("sections", [])
        ):
            target["body"] += f"予{antibiotic}{'预防' if surgery else '抗'}感染治疗。"
    if surgery:
        orders.append(
            (
                surgery["start"] - timedelta(hours=20),
                f"临时医嘱 拟明日在{case['surgery']['anesthesia']}下行{surgery['sections'][0][1]}",
            )
        )
    orders.append((discharge - timedelta(hours=1), "临时医嘱 今日出院"))
    labs: list[tuple[datetime, str, str, str, str]] = [
        (admit + timedelta(hours=2), "白细胞", f"{rng.uniform(4.5, 9.5):.1f}", "×10^9/L", ""),
        (
            admit + timedelta(minutes=20),
            "血红蛋白",
            "68" if case.get("anemia") else str(rng.randint(118, 150)),
            "g/L",
            "↓" if case.get("anemia") else "",
        ),
        (admit + timedelta(hours=2), "血小板", str(rng.randint(150, 320)), "×10^9/L", ""),
        (admit + timedelta(hours=20), "血钾", f"{rng.uniform(3.6, 4.9):.1f}", "mmol/L", ""),
        (admit + timedelta(hours=20), "血钠", str(rng.randint(136, 144)), "mmol/L", ""),
        (admit + timedelta(hours=20), "肌酐", str(rng.randint(55, 98)), "μmol/L", ""),
    ]
    transfusion = bool(case.get("anemia"))
    if case.get("anemia"):
        notes[0]["body"] += "急查血红蛋白68g/L,予禁食、抑酸、补液,必要时输血。"
        orders.append((admit + timedelta(hours=3), "临时医嘱 输注去白细胞悬浮红细胞 2U"))
        consents.append(
            {
                "title": "输血治疗知情同意书",
                "body": "输血目的:纠正贫血。输血风险:过敏反应、发热反应、感染经血传播疾病等,已告知。",
                "patient": name,
                "time": admit + timedelta(hours=2, minutes=30),
                "doctor": doctor,
            }
        )
    discharge_doc = {
        "header": ["出院记录", f"姓名:{name}  性别:{'女' if female else '男'}  年龄:{age}岁"],
        "admit": admit,
        "discharge": discharge,
        "recorded": discharge + timedelta(hours=rng.uniform(0.5, 12)),
        "sections": [
            ("入院情况", f"患者因“{complaint}”入院。" + _fill(case["exam"], values)),
            ("入院诊断", "\n".join(f"{i + 1}.{d}" for i, d in enumerate(dx))),
            (
                "诊疗经过",
                "入院后完善相关检查,"
                + (
                    f"于{fmt_time(surgery['start'], style['date'], True)}在{case['surgery']['anesthesia']}下行{surgery['sections'][0][1]},手术顺利,"
                    if surgery
                    else ""
                )
                + (f"予{antibiotic}抗感染、" if antibiotic else "")
                + "对症支持治疗,病情好转。",
            ),
            ("出院诊断", "\n".join(f"{i + 1}.{d}" for i, d in enumerate(dx))),
            (
                "出院情况",
                "患者一般情况良好,无明显不适。" + better[0] if better else "患者一般情况良好。",
            ),
            ("出院医嘱", "1.注意休息,清淡饮食。\n2.按时服药。\n3.2周后门诊复查,不适随诊。"),
        ],
        "signer": doctor,
    }
    return {
        "case": case,
        "values": values,
        "style": style,
        "sex": sex,
        "age": age,
        "name": name,
        "admit": admit,
        "discharge_time": discharge,
        "admission": admission,
        "notes": notes,
        "surgery": surgery,
        "consents": consents,
        "orders": orders,
        "labs": labs,
        "discharge": discharge_doc,
        "antibiotic": antibiotic,
        "transfusion": transfusion,
        "doctor": doctor,
        "complaint": complaint,
        "dx": dx,
        "meta": {
            "admit_time": admit.strftime("%Y-%m-%d %H:%M"),
            "discharge_time": discharge.strftime("%Y-%m-%d %H:%M"),
            "sex": sex,
            "age_years": age,
        },
    }


def _render(r: dict[str, Any]) -> dict[str, str]:
    st = r["style"]
    d, h, sg = st["date"], st["heading"], st["sign"]
    docs: dict[str, str] = {}
    adm = r["admission"]
    lines = [
        *adm["header"],
        f"入院时间:{fmt_time(adm['admit'], d)}",
        f"记录时间:{fmt_time(adm['recorded'], d)}",
    ]
    lines += _render_sections(adm["sections"], h)
    lines.append(_signature(adm["signer"], sg))
    docs["admission"] = "\n".join(lines) + "\n"
    course: list[str] = []
    for note in r["notes"]:
        course.append(f"{fmt_time(note['time'], d)} {note['title']}".rstrip())
        if note.get("body"):
            course.append(note["body"])
        course += _render_sections(note.get("sections", []), h)
        course.append(_signature(note["signer"], sg))
    docs["course"] = "\n".join(course) + "\n"
    if r["surgery"] is not None:
        sx = r["surgery"]
        lines = [
            "手术记录",
            f"手术开始时间:{fmt_time(sx['start'], d)}",
            f"手术结束时间:{fmt_time(sx['end'], d)}",
        ]
        lines += _render_sections(sx["sections"], h)
        lines.append(f"记录时间:{fmt_time(sx['recorded'], d)}")
        lines.append(_signature(sx["signer"], sg, "手术医师"))
        docs["surgery"] = "\n".join(lines) + "\n"
    if r["consents"]:
        lines = []
        for c in r["consents"]:
            lines += [
                c["title"],
                c["body"],
                f"谈话医师:{c['doctor']}",
                f"患者或家属签名:{c['patient']}",
                f"签署时间:{fmt_time(c['time'], d)}",
                "",
            ]
        docs["consent"] = "\n".join(lines)
    if r["discharge"] is not None:
        dc = r["discharge"]
        lines = [
            *dc["header"],
            f"入院日期:{fmt_time(dc['admit'], d)}",
            f"出院日期:{fmt_time(dc['discharge'], d)}",
            f"记录时间:{fmt_time(dc['recorded'], d)}",
        ]
        lines += _render_sections(dc["sections"], h)
        lines.append(_signature(dc["signer"], sg))
        docs["discharge"] = "\n".join(lines) + "\n"
    docs["orders"] = (
        "\n".join(
            f"{fmt_time(t, 'iso')} {text}" for t, text in sorted(r["orders"], key=lambda x: x[0])
        )
        + "\n"
    )
    docs["labs"] = (
        "\n".join(
            f"{fmt_time(t, 'iso')} {n} {v} {u} {f}".rstrip()
            for t, n, v, u, f in sorted(r["labs"], key=lambda x: x[0])
        )
        + "\n"
    )
    return docs


# ---------------------------------------------------------------------------------------------
# Injections: each mutates the structured record and returns False when not applicable


def _drop_section(sections: list[tuple[str, str]], title: str) -> bool:
    for i, (t, _) in enumerate(sections):
        if t == title:
            del sections[i]
            return True
    return False


def _daily(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in r["notes"] if n["kind"] == "daily" and n["title"] != "术前小结"]


def _inj(name: str, r: dict[str, Any], rng: random.Random) -> bool:
    surgical = r["surgery"] is not None
    if name in SURGICAL_ONLY and not surgical:
        return False
    if name in NEEDS_DISCHARGE and r["discharge"] is None:
        return False
    notes = r["notes"]
    adm, dc = r["admission"], r["discharge"]
    if name == "drop_discharge":
        r["discharge"] = None
    elif name == "drop_first_course":
        r["notes"] = [n for n in notes if n["kind"] != "first_course"]
    elif name == "drop_senior_round":
        r["notes"] = [n for n in notes if n["kind"] != "senior_round"]
    elif name == "drop_surgery_record":
        r["surgery"] = None
        r["consents"] = [c for c in r["consents"] if "手术" not in c["title"]]
        r["notes"] = [n for n in notes if n["kind"] != "post_op"]
    elif name == "drop_post_op":
        r["notes"] = [n for n in notes if n["kind"] != "post_op"]
    elif name == "drop_admission_section":
        return _drop_section(
            adm["sections"],
            rng.choice(
                ["既往史", "个人史", "婚育史", "家族史", "体格检查", "专科情况", "辅助检查"]
            ),
        )
    elif name == "drop_menstrual":
        return r["sex"] == "female" and r["age"] >= 12 and _drop_section(adm["sections"], "月经史")
    elif name == "drop_discharge_section":
        return _drop_section(dc["sections"], rng.choice(["诊疗经过", "出院情况", "出院医嘱"]))
    elif name == "drop_first_course_section":
        return (
            _drop_section(notes[0]["sections"], rng.choice(["病例特点", "诊疗计划"]))
            if notes[0]["kind"] == "first_course"
            else False
        )
    elif name == "drop_surgery_section":
        return _drop_section(r["surgery"]["sections"], rng.choice(["手术经过", "麻醉方式"]))
    elif name == "late_admission":
        adm["recorded"] = r["admit"] + timedelta(hours=rng.uniform(26, 40))
    elif name == "late_first_course":
        first = next((n for n in notes if n["kind"] == "first_course"), None)
        senior = next((n for n in notes if n["kind"] == "senior_round"), None)
        if first is None or senior is None:
            return False
        first["time"] = r["admit"] + timedelta(hours=rng.uniform(9.5, 14))
        senior["time"] = max(senior["time"], first["time"] + timedelta(hours=3))
    elif name == "late_senior_round":
        senior = next((n for n in notes if n["kind"] == "senior_round"), None)
        if senior is None:
            return False
        senior["time"] = r["admit"] + timedelta(hours=rng.uniform(50, 60))
        day1 = r["admit"] + timedelta(hours=rng.uniform(24, 30))
        notes.append(
            {
                "kind": "daily",
                "title": "日常病程记录",
                "time": day1,
                "body": f"患者入院第2天,{rng.choice(EXTRAS)}今日生命体征平稳,T 36.{rng.randint(2, 9)}℃,继续观察病情,完善相关检查。",
                "signer": r["doctor"],
            }
        )
    elif name == "gap_daily":
        daily = sorted(_daily(r), key=lambda n: n["time"])
        if len(daily) < 2:
            return False
        first = daily[0]
        end = r["discharge_time"]
        if (end.date() - first["time"].date()).days < 4:
            return False
        kept = [n for n in notes if n not in daily[1:]]
        r["notes"] = kept
        if surgical and r["surgery"]["end"] > first["time"]:
            return False
    elif name == "late_surgery_record":
        r["surgery"]["recorded"] = r["surgery"]["end"] + timedelta(hours=rng.uniform(26, 40))
    elif name == "late_discharge":
        dc["recorded"] = r["discharge_time"] + timedelta(hours=rng.uniform(26, 50))
    elif name == "late_post_op":
        post = next(n for n in notes if n["kind"] == "post_op")
        post["time"] = r["surgery"]["end"] + timedelta(hours=rng.uniform(3, 6))
    elif name == "flip_sex":
        other = "男" if r["sex"] == "female" else "女"
        dc["header"][1] = (
            dc["header"][1].replace("性别:女", f"性别:{other}").replace("性别:男", f"性别:{other}")
        )
    elif name == "shift_age":
        dc["header"][1] = dc["header"][1].replace(
            f"年龄:{r['age']}岁", f"年龄:{r['age'] + rng.choice([-12, 10, 20])}岁"
        )
    elif name == "allergy_conflict":
        target = rng.choice([n for n in notes if n["kind"] in ("daily", "senior_round")])
        target["body"] += (
            f"追问病史,患者诉既往有{rng.choice(['青霉素', '头孢类', '磺胺类', '阿司匹林'])}过敏史。"
        )
    elif name == "flip_side":
        side = r["values"]["side"]
        if side not in r["surgery"]["sections"][0][1]:
            return False
        other = "右" if side == "左" else "左"
        dc["sections"] = [
            (t, b.replace(side, other) if t == "出院诊断" else b) for t, b in dc["sections"]
        ]
    elif name == "admit_date_mismatch":
        dc["admit"] = r["admit"] + timedelta(days=rng.choice([-2, -1, 1, 2]))
    elif name == "operation_date_mismatch":
        style = r["style"]["date"]
        written = fmt_time(r["surgery"]["start"], style, True)
        wrong = fmt_time(
            r["surgery"]["start"] + timedelta(days=rng.choice([-2, -1, 1, 2])), style, True
        )
        before = dict(dc["sections"]).get("诊疗经过", "")
        if written not in before:
            return False
        dc["sections"] = [
            (t, b.replace(written, wrong) if t == "诊疗经过" else b) for t, b in dc["sections"]
        ]
    elif name == "discharge_before_admit":
        r["meta"]["discharge_time"] = (r["admit"] - timedelta(days=rng.randint(2, 20))).strftime(
            "%Y-%m-%d %H:%M"
        )
    elif name == "diagnosis_mismatch":
        if "初步诊断" not in dict(adm["sections"]):
            return False
        dc["sections"] = [
            (t, "1.急性胰腺炎\n2.胆囊结石" if t == "入院诊断" else b) for t, b in dc["sections"]
        ]
        return "胰腺" not in r["dx"][0]
    elif name == "copy_note":
        daily = sorted(_daily(r), key=lambda n: n["time"])
        if len(daily) < 2:
            return False
        i = rng.randrange(len(daily) - 1)
        daily[i + 1]["body"] = daily[i]["body"]
    elif name == "foreign_name":
        other = next(n for n in (rng.choice(SURNAMES) + g for g in GIVEN) if n != r["name"])
        dc["header"][1] = dc["header"][1].replace(f"姓名:{r['name']}", f"姓名:{other}")
    elif name == "long_complaint":
        tail = rng.choice(
            [
                ",伴乏力、纳差、夜间盗汗及体重进行性下降约5公斤",
                ",伴头晕、心悸、全身乏力、食欲明显减退及睡眠差",
                ",近3天加重伴恶心、呕吐胃内容物及腹胀不适",
            ]
        )
        adm["sections"][0] = ("主诉", r["complaint"] + tail + "。")
    elif name == "complaint_no_duration":
        text = r["complaint"]
        unit = r["case"]["unit"]
        stripped = text[: text.rfind(str(r["values"]["n"]) + unit)] if text.endswith(unit) else text
        adm["sections"][0] = ("主诉", stripped + "。")
    elif name == "hpi_mismatch":
        symptom = rng.choice(["腹痛", "头痛", "皮疹", "腰背痛", "耳鸣"])
        hpi = dict(adm["sections"]).get("现病史", "")
        if symptom in hpi:
            return False
        adm["sections"][0] = ("主诉", f"{symptom}{rng.randint(2, 9)}天。")
    elif name == "unsign_note":
        rng.choice(_daily(r) or notes)["signer"] = ""
    elif name == "unsign_admission":
        adm["signer"] = ""
    elif name == "unsign_discharge":
        dc["signer"] = ""
    elif name == "unsign_surgery":
        r["surgery"]["signer"] = ""
    elif name == "drop_basis":
        return notes[0]["kind"] == "first_course" and _drop_section(
            notes[0]["sections"], "诊断依据"
        )
    elif name == "drop_differential":
        return notes[0]["kind"] == "first_course" and _drop_section(
            notes[0]["sections"], "鉴别诊断"
        )
    elif name == "drop_discharge_diagnosis":
        return _drop_section(dc["sections"], "出院诊断")
    elif name == "drop_initial_diagnosis":
        return _drop_section(adm["sections"], "初步诊断")
    elif name == "undocumented_antibiotic":
        text = json.dumps(r["notes"], ensure_ascii=False, default=str)
        drug = next(
            (
                d
                for d in ("莫西沙星", "美罗培南", "阿奇霉素", "万古霉素", "甲硝唑")
                if d not in text and d != r["antibiotic"]
            ),
            None,
        )
        if drug is None:
            return False
        when = r["admit"] + timedelta(days=rng.randint(2, 3), hours=rng.randint(0, 6))
        r["orders"].append((when, f"长期医嘱 注射用{drug} 0.5g ivgtt q12h"))
    elif name == "abnormal_lab_ignored":
        text = json.dumps(r["notes"], ensure_ascii=False, default=str)
        options = [
            ("血钾", "2.7", "mmol/L", "↓", ("钾",)),
            ("血钠", "121", "mmol/L", "↓", ("钠",)),
            ("血糖", "25.6", "mmol/L", "↑", ("血糖", "葡萄糖")),
            ("血小板", "32", "×10^9/L", "↓", ("血小板", "PLT")),
        ]
        options = [o for o in options if not any(w in text for w in o[4])]
        if not options:
            return False
        n, v, u, f, _ = rng.choice(options)
        when = r["admit"] + timedelta(days=rng.randint(2, 4), hours=rng.randint(-4, 2))
        r["labs"].append((when, n, v, u, f))
    elif name == "drop_consent":
        r["consents"] = [c for c in r["consents"] if "手术" not in c["title"]]
    elif name == "unsign_consent":
        for c in r["consents"]:
            if "手术" in c["title"]:
                c["patient"] = ""
    elif name == "consent_after_surgery":
        for c in r["consents"]:
            if "手术" in c["title"]:
                c["time"] = r["surgery"]["start"] + timedelta(hours=rng.uniform(1, 20))
    elif name == "transfusion_no_consent":
        if r["transfusion"]:
            r["consents"] = [c for c in r["consents"] if "输血" not in c["title"]]
        else:
            r["orders"].append(
                (r["admit"] + timedelta(days=2), "临时医嘱 输注去白细胞悬浮红细胞 2U")
            )
    else:
        raise ValueError(f"unknown injection {name}")
    return True


def _mentioned(note: dict[str, Any], word: str) -> bool:
    return word in note.get("body", "") or any(word in b for _, b in note.get("sections", []))


def _ensure_mention(
    r: dict[str, Any], word: str, text: str, start: datetime, end: datetime
) -> None:
    """Keep a follow-up the clean record had when an injection removed the note holding it."""
    window = [n for n in r["notes"] if start <= n["time"] <= end]
    if any(_mentioned(n, word) for n in window):
        return
    if window:
        window[0]["body"] = window[0].get("body", "") + text
        return
    r["notes"].append(
        {
            "kind": "daily",
            "title": "病程记录",
            "time": start + timedelta(hours=1),
            "body": f"患者一般情况尚可。{text}",
            "signer": r["doctor"],
        }
    )
    r["notes"].sort(key=lambda x: x["time"])


def _repair(r: dict[str, Any]) -> None:
    abx = r["antibiotic"]
    for when, text in r["orders"]:
        if abx and abx in text:
            _ensure_mention(
                r,
                abx,
                f"予{abx}抗感染治疗。",
                when - timedelta(hours=23),
                when + timedelta(hours=47),
            )
    if r["case"].get("anemia"):
        when = r["admit"] + timedelta(minutes=20)
        _ensure_mention(
            r, "血红蛋白", "急查血红蛋白68g/L,予输血纠正贫血。", when, when + timedelta(hours=23)
        )


def generate_record(seed: int, index: int, injections: tuple[str, ...] = ()) -> SyntheticRecord:
    """One record: department by ``index``, style and content by ``seed``; apply
    ``injections`` (names from :data:`CATEGORY_INJECTIONS`); inapplicable ones are dropped."""
    rng = random.Random(seed * 100_003 + index)
    r = _build(rng, index)
    applied: list[str] = []
    labels: list[str] = []
    for name in injections:
        blocked = CONFLICTS.get(name, set()) | {k for k, v in CONFLICTS.items() if name in v}
        if name == "drop_surgery_record":
            blocked |= SURGICAL_ONLY
        if blocked & set(applied):
            continue
        trial = copy.deepcopy(r)
        if _inj(name, trial, rng):
            r = trial
            applied.append(name)
            labels.append(next(c for c, names in CATEGORY_INJECTIONS.items() if name in names))
    _repair(r)
    return SyntheticRecord(
        record_id=f"syn-{seed}-{index:04d}",
        department=r["case"]["dept"],
        documents=_render(r),
        meta=r["meta"],
        labels=tuple(sorted(set(labels))),
        injections=tuple(applied),
        encoding=r["style"]["encoding"],
        style=dict(r["style"]),
    )


def generate_corpus(
    count: int = 220, seed: int = 7, clean_share: float = 0.25
) -> list[SyntheticRecord]:
    """``count`` records; about ``clean_share`` clean, the rest with one or two injections.

    The first injection cycles through the categories, and within a category through its
    injections, so every category is about equally represented; a second injection of
    another category is added to about a third of the records.
    """
    rng = random.Random(seed)
    categories = list(CATEGORY_INJECTIONS)
    all_injections = [name for names in CATEGORY_INJECTIONS.values() for name in names]
    turns = dict.fromkeys(categories, 0)
    out: list[SyntheticRecord] = []
    cursor = 0
    for index in range(count):
        if rng.random() < clean_share:
            out.append(generate_record(seed, index))
            continue
        category = categories[cursor % len(categories)]
        cursor += 1
        names = CATEGORY_INJECTIONS[category]
        picks = [names[turns[category] % len(names)]]
        turns[category] += 1
        if rng.random() < 0.35:
            second = rng.choice(all_injections)
            if _category(second) != category:
                picks.append(second)
        out.append(generate_record(seed, index, tuple(picks)))
    return out


def _category(injection: str) -> str:
    return next(c for c, names in CATEGORY_INJECTIONS.items() if injection in names)


def write_record(record: SyntheticRecord, directory: Path) -> Path:
    """Write a RECORD directory (one file per document, ``meta.json``) in its encoding."""
    directory.mkdir(parents=True, exist_ok=True)
    for doc_type, text in record.documents.items():
        (directory / f"{doc_type}.txt").write_bytes(
            text.encode("gb18030" if record.encoding == "gbk" else "utf-8")
        )
    (directory / "meta.json").write_text(
        json.dumps(record.meta, ensure_ascii=False), encoding="utf-8"
    )
    return directory


Scorer = Callable[[SyntheticRecord], set[str]]


def precision_recall(
    corpus: list[SyntheticRecord], predict: Scorer, categories: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Record-level precision/recall per category: a record counts as a true positive for a
    category when a defect of that category was injected and at least one was reported."""
    stats = {c: {"tp": 0, "fp": 0, "fn": 0} for c in categories}
    for rec in corpus:
        found = predict(rec)
        for c in categories:
            truth, pred = c in rec.labels, c in found
            if truth and pred:
                stats[c]["tp"] += 1
            elif pred:
                stats[c]["fp"] += 1
            elif truth:
                stats[c]["fn"] += 1
    out: dict[str, dict[str, float]] = {}
    for c, s in stats.items():
        tp, fp, fn = s["tp"], s["fp"], s["fn"]
        out[c] = {
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
            "support": float(tp + fn),
            "tp": float(tp),
            "fp": float(fp),
            "fn": float(fn),
        }
    return out
