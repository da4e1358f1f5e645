// What the three citizen pages say about the same things: verification statuses, land and
// document types, ledger events, state names and the provenance badge — one wording, four
// languages. Values from the records that we have no translation for are shown as stored.
import { h } from "../shared/dom";
import { strings, t } from "../shared/i18n";
import { humanize } from "./format";
import "./citizen.css";

strings({
  en: {
    "st.PENDING": "Pending",
    "st.VERIFIED": "Verified",
    "st.DISPUTED": "Disputed",
    "st.REJECTED": "Rejected",
    "lt.agricultural": "Agricultural",
    "lt.dry_land": "Dry land",
    "lt.wet_land": "Wet land",
    "lt.plantation": "Plantation",
    "lt.residential": "Residential",
    "lt.commercial": "Commercial",
    "lt.industrial": "Industrial",
    "doc.sale_deed": "Sale deed",
    "doc.encumbrance_certificate": "Encumbrance certificate",
    "doc.mutation_order": "Mutation order",
    "doc.survey_sketch": "Survey sketch",
    "doc.pattadar_passbook": "Pattadar passbook",
    "doc.rtc_extract": "RTC extract",
    "doc.legal_heir_certificate": "Legal heir certificate",
    "ev.PropertyCreated": "Registered",
    "ev.PropertyTransferred": "Ownership transferred",
    "ev.VerificationUpdated": "Verification status changed",
    "ev.PropertyCorrected": "Record corrected",
    "ev.DocumentLinked": "Document linked",
    "state.TS": "Telangana",
    "state.AP": "Andhra Pradesh",
    "state.KA": "Karnataka",
    "prov.ledger": "Read from the ledger",
    "prov.current": "Replica, up to date",
    "prov.behind1": "Replica, 1 block behind",
    "prov.behind": "Replica, {n} blocks behind",
    "prov.unreachable": "Stale: ledger unreachable",
    "prov.stale": "Stale: replica {n} blocks behind",
    "fresh.current": "Up to date",
    "fresh.behind1": "1 block behind",
    "fresh.behind": "{n} blocks behind",
    "fresh.unknown": "Chain height unknown: ledger unreachable",
    "share": "{n}% share",
    "so": "Father: {name}",
    "survey": "Survey no. {n}",
  },
  te: {
    "st.PENDING": "పెండింగ్‌లో ఉంది",
    "st.VERIFIED": "ధృవీకరించబడింది",
    "st.DISPUTED": "వివాదంలో ఉంది",
    "st.REJECTED": "తిరస్కరించబడింది",
    "lt.agricultural": "వ్యవసాయ భూమి",
    "lt.dry_land": "మెట్ట భూమి",
    "lt.wet_land": "మాగాణి భూమి",
    "lt.plantation": "తోట భూమి",
    "lt.residential": "నివాస స్థలం",
    "lt.commercial": "వాణిజ్య స్థలం",
    "lt.industrial": "పారిశ్రామిక స్థలం",
    "doc.sale_deed": "విక్రయ దస్తావేజు",
    "doc.encumbrance_certificate": "ఋణభార ధృవీకరణ పత్రం",
    "doc.mutation_order": "మ్యుటేషన్ ఉత్తర్వు",
    "doc.survey_sketch": "సర్వే నక్ష",
    "doc.pattadar_passbook": "పట్టాదారు పాసుపుస్తకం",
    "doc.rtc_extract": "ఆర్‌టీసీ సారాంశం",
    "doc.legal_heir_certificate": "వారసత్వ ధృవీకరణ పత్రం",
    "ev.PropertyCreated": "నమోదు చేయబడింది",
    "ev.PropertyTransferred": "యాజమాన్యం బదిలీ అయింది",
    "ev.VerificationUpdated": "ధృవీకరణ స్థితి మారింది",
    "ev.PropertyCorrected": "రికార్డు సవరించబడింది",
    "ev.DocumentLinked": "పత్రం జోడించబడింది",
    "state.TS": "తెలంగాణ",
    "state.AP": "ఆంధ్రప్రదేశ్",
    "state.KA": "కర్ణాటక",
    "prov.ledger": "లెడ్జర్ నుండి నేరుగా చదివింది",
    "prov.current": "ప్రతిరూపం, తాజాగా ఉంది",
    "prov.behind1": "ప్రతిరూపం, 1 బ్లాక్ వెనుక",
    "prov.behind": "ప్రతిరూపం, {n} బ్లాక్‌లు వెనుక",
    "prov.unreachable": "పాతది కావచ్చు: లెడ్జర్ అందుబాటులో లేదు",
    "prov.stale": "పాతది: ప్రతిరూపం {n} బ్లాక్‌లు వెనుక",
    "fresh.current": "తాజాగా ఉంది",
    "fresh.behind1": "1 బ్లాక్ వెనుక",
    "fresh.behind": "{n} బ్లాక్‌లు వెనుక",
    "fresh.unknown": "చైన్ ఎత్తు తెలియదు: లెడ్జర్ అందుబాటులో లేదు",
    "share": "{n}% వాటా",
    "so": "తండ్రి: {name}",
    "survey": "సర్వే నం. {n}",
  },
  kn: {
    "st.PENDING": "ಬಾಕಿ ಇದೆ",
    "st.VERIFIED": "ಪರಿಶೀಲಿಸಲಾಗಿದೆ",
    "st.DISPUTED": "ವಿವಾದದಲ್ಲಿದೆ",
    "st.REJECTED": "ತಿರಸ್ಕರಿಸಲಾಗಿದೆ",
    "lt.agricultural": "ಕೃಷಿ ಭೂಮಿ",
    "lt.dry_land": "ಒಣ ಭೂಮಿ",
    "lt.wet_land": "ತರಿ ಭೂಮಿ",
    "lt.plantation": "ತೋಟದ ಭೂಮಿ",
    "lt.residential": "ವಸತಿ",
    "lt.commercial": "ವಾಣಿಜ್ಯ",
    "lt.industrial": "ಕೈಗಾರಿಕಾ",
    "doc.sale_deed": "ಕ್ರಯ ಪತ್ರ",
    "doc.encumbrance_certificate": "ಋಣಭಾರ ಪ್ರಮಾಣಪತ್ರ",
    "doc.mutation_order": "ಖಾತಾ ಬದಲಾವಣೆ ಆದೇಶ",
    "doc.survey_sketch": "ಸರ್ವೆ ನಕ್ಷೆ",
    "doc.pattadar_passbook": "ಪಟ್ಟಾದಾರ್ ಪಾಸ್‌ಬುಕ್",
    "doc.rtc_extract": "ಪಹಣಿ (ಆರ್‌ಟಿಸಿ)",
    "doc.legal_heir_certificate": "ವಾರಸುದಾರ ಪ್ರಮಾಣಪತ್ರ",
    "ev.PropertyCreated": "ನೋಂದಾಯಿಸಲಾಗಿದೆ",
    "ev.PropertyTransferred": "ಮಾಲೀಕತ್ವ ವರ್ಗಾವಣೆಯಾಗಿದೆ",
    "ev.VerificationUpdated": "ಪರಿಶೀಲನಾ ಸ್ಥಿತಿ ಬದಲಾಗಿದೆ",
    "ev.PropertyCorrected": "ದಾಖಲೆ ತಿದ್ದುಪಡಿಯಾಗಿದೆ",
    "ev.DocumentLinked": "ದಸ್ತಾವೇಜು ಜೋಡಿಸಲಾಗಿದೆ",
    "state.TS": "ತೆಲಂಗಾಣ",
    "state.AP": "ಆಂಧ್ರಪ್ರದೇಶ",
    "state.KA": "ಕರ್ನಾಟಕ",
    "prov.ledger": "ಲೆಡ್ಜರ್‌ನಿಂದ ನೇರವಾಗಿ ಓದಲಾಗಿದೆ",
    "prov.current": "ಪ್ರತಿಕೃತಿ, ನವೀಕೃತವಾಗಿದೆ",
    "prov.behind1": "ಪ್ರತಿಕೃತಿ, 1 ಬ್ಲಾಕ್ ಹಿಂದಿದೆ",
    "prov.behind": "ಪ್ರತಿಕೃತಿ, {n} ಬ್ಲಾಕ್‌ಗಳು ಹಿಂದಿದೆ",
    "prov.unreachable": "ಹಳೆಯದಿರಬಹುದು: ಲೆಡ್ಜರ್ ಸಿಗುತ್ತಿಲ್ಲ",
    "prov.stale": "ಹಳೆಯದು: ಪ್ರತಿಕೃತಿ {n} ಬ್ಲಾಕ್‌ಗಳು ಹಿಂದಿದೆ",
    "fresh.current": "ನವೀಕೃತವಾಗಿದೆ",
    "fresh.behind1": "1 ಬ್ಲಾಕ್ ಹಿಂದಿದೆ",
    "fresh.behind": "{n} ಬ್ಲಾಕ್‌ಗಳು ಹಿಂದಿದೆ",
    "fresh.unknown": "ಚೈನ್ ಎತ್ತರ ತಿಳಿದಿಲ್ಲ: ಲೆಡ್ಜರ್ ಸಿಗುತ್ತಿಲ್ಲ",
    "share": "{n}% ಪಾಲು",
    "so": "ತಂದೆ: {name}",
    "survey": "ಸರ್ವೆ ನಂ. {n}",
  },
  hi: {
    "st.PENDING": "लंबित",
    "st.VERIFIED": "सत्यापित",
    "st.DISPUTED": "विवादित",
    "st.REJECTED": "अस्वीकृत",
    "lt.agricultural": "कृषि भूमि",
    "lt.dry_land": "असिंचित भूमि",
    "lt.wet_land": "सिंचित भूमि",
    "lt.plantation": "बागान भूमि",
    "lt.residential": "आवासीय",
    "lt.commercial": "वाणिज्यिक",
    "lt.industrial": "औद्योगिक",
    "doc.sale_deed": "विक्रय विलेख",
    "doc.encumbrance_certificate": "भार प्रमाणपत्र",
    "doc.mutation_order": "नामांतरण आदेश",
    "doc.survey_sketch": "सर्वेक्षण नक्शा",
    "doc.pattadar_passbook": "पट्टादार पासबुक",
    "doc.rtc_extract": "आरटीसी उद्धरण",
    "doc.legal_heir_certificate": "कानूनी उत्तराधिकारी प्रमाणपत्र",
    "ev.PropertyCreated": "पंजीकृत",
    "ev.PropertyTransferred": "स्वामित्व हस्तांतरित",
    "ev.VerificationUpdated": "सत्यापन स्थिति बदली",
    "ev.PropertyCorrected": "अभिलेख संशोधित",
    "ev.DocumentLinked": "दस्तावेज़ जोड़ा गया",
    "state.TS": "तेलंगाना",
    "state.AP": "आंध्र प्रदेश",
    "state.KA": "कर्नाटक",
    "prov.ledger": "सीधे लेजर से पढ़ा गया",
    "prov.current": "प्रतिकृति, अद्यतन",
    "prov.behind1": "प्रतिकृति, 1 ब्लॉक पीछे",
    "prov.behind": "प्रतिकृति, {n} ब्लॉक पीछे",
    "prov.unreachable": "पुराना हो सकता है: लेजर उपलब्ध नहीं",
    "prov.stale": "पुराना: प्रतिकृति {n} ब्लॉक पीछे",
    "fresh.current": "अद्यतन",
    "fresh.behind1": "1 ब्लॉक पीछे",
    "fresh.behind": "{n} ब्लॉक पीछे",
    "fresh.unknown": "चेन की ऊँचाई अज्ञात: लेजर उपलब्ध नहीं",
    "share": "{n}% हिस्सा",
    "so": "पिता: {name}",
    "survey": "सर्वे नं. {n}",
  },
});

