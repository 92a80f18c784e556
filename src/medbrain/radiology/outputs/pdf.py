"""The signed report as a PDF, in Chinese or English, with one key image per kept nodule.

Chinese text uses reportlab's built-in CID font ``STSong-Light`` (Adobe-GB1; the PDF viewer
supplies the glyphs, so no font file is shipped). Key images are the lung-window (W1500/L−600)
axial slice through each nodule's centre with its bounding box drawn in yellow, as in the viewer.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from numpy.typing import NDArray

from medbrain.radiology.outputs.geometry import clamp_bbox, key_slice, window
from medbrain.radiology.outputs.model import SignedReport, StudyInfo

CJK_FONT = "STSong-Light"
KEY_IMAGE_PX = 240
MAX_KEY_IMAGES = 12
YELLOW = (255, 215, 0)

LABELS: dict[str, dict[str, str]] = {
    "title": {"zh": "胸部CT肺结节报告", "en": "Chest CT lung nodule report"},
    "patient": {"zh": "患者", "en": "Patient"},
    "patient_id": {"zh": "患者编号", "en": "Patient ID"},
    "study": {"zh": "检查", "en": "Study"},
    "study_date": {"zh": "检查日期", "en": "Study date"},
    "accession": {"zh": "检查号", "en": "Accession"},
    "version": {"zh": "报告版本", "en": "Report version"},
    "status_signed": {"zh": "已签发", "en": "signed"},
    "status_draft": {"zh": "草稿(未签发)", "en": "draft (not signed)"},
    "signed_by": {"zh": "签发医师", "en": "Signed by"},
    "signed_at": {"zh": "签发时间", "en": "Signed at"},
    "findings": {"zh": "影像所见", "en": "Findings"},
    "impression": {"zh": "诊断意见", "en": "Impression"},
    "nodules": {"zh": "结节列表", "en": "Nodules"},
    "key_images": {"zh": "关键图像", "en": "Key images"},
    "col_no": {"zh": "编号", "en": "No."},
    "col_site": {"zh": "部位", "en": "Site"},
    "col_type": {"zh": "类型", "en": "Type"},
    "col_size": {"zh": "长径×短径 (mm)", "en": "Long × short (mm)"},
    "col_mean": {"zh": "平均径 (mm)", "en": "Mean (mm)"},
    "col_volume": {"zh": "体积 (mm³)", "en": "Volume (mm³)"},
    "col_slice": {"zh": "层面", "en": "Slice"},
    "col_source": {"zh": "来源", "en": "Source"},
    "source_engine": {"zh": "AI检出", "en": "AI"},
    "source_radiologist": {"zh": "医师补充", "en": "radiologist"},
    "none": {"zh": "未见需报告的肺结节。", "en": "No reportable lung nodule."},
    "lung_rads": {"zh": "Lung-RADS 分类", "en": "Lung-RADS category"},
    "detector": {"zh": "检测算法", "en": "Detector"},
    "guideline": {"zh": "处理指南", "en": "Guideline"},
    "brock": {"zh": "Brock 恶性概率", "en": "Brock probability"},
    "disclaimer": {
        "zh": "本报告由 MedBrain 辅助生成,经放射科医师审核;AI 结果仅供参考。",
        "en": "Drafted with MedBrain and reviewed by a radiologist; AI output is decision support only.",
    },
    "side_right": {"zh": "右肺", "en": "right lung"},
    "side_left": {"zh": "左肺", "en": "left lung"},
    "type_solid": {"zh": "实性", "en": "solid"},
    "type_part-solid": {"zh": "部分实性", "en": "part-solid"},
    "type_ground-glass": {"zh": "磨玻璃", "en": "ground-glass"},
    "type_calcified": {"zh": "钙化", "en": "calcified"},
}


def label(key: str, lang: str) -> str:
    return LABELS[key]["en" if lang == "en" else "zh"]


def _risk_rows(signed: dict[str, Any], lang: str) -> list[list[str]]:
    """Guideline and Brock (with its inputs, or the missing ones) kept in the signed version."""
    from medbrain.imaging.guidelines import brock_lines
    from medbrain.imaging.report import text

    guideline = signed.get("guideline")
    if not guideline:
        return []
    brock = signed.get("brock")
    line = " ".join(brock_lines(brock, lang)) if isinstance(brock, dict) else ""
    return [
        [
            label("guideline", lang),
            text(f"guideline.{guideline}", lang),
            label("brock", lang),
            line or "-",
        ]
    ]


def key_image_png(hu_slice: NDArray[Any], boxes: Sequence[tuple[int, int, int, int]]) -> bytes:
    """PNG of one lung-window slice with yellow rectangles ``(col0, row0, col1, row1)``."""
    from PIL import Image, ImageDraw

    grey = Image.fromarray(window(hu_slice), mode="L").convert("RGB")
    scale = KEY_IMAGE_PX / max(grey.width, grey.height)
    size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
    img = grey.resize(size, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    for c0, r0, c1, r1 in boxes:
        pad = 2
        draw.rectangle(
            (c0 * scale - pad, r0 * scale - pad, (c1 + 1) * scale + pad, (r1 + 1) * scale + pad),
            outline=YELLOW,
            width=2,
        )
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _site(n: dict[str, Any], lang: str) -> str:
    if n.get("lobe"):
        return str(n["lobe"])
    return label(f"side_{n.get('side', 'right')}", lang)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{float(value):.{digits}f}"


def build_pdf(report: SignedReport, study: StudyInfo, hu: NDArray[Any] | None) -> bytes:
    """The PDF bytes of ``report`` in ``report.language``; key images need ``hu``."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import (
        Image,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    lang = "en" if report.language == "en" else "zh"
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    base = getSampleStyleSheet()
    body = ParagraphStyle(
        "mb-body",
        parent=base["BodyText"],
        fontName=CJK_FONT,
        fontSize=10,
        leading=15,
        wordWrap="CJK",
    )
    head = ParagraphStyle("mb-h", parent=body, fontSize=12, leading=18, spaceBefore=6)
    title = ParagraphStyle("mb-title", parent=body, fontSize=16, leading=22, alignment=1)
    small = ParagraphStyle("mb-small", parent=body, fontSize=8, leading=11, textColor=colors.grey)

    def para(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(text).replace("\n", "<br/>"), style)

    status = label("status_signed" if report.is_signed else "status_draft", lang)
    meta_rows = [
        [label("patient", lang), study.patient_name, label("patient_id", lang), study.patient_id],
        [
            label("study_date", lang),
            study.study_date.strftime("%Y-%m-%d") if study.study_date else "-",
            label("accession", lang),
            study.accession or "-",
        ],
        [
            label("version", lang),
            f"v{report.version} · {status}",
            label("lung_rads", lang),
            str(report.lung_rads.get("category", "-")),
        ],
        [
            label("signed_by", lang),
            report.signed_by or "-",
            label("signed_at", lang),
            report.signed_at.strftime("%Y-%m-%d %H:%M UTC") if report.signed_at else "-",
        ],
    ]
    meta_rows += _risk_rows(report.lung_rads, lang)
    grid = TableStyle(
        [
            ("FONTNAME", (0, 0), (-1, -1), CJK_FONT),
            ("FONTSIZE", (0, 0), (-1, -1), 9),
            ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )
    story: list[Any] = [para(label("title", lang), title), Spacer(1, 4 * mm)]
    meta = Table(
        [[para(str(c)) for c in row] for row in meta_rows],
        colWidths=[28 * mm, 57 * mm, 28 * mm, 57 * mm],
    )
    meta.setStyle(grid)
    story += [meta, Spacer(1, 3 * mm)]
    story += [para(label("findings", lang), head), para(report.findings or "-")]
    story += [para(label("impression", lang), head), para(report.impression or "-")]
    story.append(para(label("nodules", lang), head))
    if report.nodules:
        rows = [
            [
                label(k, lang)
                for k in (
                    "col_no",
                    "col_site",
                    "col_type",
                    "col_size",
                    "col_mean",
                    "col_volume",
                    "col_slice",
                    "col_source",
                )
            ]
        ]
        for n in report.nodules:
            rows.append(
                [
                    str(n["key"]),
                    _site(n, lang),
                    label(f"type_{n['type']}", lang),
                    f"{_fmt(n['long_axis_mm'])} × {_fmt(n['short_axis_mm'])}",
                    _fmt(n["mean_diameter_mm"]),
                    _fmt(n["volume_mm3"], 0),
                    str(round(float(n["center_voxel"][2])) + 1),
                    label(f"source_{n.get('source', 'engine')}", lang),
                ]
            )
        table = Table([[para(c) for c in row] for row in rows], repeatRows=1)
        table.setStyle(grid)
        story.append(table)
    else:
        story.append(para(label("none", lang)))
    if hu is not None and report.nodules:
        story.append(para(label("key_images", lang), head))
        cells: list[Any] = []
        for n in report.nodules[:MAX_KEY_IMAGES]:
            k = key_slice(n, int(hu.shape[0]))
            boxes = []
            for other in report.nodules:
                (i0, j0, k0), (i1, j1, k1) = clamp_bbox(other["bbox_voxel"], hu.shape)
                if k0 <= k <= k1:
                    boxes.append((i0, j0, i1, j1))
            png = key_image_png(np.asarray(hu[k]), boxes)
            side = 55 * mm
            ratio = hu.shape[1] / hu.shape[2]
            cells.append(
                [
                    Image(io.BytesIO(png), width=side, height=side * ratio),
                    para(f"{n['key']} · {label('col_slice', lang)} {k + 1}", small),
                ]
            )
        rows_img = [cells[i : i + 3] for i in range(0, len(cells), 3)]
        rows_img[-1] += [""] * (3 - len(rows_img[-1]))
        story.append(Table(rows_img))
    story += [
        Spacer(1, 4 * mm),
        para(f"{label('detector', lang)}: {report.detector}", small),
        para(label("disclaimer", lang), small),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=label("title", lang),
        author=report.signed_by or "MedBrain",
    )
    doc.build(story)
    return out.getvalue()
