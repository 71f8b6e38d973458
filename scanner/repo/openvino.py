"""OpenVINO IR: the ``.xml`` graph judged, its headerless ``.bin`` weights identified by it.

The per-file scan sees the XML as text and the ``.bin`` as an unknown format
(it has no magic). Here every XML whose root is ``<net>`` with ``<layers>`` is
parsed (after refusing any DTD, so no entity tricks reach the parser), its
layer types checked against the standard opsets (anything else needs a native
extension), and every Const layer's byte range checked against the sibling
``.bin``. When all ranges fit, that ``.bin`` -- if it matched no format and
has no other finding -- is relabelled as OpenVINO weights with full coverage.
"""

from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from ..findings import Coverage, FileResult, Severity
from ..io.reader import ReaderError
from ..limits import Limits
from ..resources import signatures_dir
from ..rules import RuleDB
from ..sources.base import Artifact, Snapshot

MAX_XML_BYTES = 256 << 20
MAX_FINDINGS = 20
# the standard opsets (openvino.opset1 .. opset17 in OpenVINO 2026.4.1): any other version, "opset99" too, is looked
# up among registered extensions ("Cannot create Abs layer ... from unsupported opset: opset99" without one)
_OPSET = re.compile(r"^opset(?:[1-9]|1[0-7])$")
_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.I)
_NET = re.compile(rb"<(?:[\w.-]+:)?net[\s>/]")
# the only declared encodings pugixml honours (besides UTF-16/32, which are refused here as not UTF-8)
_LATIN1_DECL = re.compile(rb"""<\?xml[^>]*?\sencoding\s*=\s*["'](?:latin1|iso-8859-1)["']""", re.I)
# ops of the openvino-tokenizers extension (openvino_tokenizer.xml / openvino_detokenizer.xml next to LLM IRs)
TOKENIZER_OPS = frozenset(
    {
        "StringTensorPack",
        "StringTensorUnpack",
        "RaggedTensorPack",
        "CaseFold",
        "EqualStr",
        "NormalizeUnicode",
        "RegexNormalization",
        "RegexSplit",
        "WordpieceTokenizer",
        "BPETokenizer",
        "BytesToChars",
        "CombineSegments",
        "RaggedToDense",
        "RaggedToSparse",
        "RaggedToRagged",
        "StringToHashBucket",
        "VocabEncoder",
        "VocabDecoder",
        "CharsToBytes",
        "TrieTokenizer",
        "FuzeRagged",
        "ByteFallback",
        "SentencepieceTokenizer",
        "SentencepieceDetokenizer",
        "SentencepieceStreamDetokenizer",
        "UTF8Validate",
        "SpecialTokensSplit",
        "Truncate",
        "UnigramTokenizer",
    }
)


