// An optional access token for requests that need a signed-in role, kept in sessionStorage:
// it lasts as long as the tab and is never written anywhere else. The box says plainly
// whether one is set, and the token is only sent with the requests that need it.
import { h, replace } from "../shared/dom";
import { onLangChange, strings, t } from "../shared/i18n";

const KEY = "landql.token";

strings({
  en: {
    "tok.title": "Signed-in access",
    "tok.text":
      "Some lists, such as everything one person owns, need a signed-in role. Paste an access token (a citizen's is enough). It is kept only in this browser tab and sent only with those requests.",
    "tok.label": "Access token",
    "tok.save": "Use this token",
    "tok.forget": "Forget token",
    "tok.set": "A token is set for this tab.",
    "tok.unset": "No token: you are browsing anonymously.",
  },
  te: {
    "tok.title": "సైన్-ఇన్ ప్రవేశం",
    "tok.text":
      "ఒక వ్యక్తికి ఉన్న అన్ని ఆస్తుల జాబితా వంటి కొన్ని జాబితాలకు సైన్-ఇన్ పాత్ర అవసరం. యాక్సెస్ టోకెన్‌ను అతికించండి (పౌరుడి టోకెన్ సరిపోతుంది). ఇది ఈ బ్రౌజర్ ట్యాబ్‌లో మాత్రమే ఉంటుంది, ఆ అభ్యర్థనలతో మాత్రమే పంపబడుతుంది.",
    "tok.label": "యాక్సెస్ టోకెన్",
    "tok.save": "ఈ టోకెన్ వాడండి",
    "tok.forget": "టోకెన్ మర్చిపోండి",
    "tok.set": "ఈ ట్యాబ్‌కు టోకెన్ సెట్ చేయబడింది.",
    "tok.unset": "టోకెన్ లేదు: మీరు అనామకంగా చూస్తున్నారు.",
  },
  kn: {
    "tok.title": "ಸೈನ್-ಇನ್ ಪ್ರವೇಶ",
    "tok.text":
      "ಒಬ್ಬ ವ್ಯಕ್ತಿಯ ಎಲ್ಲ ಆಸ್ತಿಗಳ ಪಟ್ಟಿಯಂತಹ ಕೆಲವು ಪಟ್ಟಿಗಳಿಗೆ ಸೈನ್-ಇನ್ ಪಾತ್ರ ಬೇಕು. ಪ್ರವೇಶ ಟೋಕನ್ ಅಂಟಿಸಿ (ನಾಗರಿಕರ ಟೋಕನ್ ಸಾಕು). ಇದು ಈ ಬ್ರೌಸರ್ ಟ್ಯಾಬ್‌ನಲ್ಲಿ ಮಾತ್ರ ಇರುತ್ತದೆ ಮತ್ತು ಆ ವಿನಂತಿಗಳೊಂದಿಗೆ ಮಾತ್ರ ಕಳುಹಿಸಲಾಗುತ್ತದೆ.",
    "tok.label": "ಪ್ರವೇಶ ಟೋಕನ್",
    "tok.save": "ಈ ಟೋಕನ್ ಬಳಸಿ",
    "tok.forget": "ಟೋಕನ್ ಮರೆತುಬಿಡಿ",
    "tok.set": "ಈ ಟ್ಯಾಬ್‌ಗೆ ಟೋಕನ್ ಹೊಂದಿಸಲಾಗಿದೆ.",
    "tok.unset": "ಟೋಕನ್ ಇಲ್ಲ: ನೀವು ಅನಾಮಧೇಯವಾಗಿ ನೋಡುತ್ತಿದ್ದೀರಿ.",
  },
  hi: {
    "tok.title": "साइन-इन पहुँच",
    "tok.text":
      "कुछ सूचियों, जैसे किसी व्यक्ति की सभी संपत्तियों, के लिए साइन-इन भूमिका चाहिए। एक्सेस टोकन चिपकाएँ (नागरिक का टोकन पर्याप्त है)। यह केवल इस ब्राउज़र टैब में रहता है और केवल उन्हीं अनुरोधों के साथ भेजा जाता है।",
    "tok.label": "एक्सेस टोकन",
    "tok.save": "यह टोकन इस्तेमाल करें",
    "tok.forget": "टोकन भूल जाएँ",
    "tok.set": "इस टैब के लिए टोकन सेट है।",
    "tok.unset": "कोई टोकन नहीं: आप गुमनाम रूप से देख रहे हैं।",
  },
});

export function getToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY)?.trim() || undefined;
  } catch {
    return undefined;
  }
}

export function setToken(v: string | null): void {
  try {
    if (v) sessionStorage.setItem(KEY, v.trim().replace(/^Bearer\s+/i, ""));
    else sessionStorage.removeItem(KEY);
  } catch {
    // storage refused: the token just isn't kept
  }
}

/** The token box; `changed` runs after a token is saved or forgotten. */
export function tokenBox(changed: () => void): HTMLElement {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false" });
  const state = h("p", { class: "small", role: "status" });
  const title = h("h2", { id: "token-h" });
  const text = h("p", { class: "muted small" });
  const label = h("label", { for: "token" });
  const save = h("button", { type: "submit" });
  const forget = h("button", {
    type: "button",
    class: "secondary",
    onclick: () => {
      setToken(null);
      input.value = "";
      draw();
      changed();
    },
  });
  const draw = () => {
    title.textContent = t("tok.title");
    text.textContent = t("tok.text");
    label.textContent = t("tok.label");
    save.textContent = t("tok.save");
    forget.textContent = t("tok.forget");
    forget.hidden = !getToken();
    replace(state, getToken() ? h("span", { class: "ok" }, t("tok.set")) : h("span", { class: "muted" }, t("tok.unset")));
  };
  onLangChange(draw);
  draw();
  return h(
    "section",
    { class: "card token-box", id: "token-box", "aria-labelledby": "token-h" },
    title,
    text,
    h(
      "form",
      {
        class: "token-form",
        onsubmit: (e: Event) => {
          e.preventDefault();
          setToken(input.value || null);
          input.value = "";
          draw();
          changed();
        },
      },
      label,
      h("div", { class: "row" }, input, save, forget),
    ),
    state,
  );
}
