// `/`: what landql is, where to go next (search, verify, GraphiQL), and how fresh the
// replica is right now — per ledger channel, blocks behind the chain — kept live by the
// `progress` subscription, or by polling `_meta` every few seconds when the socket fails.
import { h, replace } from "../shared/dom";
import { gql, RequestError } from "../shared/gql";
import { applyStatic, onLangChange, strings, t } from "../shared/i18n";
import { mountLayout } from "../shared/layout";
import { lagText } from "./common";
import { indianNumber } from "./format";
import { subscribe } from "./live";

strings({
  en: {
    "home.title": "Land records, read from the chain",
    "home.lede":
      "This is the public read side of a land registry kept on a permissioned ledger. Every record shown here is a copy of what the ledger holds, with a note of where each answer came from and how fresh it is.",
    "home.search.title": "Search your records",
    "home.search.text": "Find a property by owner's name in any spelling or script, by village, survey number or property ID.",
    "home.verify.title": "Check a record against the chain",
    "home.verify.text": "Compare what this site shows with the ledger itself, and get a proof you can check without trusting us.",
    "home.graphiql.title": "For developers: GraphiQL",
    "home.graphiql.text": "Explore the GraphQL API that these pages use, with its schema and example queries.",
    "home.fresh.title": "How fresh is the copy?",
    "home.fresh.intro": "Each ledger channel is copied block by block. Blocks behind the chain are changes not yet shown here.",
    "home.fresh.channel": "Channel",
    "home.fresh.indexed": "Copied up to block",
    "home.fresh.height": "Chain's last block",
    "home.fresh.behind": "Behind",
    "home.fresh.stale": "Outside the freshness bound",
    "home.fresh.since": "for {s} s",
    "home.fresh.search": "Search index: {state}",
    "home.fresh.searchCurrent": "up to date",
    "home.fresh.searchBehind": "{n} changes behind",
    "home.fresh.searchNone": "not available on this server",
    "home.fresh.none": "No channels are being copied yet.",
    "home.fresh.live": "Live",
    "home.fresh.polled": "Updated {time}",
    "home.fresh.loading": "Asking the server…",
    "home.fresh.failed": "Could not read the replica's progress: {msg}",
    "home.fresh.errors": "The copier skipped transactions it could not read; a registrar can see them.",
  },
  te: {
    "home.title": "చైన్ నుండి చదివిన భూమి రికార్డులు",
    "home.lede":
      "అనుమతి ఆధారిత లెడ్జర్‌పై ఉంచిన భూమి రిజిస్ట్రీకి ఇది ప్రజలు చదవగల భాగం. ఇక్కడ చూపిన ప్రతి రికార్డు లెడ్జర్‌లో ఉన్నదానికి ప్రతి; ప్రతి సమాధానం ఎక్కడి నుండి వచ్చిందో, ఎంత తాజాగా ఉందో కూడా చూపుతుంది.",
    "home.search.title": "మీ రికార్డులను వెతకండి",
    "home.search.text": "యజమాని పేరు (ఏ అక్షరక్రమంలోనైనా, ఏ లిపిలోనైనా), గ్రామం, సర్వే నంబర్ లేదా ఆస్తి ఐడీతో ఆస్తిని కనుగొనండి.",
    "home.verify.title": "రికార్డును చైన్‌తో సరిచూడండి",
    "home.verify.text": "ఈ సైట్ చూపేదాన్ని లెడ్జర్‌తో పోల్చండి; మమ్మల్ని నమ్మకుండానే మీరే తనిఖీ చేయగల రుజువు పొందండి.",
    "home.graphiql.title": "డెవలపర్ల కోసం: GraphiQL",
    "home.graphiql.text": "ఈ పేజీలు ఉపయోగించే GraphQL APIని దాని స్కీమా, ఉదాహరణ ప్రశ్నలతో పరిశీలించండి.",
    "home.fresh.title": "ప్రతి ఎంత తాజాగా ఉంది?",
    "home.fresh.intro": "ప్రతి లెడ్జర్ ఛానెల్ బ్లాక్ వారీగా కాపీ అవుతుంది. చైన్ కంటే వెనుక ఉన్న బ్లాక్‌లు ఇంకా ఇక్కడ కనిపించని మార్పులు.",
    "home.fresh.channel": "ఛానెల్",
    "home.fresh.indexed": "కాపీ అయిన చివరి బ్లాక్",
    "home.fresh.height": "చైన్ చివరి బ్లాక్",
    "home.fresh.behind": "వెనుకబాటు",
    "home.fresh.stale": "తాజాదనం పరిమితి దాటింది",
    "home.fresh.since": "{s} సెకన్లుగా",
    "home.fresh.search": "శోధన సూచిక: {state}",
    "home.fresh.searchCurrent": "తాజాగా ఉంది",
    "home.fresh.searchBehind": "{n} మార్పులు వెనుక",
    "home.fresh.searchNone": "ఈ సర్వర్‌లో అందుబాటులో లేదు",
    "home.fresh.none": "ఇంకా ఏ ఛానెల్ కాపీ కావడం లేదు.",
    "home.fresh.live": "ప్రత్యక్షం",
    "home.fresh.polled": "{time}కి నవీకరించబడింది",
    "home.fresh.loading": "సర్వర్‌ను అడుగుతోంది…",
    "home.fresh.failed": "ప్రతి పురోగతిని చదవలేకపోయాం: {msg}",
    "home.fresh.errors": "చదవలేని లావాదేవీలను కాపీ చేసే ప్రక్రియ వదిలేసింది; రిజిస్ట్రార్ వాటిని చూడగలరు.",
  },
  kn: {
    "home.title": "ಚೈನ್‌ನಿಂದ ಓದಿದ ಭೂ ದಾಖಲೆಗಳು",
    "home.lede":
      "ಅನುಮತಿ ಆಧಾರಿತ ಲೆಡ್ಜರ್‌ನಲ್ಲಿ ಇರಿಸಲಾದ ಭೂ ನೋಂದಣಿಯ ಸಾರ್ವಜನಿಕ ಓದುವ ಭಾಗ ಇದು. ಇಲ್ಲಿ ತೋರಿಸುವ ಪ್ರತಿಯೊಂದು ದಾಖಲೆಯೂ ಲೆಡ್ಜರ್‌ನಲ್ಲಿರುವುದರ ಪ್ರತಿ; ಪ್ರತಿ ಉತ್ತರ ಎಲ್ಲಿಂದ ಬಂತು, ಎಷ್ಟು ಹೊಸದು ಎಂಬುದನ್ನೂ ತೋರಿಸುತ್ತದೆ.",
    "home.search.title": "ನಿಮ್ಮ ದಾಖಲೆಗಳನ್ನು ಹುಡುಕಿ",
    "home.search.text": "ಮಾಲೀಕರ ಹೆಸರು (ಯಾವುದೇ ಕಾಗುಣಿತ ಅಥವಾ ಲಿಪಿಯಲ್ಲಿ), ಗ್ರಾಮ, ಸರ್ವೆ ನಂಬರ್ ಅಥವಾ ಆಸ್ತಿ ಐಡಿಯಿಂದ ಆಸ್ತಿಯನ್ನು ಹುಡುಕಿ.",
    "home.verify.title": "ದಾಖಲೆಯನ್ನು ಚೈನ್‌ನೊಂದಿಗೆ ತಾಳೆ ನೋಡಿ",
    "home.verify.text": "ಈ ತಾಣ ತೋರಿಸುವುದನ್ನು ಲೆಡ್ಜರ್‌ನೊಂದಿಗೆ ಹೋಲಿಸಿ; ನಮ್ಮನ್ನು ನಂಬದೆಯೇ ನೀವೇ ಪರಿಶೀಲಿಸಬಹುದಾದ ಪುರಾವೆ ಪಡೆಯಿರಿ.",
    "home.graphiql.title": "ಡೆವಲಪರ್‌ಗಳಿಗೆ: GraphiQL",
    "home.graphiql.text": "ಈ ಪುಟಗಳು ಬಳಸುವ GraphQL API ಅನ್ನು ಅದರ ಸ್ಕೀಮಾ ಮತ್ತು ಉದಾಹರಣೆ ಪ್ರಶ್ನೆಗಳೊಂದಿಗೆ ಅನ್ವೇಷಿಸಿ.",
    "home.fresh.title": "ಪ್ರತಿ ಎಷ್ಟು ಹೊಸದು?",
    "home.fresh.intro": "ಪ್ರತಿ ಲೆಡ್ಜರ್ ಚಾನೆಲ್ ಬ್ಲಾಕ್‌ವಾರು ನಕಲಾಗುತ್ತದೆ. ಚೈನ್‌ಗಿಂತ ಹಿಂದಿರುವ ಬ್ಲಾಕ್‌ಗಳು ಇನ್ನೂ ಇಲ್ಲಿ ಕಾಣದ ಬದಲಾವಣೆಗಳು.",
    "home.fresh.channel": "ಚಾನೆಲ್",
    "home.fresh.indexed": "ನಕಲಾದ ಕೊನೆಯ ಬ್ಲಾಕ್",
    "home.fresh.height": "ಚೈನ್‌ನ ಕೊನೆಯ ಬ್ಲಾಕ್",
    "home.fresh.behind": "ಹಿಂದೆ",
    "home.fresh.stale": "ತಾಜಾತನದ ಮಿತಿ ಮೀರಿದೆ",
    "home.fresh.since": "{s} ಸೆಕೆಂಡುಗಳಿಂದ",
    "home.fresh.search": "ಹುಡುಕಾಟ ಸೂಚಿ: {state}",
    "home.fresh.searchCurrent": "ನವೀಕೃತವಾಗಿದೆ",
    "home.fresh.searchBehind": "{n} ಬದಲಾವಣೆಗಳು ಹಿಂದಿದೆ",
    "home.fresh.searchNone": "ಈ ಸರ್ವರ್‌ನಲ್ಲಿ ಲಭ್ಯವಿಲ್ಲ",
    "home.fresh.none": "ಇನ್ನೂ ಯಾವ ಚಾನೆಲ್ ಕೂಡ ನಕಲಾಗುತ್ತಿಲ್ಲ.",
    "home.fresh.live": "ನೇರ",
    "home.fresh.polled": "{time}ಕ್ಕೆ ನವೀಕರಿಸಲಾಗಿದೆ",
    "home.fresh.loading": "ಸರ್ವರ್ ಅನ್ನು ಕೇಳಲಾಗುತ್ತಿದೆ…",
    "home.fresh.failed": "ಪ್ರತಿಯ ಪ್ರಗತಿಯನ್ನು ಓದಲಾಗಲಿಲ್ಲ: {msg}",
    "home.fresh.errors": "ಓದಲಾಗದ ವಹಿವಾಟುಗಳನ್ನು ನಕಲು ಪ್ರಕ್ರಿಯೆ ಬಿಟ್ಟಿದೆ; ನೋಂದಣಾಧಿಕಾರಿ ಅವುಗಳನ್ನು ನೋಡಬಹುದು.",
  },
  hi: {
    "home.title": "चेन से पढ़े गए भूमि अभिलेख",
    "home.lede":
      "यह अनुमति-आधारित लेजर पर रखी गई भूमि रजिस्ट्री का सार्वजनिक पठन भाग है। यहाँ दिखाया गया हर अभिलेख लेजर में रखे अभिलेख की प्रति है, और हर उत्तर के साथ बताया जाता है कि वह कहाँ से आया और कितना ताज़ा है।",
    "home.search.title": "अपने अभिलेख खोजें",
    "home.search.text": "मालिक के नाम (किसी भी वर्तनी या लिपि में), गाँव, सर्वे नंबर या संपत्ति आईडी से संपत्ति खोजें।",
    "home.verify.title": "अभिलेख को चेन से मिलाएँ",
    "home.verify.text": "यह साइट जो दिखाती है उसकी तुलना स्वयं लेजर से करें, और ऐसा प्रमाण पाएँ जिसे आप हम पर भरोसा किए बिना जाँच सकें।",
    "home.graphiql.title": "डेवलपर्स के लिए: GraphiQL",
    "home.graphiql.text": "इन पृष्ठों द्वारा उपयोग किए जाने वाले GraphQL API को उसके स्कीमा और उदाहरण क्वेरी के साथ देखें।",
    "home.fresh.title": "प्रति कितनी ताज़ा है?",
    "home.fresh.intro": "हर लेजर चैनल ब्लॉक-दर-ब्लॉक कॉपी होता है। चेन से पीछे के ब्लॉक वे बदलाव हैं जो अभी यहाँ नहीं दिखे।",
    "home.fresh.channel": "चैनल",
    "home.fresh.indexed": "कॉपी हुआ अंतिम ब्लॉक",
    "home.fresh.height": "चेन का अंतिम ब्लॉक",
    "home.fresh.behind": "पीछे",
    "home.fresh.stale": "ताज़गी की सीमा से बाहर",
    "home.fresh.since": "{s} सेकंड से",
    "home.fresh.search": "खोज सूचकांक: {state}",
    "home.fresh.searchCurrent": "अद्यतन",
    "home.fresh.searchBehind": "{n} बदलाव पीछे",
    "home.fresh.searchNone": "इस सर्वर पर उपलब्ध नहीं",
    "home.fresh.none": "अभी कोई चैनल कॉपी नहीं हो रहा।",
    "home.fresh.live": "लाइव",
    "home.fresh.polled": "{time} पर अद्यतन",
    "home.fresh.loading": "सर्वर से पूछ रहे हैं…",
    "home.fresh.failed": "प्रति की प्रगति नहीं पढ़ सके: {msg}",
    "home.fresh.errors": "कॉपी करने वाली प्रक्रिया ने कुछ लेन-देन छोड़ दिए जिन्हें वह पढ़ नहीं सकी; रजिस्ट्रार उन्हें देख सकते हैं।",
  },
});