@functools.lru_cache(maxsize=1)
def known_ops() -> frozenset[str]:
    try:
        lines = (signatures_dir() / "openvino_ops.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return frozenset()
    return frozenset(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


class IRMalformed(Exception):
    """Not well-formed XML: the runtime rejects it too."""


class IRUnsafe(Exception):
    """The XML declares a DTD or entities, or uses namespaces; it is not judged."""


@dataclass
class Layer:
    id: str
    name: str
    type: str
    version: str | None


@dataclass
class IR:
    layers: list[Layer] = field(default_factory=list)
    consts: list[tuple[Layer, str | None, str | None]] = field(
        default_factory=list
    )  # (layer, offset, size) as written
    custom_layers_decl: bool = False


def looks_like_ir(data: bytes) -> bool:
    """A <net> element anywhere: OpenVINO's parser skips comments and whitespace of any length before the root
    (a 5 KB comment hid an IR that only the first 4 KB were searched for)."""
    return _NET.search(data) is not None


def parse_ir(data: bytes) -> IR | None:
    """The IR's layers, or None when the XML is not an OpenVINO IR. Raises IRUnsafe, IRMalformed."""
    import xml.etree.ElementTree as ET  # only when a repository holds an IR

    if _DTD.search(data):
        raise IRUnsafe("DOCTYPE or ENTITY declaration")
    try:
        # as text, decoded the way pugixml does (expat, handed a str, ignores the declaration; from bytes it
        # honours encoding="windows-1252" and the like, where OpenVINO reads UTF-8 -- measured, OpenVINO 2026.4)
        text = data.decode("latin-1" if _LATIN1_DECL.match(data) else "utf-8-sig")
        root = ET.fromstring(text, parser=ET.XMLParser())  # noqa: S314 - DTDs refused above; no entity declared
    except UnicodeDecodeError as exc:
        raise IRMalformed(f"not UTF-8: {exc}") from None
    except ET.ParseError as exc:
        raise IRMalformed(str(exc)) from None
    if root.tag.rsplit("}", 1)[-1] == "net" and _namespaced(root):
        # OpenVINO's parser (pugixml) has no namespaces: <layer xmlns="urn:x" type="EvilOp"> is a layer to it and
        # "{urn:x}layer" to ElementTree, so the layer (or the whole <net xmlns=..>) went unjudged
        raise IRUnsafe("XML namespaces, which OpenVINO ignores")
    if root.tag != "net" or root.find("layers") is None:
        return None
    ir = IR()
    ir.custom_layers_decl = any(el.tag == "custom_layers" for el in root.iter())
    for el in root.iter("layer"):
        layer = Layer(el.get("id", ""), el.get("name", ""), el.get("type", ""), el.get("version"))
        ir.layers.append(layer)
        if layer.type in ("Const", "Constant"):
            data_el = el.find("data")
            if data_el is not None and ("offset" in data_el.attrib or "size" in data_el.attrib):
                ir.consts.append((layer, data_el.get("offset"), data_el.get("size")))
    return ir


def _namespaced(root: Any) -> bool:
    return any(el.tag.startswith("{") or any(k.startswith("{") for k in el.attrib) for el in root.iter())


def custom_layers(ir: IR) -> list[Layer]:
    known = known_ops()
    return [
        ly
        for ly in ir.layers
        if (ly.version is not None and not _OPSET.match(ly.version)) or ly.type not in known
    ]


def _partial(fr: FileResult, note: str) -> None:
    if fr.coverage is Coverage.FULL:
        fr.coverage = Coverage.PARTIAL
    fr.coverage_notes.append(note)


def _read(art: Artifact, cap: int) -> bytes | None:
    try:
        with art.open() as r:
            return r.read(0, min(r.size, cap))
    except (ReaderError, OSError):
        return None


def _relabel(fr: FileResult, xml_path: str, rules: RuleDB, n_consts: int) -> None:
    if fr.format != "unknown" or any(f.rule_id != "FORMAT-UNKNOWN" for f in fr.findings):
        return
    fr.findings = []
    fr.coverage_notes = [n for n in fr.coverage_notes if n != "unknown format"]
    if not fr.coverage_notes:
        fr.coverage = Coverage.FULL
    fr.format = "openvino-weights"
    fr.findings.append(
        rules.finding(
            "OPENVINO-WEIGHTS",
            f"raw constant data of {xml_path} ({n_consts} Const layers)",
            fr.path,
            evidence={"xml": xml_path, "consts": n_consts},
        )
    )


def _check_xml(
    art: Artifact, fr: FileResult, arts: dict[str, Artifact], results: dict[str, FileResult], rules: RuleDB
) -> None:
    def add(rule: str, message: str, severity: Severity | None = None, **ev: Any) -> None:
        fr.findings.append(rules.finding(rule, message, fr.path, severity=severity, evidence=ev))

    if art.size > MAX_XML_BYTES:
        head = _read(art, 1 << 20) or b""
        if looks_like_ir(head):
            add(
                "LIMIT-EXCEEDED",
                f"OpenVINO IR XML larger than {MAX_XML_BYTES} bytes not parsed",
                limit="max_xml_bytes",
            )
            _partial(fr, "OpenVINO IR XML too large to parse")
        return
    data = _read(art, MAX_XML_BYTES)
    if data is None or not looks_like_ir(data):
        return
    try:
        ir = parse_ir(data)
    except IRUnsafe as exc:
        add("OPENVINO-XML-UNSAFE", f"XML with an OpenVINO <net> root uses {exc}; not judged")
        _partial(fr, "OpenVINO IR XML not judged")
        return
    except IRMalformed as exc:
        # OpenVINO reads IRs with pugixml, which loads what ElementTree refuses (an element after </net>, a
        # repeated attribute -- it takes the first --, an undefined entity): an IR the runtime still builds
        add(
            "OPENVINO-XML-UNSAFE",
            f"XML with an OpenVINO <net> element is not well-formed ({str(exc)[:120]}); OpenVINO's lenient "
            "parser may still load it: not judged",
        )
        _partial(fr, "OpenVINO IR XML not judged")
        return
    if ir is None:
        return
    _check_ops(ir, add)
    bin_path = art.path[: -len(".xml")] + ".bin"
    bin_art = arts.get(bin_path)
    used = [(ly, o, s) for ly, o, s in ir.consts if s not in (None, "0")]
    if bin_art is None:
        if used:
            add(
                "OPENVINO-WEIGHTS-MISSING",
                f"{len(used)} Const layers read {posixpath.basename(bin_path)}, which is not in the scanned set",
                weights=bin_path,
                consts=len(used),
            )
        return
    bad = 0
    for ly, off, size in ir.consts:
        try:
            o, n = int(off or ""), int(size or "")
            ok = o >= 0 and n >= 0 and o + n <= bin_art.size
        except ValueError:
            ok = False
        if not ok:
            bad += 1
            if bad <= MAX_FINDINGS:
                add(
                    "OPENVINO-WEIGHTS-RANGE",
                    f"Const layer {ly.name[:100]!r} reads offset={off!s:.30} size={size!s:.30} of "
                    f"{posixpath.basename(bin_path)}, which has {bin_art.size} bytes",
                    layer=ly.name[:200],
                    offset=str(off)[:40],
                    size=str(size)[:40],
                    bin_size=bin_art.size,
                )
    bin_fr = results.get(bin_path)
    if not bad and bin_fr is not None:
        _relabel(bin_fr, art.path, rules, len(ir.consts))


def _check_ops(ir: IR, add: Any) -> None:
    custom = custom_layers(ir)
    if ir.custom_layers_decl:
        add("OPENVINO-CUSTOM-OP", "IR declares custom layers or extensions")
    if not custom:
        return
    types = sorted({f"{ly.type}@{ly.version}" for ly in custom})
    tokenizer_only = all(ly.type in TOKENIZER_OPS and ly.version == "extension" for ly in custom)
    add(
        "OPENVINO-CUSTOM-OP",
        f"{len(custom)} layer(s) of {len(types)} non-standard type(s) need a native extension: {', '.join(types[:10])}"
        + (" (all from openvino-tokenizers)" if tokenizer_only else ""),
        severity=Severity.MEDIUM if tokenizer_only else None,
        types=types[:50],
        first_layer=custom[0].name[:200],
        openvino_tokenizers=tokenizer_only,
    )


def check_openvino(
    snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, limits: Limits
) -> list[FileResult]:
    arts = {a.path: a for a in snapshot.artifacts}
    for path in sorted(arts):
        if not path.lower().endswith(".xml"):
            continue
        fr = results.get(path)  # only the XML files' results: a ResultTable loads what is asked for
        # any format, not only "text": pugixml skips text before the root, so "tree\n<net ..>" (LightGBM
        # text to the sniffers) is still an IR to OpenVINO
        if fr is None:
            continue
        _check_xml(arts[path], fr, arts, results, rules)
    return []


REPO_CHECKS = [check_openvino]
