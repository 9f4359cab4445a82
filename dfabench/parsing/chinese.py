"""Chinese answers -> English words the answer grammar reads (open MLLMs often reply in Chinese).

Chinese has no spaces and a different word order, but the words that carry a DF-D / DF-C verdict are
few: yes/no (是/否), real/forged (真实/伪造), negators (没有, 未, 不), hedges (可能), the category and
technique vocabulary (换脸, 面部重演, 属性编辑, 完全合成) and the structure words around them (被 "was",
由 "by", 是否 "whether"). :func:`translate` replaces each known word, longest first, by its English
counterpart padded with spaces, drops the remaining Chinese characters and maps Chinese punctuation;
the English rules (negation scope, leading answer, hedges) then read the result. A bare 是 / 否 at the
start of a sentence (or after 答案：) is the yes / no answer to the question.
"""

from __future__ import annotations

import re

#: Chinese word -> English words, as the answer grammar reads them. Longer entries win over shorter ones.
LEXICON: dict[str, str] = {
    # uncertainty and refusals
    "无法确定": "cannot determine", "无法判断": "cannot determine", "难以判断": "hard to determine",
    "难以确定": "hard to determine", "不能确定": "cannot determine", "无法识别": "cannot identify",
    "很难说": "hard to say", "很难判断": "hard to determine", "说不准": "not sure", "不确定": "not sure",
    "不清楚": "unclear", "不知道": "do not know",
    # verdict words
    "深度伪造": "deepfake", "伪造": "forged", "虚假": "fake", "假的": "fake", "假": "fake", "篡改": "tampered",
    "真实存在": "real", "真实": "real", "真的": "real", "真人": "real person", "真": "real",
    "未经处理": "unprocessed original photo", "原始照片": "original photo", "原图": "original photo",
    "操纵": "manipulated", "操控": "manipulated", "处理过": "processed",
    # categories and techniques
    "人脸交换": "face swap", "面部交换": "face swap", "换脸": "face swap", "面部替换": "face replacement",
    "人脸替换": "face replacement", "身份替换": "identity replacement", "身份交换": "identity swap",
    "面部重演": "face reenactment", "人脸重演": "face reenactment", "重演": "reenactment",
    "表情迁移": "expression transfer", "表情转移": "expression transfer", "唇形同步": "lip sync",
    "口型同步": "lip sync", "驱动": "driven", "动画": "animated",
    "属性编辑": "attribute editing", "人脸编辑": "face editing", "面部编辑": "face editing", "编辑": "edited",
    "修改": "modified", "改变": "changed", "替换": "replaced", "交换": "swapped",
    "完全合成": "entirely synthesized", "整体合成": "entirely synthesized", "合成": "synthesized",
    "生成对抗网络": "generative adversarial network", "生成模型": "generative model",
    "扩散模型": "diffusion model", "人工智能": "ai", "生成": "generated", "不存在": "does not exist",
    # attributes
    "年龄": "age", "发型": "hairstyle", "头发颜色": "hair color", "头发": "hair", "发色": "hair color",
    "眼镜": "glasses", "微笑": "smile", "笑容": "smile", "胡子": "beard", "胡须": "beard", "妆容": "makeup",
    "化妆": "makeup", "性别": "gender", "肤色": "skin tone", "颜色": "color",
    "表情": "expression", "姿态": "pose", "姿势": "pose", "嘴唇动作": "lip movements", "口型": "lip movements",
    "嘴唇": "lips", "动作": "movements", "音频": "audio", "语音": "speech", "同步": "synced",
    "身份": "identity", "视频": "video",
    # negators, hedges, connectives
    "并没有": "no", "没有": "no", "并不": "not", "并非": "is not", "不是": "is not", "未": "not", "无": "no",
    "不": "not", "很可能": "likely", "可能": "possibly", "也许": "maybe", "或许": "maybe", "大概": "probably",
    "似乎": "seems", "看起来": "looks", "好像": "seems", "是否": "whether", "或者": "or", "或": "or",
    "而是": "but", "但是": "but", "不过": "but", "然而": "however", "但": "but", "因为": "because",
    "所以": "so", "因此": "so", "和": "and", "与": "and", "及": "and",
    # structure words
    "答案": "answer", "选项": "option", "判断为": "is", "判定为": "is", "认为是": "is", "属于": "is",
    "经过了": "has been", "经过": "has been", "被": "was", "由": "by", "使用了": "used", "使用": "using",
    "用": "using", "是": "is", "这张": "this", "这个": "this", "这是": "this is", "这": "this", "该": "the",
    "另一段": "another", "另一个": "another", "另一人": "another person", "他人": "another person",
    "别人": "someone else", "人脸": "face", "面部": "face", "脸部": "face", "脸": "face", "整张": "whole",
    "整个": "whole", "完全": "entirely", "图像": "image", "图片": "image", "照片": "photo", "人": "person",
    "技术": "technique", "痕迹": "traces", "迹象": "signs", "发现": "found", "任何": "any", "明显": "clear",
    "存在": "there are", "一张": "a",
}

_WORDS = re.compile("|".join(re.escape(w) for w in sorted(LEXICON, key=len, reverse=True)))
_HAN = re.compile(r"[\u3400-\u9fff]")
_BOUNDARY = r"(?:^|(?<=[:.!;\n]))\s*"
_AFTER = r"\s*(?=[,.!;\n]|$)"
_BARE_YES = re.compile(_BOUNDARY + r"(?:是的|是|对的|对|没错)" + _AFTER)
_BARE_NO = re.compile(_BOUNDARY + r"(?:不是|否|不对|没有|不)" + _AFTER)
_PUNCTUATION = str.maketrans({"。": ". ", "、": ", ", "「": " ", "」": " ", "『": " ", "』": " ", "《": " ",
                              "》": " ", "【": " ", "】": " "})


def has_chinese(text: str) -> bool:
    return _HAN.search(text) is not None


def translate(text: str) -> str:
    """The Chinese words of ``text`` in English (NFKC-normalised input: ASCII punctuation already)."""
    text = text.translate(_PUNCTUATION)
    text = _BARE_YES.sub(" yes ", text)
    text = _BARE_NO.sub(" no ", text)
    text = _WORDS.sub(lambda m: f" {LEXICON[m.group(0)]} ", text)
    return _HAN.sub(" ", text)