interface Channel {
  channel: string;
  indexedBlock: number;
  chainHeight: number | null;
  lagBlocks: number | null;
  lagSeconds: number | null;
  stale: boolean;
}
interface Meta {
  channels: Channel[];
  searchIndexSeq: number;
  changeLogSeq: number;
  hasIndexingErrors: boolean;
}

const META = `channels { channel indexedBlock chainHeight lagBlocks lagSeconds stale } searchIndexSeq changeLogSeq hasIndexingErrors`;
/** Poll period when the socket is not available. */
const POLL_MS = 3000;

export function mountLanding(): void {
  const main = mountLayout("home");
  const card = (href: string, key: string) =>
    h(
      "li",
      { class: "card dest" },
      h("h3", {}, h("a", { href, "data-i18n": `home.${key}.title` })),
      h("p", { class: "muted", "data-i18n": `home.${key}.text` }),
    );
  const fresh = h("div", { id: "freshness" });
  const note = h("p", { class: "muted small", id: "fresh-note" });
  replace(
    main,
    h("h1", { "data-i18n": "home.title" }),
    h("p", { class: "lede", "data-i18n": "home.lede" }),
    h("ul", { class: "dests" }, card("/search", "search"), card("/verify", "verify"), card("/graphiql", "graphiql")),
    h(
      "section",
      { "aria-labelledby": "fresh-h" },
      h("h2", { id: "fresh-h", "data-i18n": "home.fresh.title" }),
      h("p", { class: "muted", "data-i18n": "home.fresh.intro" }),
      fresh,
      note,
    ),
  );
  applyStatic(main);

  let meta: Meta | null = null;
  let error: string | null = null;
  let live = false;
  let at: Date | null = null;

  const render = () => {
    document.title = `landql — ${t("home.title")}`;
    if (error && !meta) replace(fresh, h("p", { class: "error", role: "alert" }, t("home.fresh.failed", { msg: error })));
    else if (!meta) replace(fresh, h("p", { class: "muted" }, t("home.fresh.loading")));
    else replace(fresh, table(meta));
    const time = at ? at.toLocaleTimeString() : "";
    replace(
      note,
      live ? h("span", { class: "live-dot", "aria-hidden": "true" }) : null,
      live ? t("home.fresh.live") : at ? t("home.fresh.polled", { time }) : "",
      error && meta ? h("span", { class: "error" }, " · ", t("home.fresh.failed", { msg: error })) : null,
    );
  };
  onLangChange(render);
  render();

  let timer = 0;
  const poll = async () => {
    try {
      meta = (await gql<{ _meta: Meta }>(`{ _meta { ${META} } }`))._meta;
      error = null;
      at = new Date();
    } catch (e) {
      error = e instanceof RequestError ? e.message : String(e);
    }
    render();
    timer = window.setTimeout(poll, POLL_MS);
  };
  // Live first; on any failure (no WebSocket through a proxy, server refusal) poll instead.
  subscribe<{ progress: Meta }>(`subscription { progress { ${META} } }`, {}, {
    next: (d) => {
      meta = d.progress;
      live = true;
      error = null;
      at = new Date();
      render();
    },
    failed: () => {
      live = false;
      if (!timer) void poll();
    },
  });
  // A first answer by plain query too, so the table appears even if the socket is slow.
  void gql<{ _meta: Meta }>(`{ _meta { ${META} } }`)
    .then((d) => {
      if (!meta) {
        meta = d._meta;
        at = new Date();
        render();
      }
    })
    .catch((e: unknown) => {
      if (!meta) {
        error = e instanceof RequestError ? e.message : String(e);
        render();
      }
    });
}