export type Status = "PENDING" | "VERIFIED" | "DISPUTED" | "REJECTED";

/**
 * A label with elements in its placeholders (`t("so", {})` keeps `{name}`, which is then
 * replaced by `nodes.name`), so translations can put the name wherever their grammar wants.
 */
export function tNodes(key: string, nodes: Record<string, Node | (Node | string)[]>): (Node | string)[] {
  return t(key)
    .split(/\{(\w+)\}/)
    .flatMap((part, i) => {
      if (i % 2 === 0) return part ? [part] : [];
      const n = nodes[part];
      return n == null ? [`{${part}}`] : Array.isArray(n) ? n : [n];
    });
}

/** The label of a key with a known translation, else `fallback` as stored. */
function known(key: string, fallback: string): string {
  const s = t(key);
  return s === key ? fallback : s;
}

export function statusLabel(s: string): string {
  return known(`st.${s.toUpperCase()}`, humanize(s.toLowerCase()));
}

/** A status as a small coloured badge (colour is never the only signal: the word is there). */
export function statusBadge(s: string): HTMLElement {
  return h("span", { class: `badge st-${s.toLowerCase()}` }, statusLabel(s));
}

/** "Dry land" (record text) or "dry_land" (facet key) → the page-language label. */
export function landTypeLabel(s: string): string {
  const key = s.trim().toLowerCase().replace(/[\s-]+/g, "_");
  return known(`lt.${key}`, s);
}

export function docTypeLabel(s: string): string {
  return known(`doc.${s}`, humanize(s));
}

export function eventLabel(s: string): string {
  return known(`ev.${s}`, s);
}

export function stateName(code: string): string {
  return known(`state.${code.toUpperCase()}`, code);
}

export interface Provenance {
  source: "REPLICA" | "LEDGER";
  channel: string;
  blockNumber: number;
  txId: string;
  recordHash: string;
  indexedAt: string | null;
  replicaLagBlocks: number;
  stale: boolean;
}

/** Words and tone for where an answer came from and how fresh it is. */
export function provenanceText(p: Provenance): { text: string; tone: "ok" | "warn" | "bad" } {
  if (p.source === "LEDGER") return { text: t("prov.ledger"), tone: "ok" };
  const n = p.replicaLagBlocks;
  if (n < 0) return { text: t("prov.unreachable"), tone: "bad" };
  if (p.stale) return { text: t("prov.stale", { n }), tone: "bad" };
  if (n === 0) return { text: t("prov.current"), tone: "ok" };
  return { text: n === 1 ? t("prov.behind1") : t("prov.behind", { n }), tone: "warn" };
}

/** How far a channel's replica is behind its chain, in words. */
export function lagText(lagBlocks: number | null, chainHeight: number | null): string {
  if (chainHeight == null || lagBlocks == null) return t("fresh.unknown");
  if (lagBlocks <= 0) return t("fresh.current");
  return lagBlocks === 1 ? t("fresh.behind1") : t("fresh.behind", { n: lagBlocks });
}