/** One row per channel, then a line for the search index. */
function table(m: Meta): HTMLElement {
  const rows = m.channels.map((c) => {
    const tone = c.chainHeight == null || c.stale ? "bad" : (c.lagBlocks ?? 0) > 0 ? "warn" : "ok";
    const since = c.lagSeconds != null && c.lagSeconds >= 1 ? ` ${t("home.fresh.since", { s: Math.round(c.lagSeconds) })}` : "";
    return h(
      "tr",
      { "data-channel": c.channel },
      h("th", { scope: "row" }, h("code", {}, c.channel)),
      h("td", { class: "num" }, indianNumber(c.indexedBlock)),
      // The chain's last block (height − 1), so the two columns compare block with block.
      h("td", { class: "num" }, c.chainHeight == null ? "—" : indianNumber(c.chainHeight - 1)),
      h(
        "td",
        { class: `lag ${tone}` },
        lagText(c.lagBlocks, c.chainHeight) + since,
        c.stale && c.chainHeight != null ? h("span", { class: "small" }, ` (${t("home.fresh.stale")})`) : null,
      ),
    );
  });
  const idx =
    m.searchIndexSeq < 0
      ? t("home.fresh.searchNone")
      : m.changeLogSeq - m.searchIndexSeq > 0
        ? t("home.fresh.searchBehind", { n: indianNumber(m.changeLogSeq - m.searchIndexSeq) })
        : t("home.fresh.searchCurrent");
  return h(
    "div",
    {},
    m.channels.length === 0
      ? h("p", { class: "muted" }, t("home.fresh.none"))
      : h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "fresh" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, t("home.fresh.channel")),
                h("th", { scope: "col", class: "num" }, t("home.fresh.indexed")),
                h("th", { scope: "col", class: "num" }, t("home.fresh.height")),
                h("th", { scope: "col" }, t("home.fresh.behind")),
              ),
            ),
            h("tbody", {}, rows),
          ),
        ),
    h("p", { id: "search-fresh" }, t("home.fresh.search", { state: idx })),
    m.hasIndexingErrors ? h("p", { class: "warn" }, t("home.fresh.errors")) : null,
  );
}
