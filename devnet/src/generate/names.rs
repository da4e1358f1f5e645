//! Personal names: the name table of `names.tsv` plus a few composition parts, the Latin
//! spelling variants citizens and clerks actually use, the persons built from them and how a
//! person is written in each script.

use std::collections::HashMap;

use rand::Rng;

use super::{mix64, Rng8, NONE};

/// The script a record's names are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Script {
    Latin = 0,
    Telugu = 1,
    Kannada = 2,
    Devanagari = 3,
}

impl Script {
    pub const ALL: [Script; 4] = [
        Script::Latin,
        Script::Telugu,
        Script::Kannada,
        Script::Devanagari,
    ];
    fn bit(self) -> u8 {
        1 << self as u8
    }
    /// The script a name is written in, judged by its first non-ASCII letter.
    pub fn of(name: &str) -> Script {
        for c in name.chars() {
            match c as u32 {
                0x0C00..=0x0C7F => return Script::Telugu,
                0x0C80..=0x0CFF => return Script::Kannada,
                0x0900..=0x097F => return Script::Devanagari,
                _ => {}
            }
        }
        Script::Latin
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    GivenM,
    GivenF,
    Surname,
    /// Sai, Naga, Sri: only in front of another given name.
    Prefix,
    /// Kumari: after a female given name.
    SuffixF,
}

/// Religious naming group: given names and surnames are paired within a group.
const HINDU: u8 = 0;
const MUSLIM: u8 = 1;
const CHRISTIAN: u8 = 2;

/// Spelling variants seen in records and typed by citizens, canonical spelling first (the
/// table's own). Every name of names.tsv has an entry; a name added there later without one
/// gets rule-made variants (th→t, ee/i, sh→s, w/v, doubled letters).
const VARIANTS: &[(&str, &[&str])] = &[
    ("Ravi", &["Ravee", "Ravy"]),
    ("Venkata", &["Venkat", "Venkatta", "Wenkata"]),
    (
        "Srinivas",
        &[
            "Sreenivas",
            "Shrinivas",
            "Srinivasa",
            "Srinivasu",
            "Sreenivasa",
        ],
    ),
    ("Ramesh", &["Ramesha", "Rameshh"]),
    ("Suresh", &["Suresha", "Sooresh"]),
    ("Mahesh", &["Mahesha", "Maheshh"]),
    ("Rajesh", &["Rajesha", "Raajesh"]),
    ("Krishna", &["Krishnaa", "Krisna", "Krushna"]),
    (
        "Narasimha",
        &["Narsimha", "Narasimham", "Narasimhulu", "Narsimhulu"],
    ),
    ("Anil", &["Aneel", "Anill"]),
    ("Prasad", &["Prasadh", "Prasada"]),
    ("Raghu", &["Ragu", "Raghoo"]),
    (
        "Satyanarayana",
        &[
            "Sathyanarayana",
            "Satyanarayan",
            "Satya Narayana",
            "Sathyanarayan",
        ],
    ),
    (
        "Subrahmanyam",
        &["Subramanyam", "Subramaniam", "Subrahmanyum", "Subramanya"],
    ),
    (
        "Venkateswara",
        &[
            "Venkateshwara",
            "Venkateswar",
            "Venkateshwar",
            "Venkateswarlu",
        ],
    ),
    ("Ramana", &["Ramanna", "Ramanaa"]),
    ("Nagaraju", &["Nagaraj", "Naga Raju", "Nagraj"]),
    ("Yadagiri", &["Yadgiri", "Yadagiry"]),
    ("Mallesh", &["Mallesham", "Malesh"]),
    ("Anjaneyulu", &["Anjaneyalu", "Anjenayulu"]),
    ("Basavaraj", &["Basavaraja", "Basavraj"]),
    ("Manjunath", &["Manjunatha", "Manju Nath"]),
    ("Shivakumar", &["Sivakumar", "Shiva Kumar", "Shivkumar"]),
    (
        "Chandrasekhar",
        &[
            "Chandrashekar",
            "Chandrasekar",
            "Chandrashekhar",
            "Chandra Sekhar",
        ],
    ),
    ("Gopal", &["Gopala", "Gopaal"]),
    ("Hanumantha", &["Hanumanth", "Hanumanta", "Hanumantu"]),
    (
        "Madhusudhan",
        &["Madhusudan", "Madhu Sudhan", "Madhusoodan"],
    ),
    ("Sridhar", &["Sreedhar", "Shridhar", "Shreedhar"]),
    ("Prakash", &["Prakasha", "Parkash"]),
    ("Mohammed", &["Mohammad", "Mohamed", "Mohd.", "Md."]),
    ("Abdul", &["Abdool"]),
    ("Joseph", &["Josef"]),
    ("Bhaskar", &["Baskar", "Bhaskara", "Bhasker"]),
    ("Kiran", &["Kiron", "Keeran"]),
    ("Ashok", &["Asok", "Ashoka"]),
    ("Lakshmi", &["Laxmi", "Lakshmy", "Lakshmee", "Laxmy"]),
    ("Padma", &["Padmaa", "Padhma"]),
    ("Sunitha", &["Sunita", "Suneetha", "Suneeta"]),
    ("Kavitha", &["Kavita", "Kaveetha"]),
    ("Madhavi", &["Madhavee", "Madavi", "Maadhavi"]),
    ("Vijaya", &["Vijayaa", "Wijaya"]),
    ("Saraswathi", &["Saraswati", "Saraswathy", "Sarasvati"]),
    ("Manjula", &["Manjulaa", "Manjulla"]),
    ("Swapna", &["Svapna", "Swapana"]),
    ("Sarada", &["Sharada", "Saradha", "Sharadha"]),
    ("Anitha", &["Anita", "Aneetha"]),
    ("Jyothi", &["Jyoti", "Jyothy", "Jothi"]),
    ("Renuka", &["Renukaa", "Renooka"]),
    ("Yashoda", &["Yasoda", "Yashodha"]),
    ("Bharathi", &["Bharati", "Bharathy", "Barathi"]),
    ("Sujatha", &["Sujata", "Sujaatha"]),
    ("Rukmini", &["Rukmani", "Rukhmini"]),
    ("Fathima", &["Fatima", "Fathimah", "Phathima"]),
    ("Mary", &["Mery", "Marry"]),
    ("Shobha", &["Sobha", "Shoba"]),
    ("Radha", &["Radhaa", "Rada"]),
    ("Reddy", &["Reddi", "Redy"]),
    ("Rao", &["Row", "Raao"]),
    ("Naidu", &["Nayudu", "Naydu"]),
    ("Goud", &["Gowd", "Goude", "Gaud"]),
    ("Gowda", &["Gouda", "Gauda"]),
    (
        "Chowdary",
        &[
            "Choudary",
            "Chaudhari",
            "Chowdhary",
            "Choudhary",
            "Chowdari",
        ],
    ),
    ("Yadav", &["Yadava", "Yaadav"]),
    ("Sharma", &["Sarma", "Sharmaa"]),
    ("Varma", &["Verma", "Varmaa"]),
    ("Shetty", &["Shetti", "Shettey"]),
    ("Patil", &["Paatil", "Patill"]),
    ("Devi", &["Devee", "Devy"]),
    ("Babu", &["Baabu"]),
    ("Murthy", &["Murty", "Murthi", "Moorthy"]),
    ("Raju", &["Raaju", "Razu"]),
    ("Hegde", &["Hegade", "Heggade"]),
    ("Naik", &["Nayak", "Naick"]),
    ("Kulkarni", &["Kulkarny", "Kulakarni"]),
    ("Bhat", &["Bhatt", "Bhatta"]),
    ("Kumar", &["Kumaar"]),
    ("Khan", &["Khaan"]),
    ("Achari", &["Achary", "Chary", "Chari", "Acharya"]),
    ("Mudiraj", &["Mudiraju", "Mudhiraj"]),
    ("Setty", &["Setti", "Shetty"]),
    ("Sai", &["Sayi", "Saai"]),
    ("Naga", &["Naaga"]),
    ("Sri", &["Sree", "Shri", "Shree"]),
    ("Kumari", &["Kumary", "Kumaari"]),
];

/// Composition parts that names.tsv does not list: kind, Latin, Telugu, Kannada, Devanagari.
const EXTRA: &[(Kind, &str, &str, &str, &str)] = &[
    (Kind::Prefix, "Sai", "సాయి", "ಸಾಯಿ", "साई"),
    (Kind::Prefix, "Naga", "నాగ", "ನಾಗ", "नाग"),
    (Kind::Prefix, "Sri", "శ్రీ", "ಶ್ರೀ", "श्री"),
    (Kind::SuffixF, "Kumari", "కుమారి", "ಕುಮಾರಿ", "कुमारी"),
];

/// How common a name is (default 2). Surnames are weighted per state.
const POPULAR: &[(&str, u8)] = &[
    ("Ravi", 4),
    ("Venkata", 4),
    ("Srinivas", 4),
    ("Lakshmi", 5),
    ("Krishna", 3),
    ("Ramesh", 3),
    ("Suresh", 3),
    ("Padma", 3),
    ("Mohammed", 2),
    ("Abdul", 1),
    ("Fathima", 2),
    ("Joseph", 1),
    ("Mary", 1),
];
const SURNAME_WEIGHT: &[(&str, [u8; 3])] = &[
    // TS, AP, KA
    ("Reddy", [6, 6, 1]),
    ("Rao", [4, 4, 2]),
    ("Naidu", [1, 4, 0]),
    ("Goud", [4, 0, 0]),
    ("Gowda", [0, 0, 6]),
    ("Chowdary", [2, 4, 0]),
    ("Yadav", [3, 2, 1]),
    ("Mudiraj", [3, 0, 0]),
    ("Patil", [0, 0, 4]),
    ("Shetty", [0, 0, 3]),
    ("Kumar", [2, 2, 2]),
    ("Khan", [2, 2, 2]),
];

const FEMALE_EXCLUDED_SURNAMES: &[&str] = &["Kumar", "Prasad", "Babu", "Raju", "Murthy", "Devi"];
const CHRISTIAN_SURNAMES: &[&str] = &["Raju", "Babu", "Rao", "Kumar"];

/// Letters used as initials ("K. Ravi Kumar"), as they are spelt in each script.
const NO_INITIAL: u8 = u8::MAX;
pub(super) const INITIALS: &[[&str; 4]] = &[
    ["K", "కె", "ಕೆ", "के"],
    ["P", "పి", "ಪಿ", "पी"],
    ["G", "జి", "ಜಿ", "जी"],
    ["M", "ఎం", "ಎಂ", "एम"],
    ["S", "ఎస్", "ಎಸ್", "एस"],
    ["B", "బి", "ಬಿ", "बी"],
    ["V", "వి", "ವಿ", "वी"],
    ["N", "ఎన్", "ಎನ್", "एन"],
    ["R", "ఆర్", "ಆರ್", "आर"],
    ["T", "టి", "ಟಿ", "टी"],
    ["C", "సి", "ಸಿ", "सी"],
    ["D", "డి", "ಡಿ", "डी"],
    ["Y", "వై", "ವೈ", "वाई"],
    ["A", "ఎ", "ಎ", "ए"],
];

pub(crate) struct Token {
    /// Latin spellings, canonical first.
    pub latin: Vec<Box<str>>,
    /// Cumulative weights over `latin`.
    cum: Vec<u32>,
    /// Telugu, Kannada, Devanagari; empty when names.tsv has none.
    pub native: [Box<str>; 3],
    kind: Kind,
    group: u8,
    /// Scripts this token can be written in (bit per [`Script`]).
    mask: u8,
}

impl Token {
    fn has(&self, s: Script) -> bool {
        self.mask & s.bit() != 0
    }
}

/// Everything needed to invent people: tokens and, per state × script × group, the weighted
/// pools to draw from.
pub(crate) struct Names {
    pub tokens: Vec<Token>,
    /// [state][script][group] → pools.
    pools: Vec<Pools>,
    /// Any spelling (Latin variant or native) of a surname → its token.
    surname_by_text: HashMap<Box<str>, u16>,
    kumar: u16,
    devi: u16,
    kumari: u16,
    rao: u16,
    venkata: u16,
}

#[derive(Default, Clone)]
struct Pools {
    given_m: Vec<u16>,
    given_f: Vec<u16>,
    sur_m: Vec<u16>,
    sur_f: Vec<u16>,
    prefix: Vec<u16>,
}

/// A person as the generator knows them: which name parts, in which order, with which
/// spelling habits. Rendering a spec in a script gives the name written on a record; the
/// same spec written twice gives the same name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub oref: [u8; 16],
    pub given: [u16; 3],
    pub surname: u16,
    pub father: [u16; 3],
    pub initials: [u8; 2],
    /// 0 given surname · 1 surname given · 2 initials given [surname] · 3 run-together given.
    pub order: u8,
    /// 0 "<father> <surname>" · 1 "<father>" · 2 none.
    pub fstyle: u8,
    /// Bit 0: initials without a space ("K.Ravi"); bit 1: no surname after initials.
    pub flags: u8,
    /// Scripts every part of the name can be written in.
    pub mask: u8,
    pub vseed: u32,
}

impl Spec {
    pub fn writable_in(&self, s: Script) -> bool {
        self.mask & s.bit() != 0
    }
}

fn states_of(region: &str) -> u8 {
    if region.trim() == "all" {
        return 0b111;
    }
    region.split(',').fold(0, |m, s| {
        m | match s.trim() {
            "TS" => 1,
            "AP" => 2,
            "KA" => 4,
            _ => 0,
        }
    })
}

/// Rule-made spelling variants of a Latin name (for names without a hand-written list).
pub(crate) fn rule_variants(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |v: String| {
        if v != name && !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    };
    if name.contains("th") {
        add(name.replacen("th", "t", 1));
    }
    if name.contains("ee") {
        add(name.replacen("ee", "i", 1));
    } else if let Some(i) = name[1..].find('i') {
        let mut s = name.to_string();
        s.replace_range(i + 1..i + 2, "ee");
        add(s);
    }
    if name.len() > 4 {
        if let Some(i) = name[1..].find("sh") {
            let mut s = name.to_string();
            s.replace_range(i + 1..i + 3, "s");
            add(s);
        }
    }
    if let Some(rest) = name.strip_prefix('V') {
        add(format!("W{rest}"));
    } else if name.contains('w') {
        add(name.replacen('w', "v", 1));
    }
    let b = name.as_bytes();
    if let Some(i) = (1..b.len()).find(|&i| b[i] == b[i - 1] && b[i].is_ascii_alphabetic()) {
        let mut s = name.to_string();
        s.remove(i);
        add(s);
    }
    out
}

impl Names {
    pub fn parse(tsv: &str) -> Result<Names, String> {
        let mut tokens = Vec::new();
        let mut regions = Vec::new();
        for (n, line) in tsv.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 6 {
                return Err(format!("names.tsv line {}: expected 6 fields", n + 1));
            }
            let kind = match f[0] {
                "given_m" => Kind::GivenM,
                "given_f" => Kind::GivenF,
                "surname" => Kind::Surname,
                other => return Err(format!("names.tsv line {}: kind {other:?}", n + 1)),
            };
            tokens.push(make_token(kind, f[1], [f[2], f[3], f[4]]));
            regions.push(states_of(f[5]));
        }
        for &(kind, latin, te, kn, hi) in EXTRA {
            tokens.push(make_token(kind, latin, [te, kn, hi]));
            regions.push(0b111);
        }
        if tokens.len() >= NONE as usize {
            return Err("names.tsv has too many names".into());
        }
        let find = |kind: Kind, name: &str| -> Result<u16, String> {
            tokens
                .iter()
                .position(|t| t.kind == kind && &*t.latin[0] == name)
                .map(|i| i as u16)
                .ok_or_else(|| format!("names.tsv lacks {name}"))
        };
        let kumar = find(Kind::Surname, "Kumar")?;
        let devi = find(Kind::Surname, "Devi")?;
        let rao = find(Kind::Surname, "Rao")?;
        let kumari = find(Kind::SuffixF, "Kumari")?;
        let venkata = find(Kind::GivenM, "Venkata")?;

        let mut pools = vec![Pools::default(); 3 * 4 * 3];
        for st in 0..3usize {
            for script in Script::ALL {
                for group in 0..3u8 {
                    let p = &mut pools[(st * 4 + script as usize) * 3 + group as usize];
                    for (i, t) in tokens.iter().enumerate() {
                        if regions[i] & (1 << st) == 0 || !t.has(script) {
                            continue;
                        }
                        let name = &*t.latin[0];
                        let w = match t.kind {
                            Kind::Surname => SURNAME_WEIGHT
                                .iter()
                                .find(|(n, _)| *n == name)
                                .map_or(2, |(_, w)| w[st]),
                            _ => POPULAR.iter().find(|(n, _)| *n == name).map_or(2, |p| p.1),
                        };
                        let in_group = match t.kind {
                            Kind::Surname => match group {
                                MUSLIM => name == "Khan",
                                CHRISTIAN => CHRISTIAN_SURNAMES.contains(&name),
                                _ => name != "Khan",
                            },
                            Kind::Prefix | Kind::SuffixF => group == HINDU,
                            _ => t.group == group,
                        };
                        if !in_group {
                            continue;
                        }
                        let i = i as u16;
                        let list = match t.kind {
                            Kind::GivenM => &mut p.given_m,
                            Kind::GivenF => &mut p.given_f,
                            Kind::Prefix => &mut p.prefix,
                            Kind::SuffixF => continue,
                            Kind::Surname => {
                                if name != "Devi" {
                                    p.sur_m.extend(std::iter::repeat_n(i, w as usize));
                                }
                                if !FEMALE_EXCLUDED_SURNAMES.contains(&name) {
                                    p.sur_f.extend(std::iter::repeat_n(i, w as usize));
                                }
                                continue;
                            }
                        };
                        list.extend(std::iter::repeat_n(i, w as usize));
                    }
                }
            }
        }
        let mut surname_by_text = HashMap::new();
        for (i, t) in tokens.iter().enumerate() {
            if t.kind != Kind::Surname {
                continue;
            }
            for s in t.latin.iter().chain(t.native.iter()) {
                if !s.is_empty() && !s.contains(' ') {
                    surname_by_text.entry(s.clone()).or_insert(i as u16);
                }
            }
        }
        Ok(Names {
            tokens,
            pools,
            surname_by_text,
            kumar,
            devi,
            kumari,
            rao,
            venkata,
        })
    }

    fn pools(&self, st: usize, script: Script, group: u8) -> &Pools {
        &self.pools[(st * 4 + script as usize) * 3 + group as usize]
    }

    /// The surname token found among the words of a written name, if any.
    pub fn surname_in(&self, name: &str) -> Option<u16> {
        name.split([' ', '.'])
            .find_map(|w| self.surname_by_text.get(w).copied())
    }

    /// A new person of state `st` whose whole name can be written in `script`. With
    /// `surname`, the person belongs to that family (a co-owner or an heir).
    pub fn new_spec(
        &self,
        rng: &mut Rng8,
        st: usize,
        script: Script,
        oref: [u8; 16],
        surname: Option<u16>,
    ) -> Spec {
        let female = rng.gen_ratio(38, 100);
        let mut group = match rng.gen_range(0..100) {
            0..=8 => MUSLIM,
            9..=11 => CHRISTIAN,
            _ => HINDU,
        };
        if let Some(s) = surname {
            group = if &*self.tokens[s as usize].latin[0] == "Khan" {
                MUSLIM
            } else {
                HINDU
            };
        }
        let mut p = self.pools(st, script, group);
        if p.given_m.is_empty() || p.given_f.is_empty() || p.sur_m.is_empty() || p.sur_f.is_empty()
        {
            group = HINDU;
            p = self.pools(st, script, group);
        }
        let pick = |rng: &mut Rng8, v: &[u16]| v[rng.gen_range(0..v.len())];

        let mut given = [NONE; 3];
        let list = if female { &p.given_f } else { &p.given_m };
        let first = pick(rng, list);
        given[0] = first;
        if group == HINDU {
            let r = rng.gen_range(0..100);
            if !female && first == self.venkata {
                // "Venkata" never stands alone.
                given[1] = self.other_given(rng, &p.given_m, first);
            } else if !female && r < 22 && surname != Some(self.kumar) {
                given[1] = self.kumar;
            } else if female && r < 12 {
                given[1] = self.devi;
            } else if female && r < 18 && self.tokens[self.kumari as usize].has(script) {
                given[1] = self.kumari;
            } else if r >= 86 && !p.prefix.is_empty() {
                let pre = if rng.gen_bool(0.4) && !female {
                    self.venkata
                } else {
                    pick(rng, &p.prefix)
                };
                let pre_text = &*self.tokens[pre as usize].latin[0];
                let first_text = &*self.tokens[first as usize].latin[0];
                if !first_text.starts_with(pre_text) && pre != first {
                    given = [pre, first, NONE];
                }
            }
        }
        let surname = surname.unwrap_or_else(|| {
            let l = if female { &p.sur_f } else { &p.sur_m };
            let mut s = pick(rng, l);
            for _ in 0..8 {
                if self.tokens[s as usize].latin[0] != self.tokens[first as usize].latin[0]
                    && !given.contains(&s)
                {
                    break;
                }
                s = pick(rng, l);
            }
            s
        });
        let mut father = [NONE; 3];
        // Fathers come from the same naming group; a group too small to differ from the
        // child's own name borrows from the common pool.
        let mut fl = &p.given_m;
        if fl.iter().all(|&g| g == first) {
            fl = &self.pools(st, script, HINDU).given_m;
        }
        let k = rng.gen_range(0..fl.len());
        father[0] = (0..fl.len())
            .map(|j| fl[(k + j) % fl.len()])
            .find(|&g| g != first)
            .unwrap_or(fl[k]);
        if group == HINDU {
            if father[0] == self.venkata {
                father[1] = self.other_given(rng, fl, father[0]);
            } else if surname != self.rao && rng.gen_ratio(1, 6) {
                // "Venkata Rao", "Krishna Rao": Rao as the second part of a given name.
                father[1] = self.rao;
            }
        }
        let order = match rng.gen_range(0..100) {
            0..=54 => 0,
            55..=69 => 1,
            70..=84 => 2,
            _ if given[1] != NONE => 3,
            _ => 0,
        };
        let fstyle = match rng.gen_range(0..100) {
            0..=64 => 0,
            65..=87 => 1,
            _ => 2,
        };
        let initials = [
            rng.gen_range(0..INITIALS.len()) as u8,
            if rng.gen_ratio(1, 4) {
                rng.gen_range(0..INITIALS.len()) as u8
            } else {
                NO_INITIAL
            },
        ];
        let mut mask = 0xFF;
        for t in given.iter().chain(father.iter()).chain([surname].iter()) {
            if *t != NONE {
                mask &= self.tokens[*t as usize].mask;
            }
        }
        Spec {
            oref,
            given,
            surname,
            father,
            initials,
            order,
            fstyle,
            flags: rng.gen_range(0..4),
            mask,
            vseed: rng.gen(),
        }
    }

    fn other_given(&self, rng: &mut Rng8, list: &[u16], not: u16) -> u16 {
        let nt = &*self.tokens[not as usize].latin[0];
        for _ in 0..16 {
            let g = list[rng.gen_range(0..list.len())];
            let t = &*self.tokens[g as usize].latin[0];
            if g != not && !t.starts_with(nt) && !nt.starts_with(&t[..3.min(t.len())]) {
                return g;
            }
        }
        self.rao
    }

    /// One token in a script; for Latin, the spelling this person habitually uses.
    fn word(&self, tok: u16, script: Script, vseed: u32) -> &str {
        let t = &self.tokens[tok as usize];
        match script {
            Script::Latin => {
                let total = *t.cum.last().unwrap_or(&1);
                let r = (mix64(u64::from(vseed) << 16 ^ u64::from(tok)) % u64::from(total)) as u32;
                let i = t.cum.iter().position(|&c| r < c).unwrap_or(0);
                &t.latin[i]
            }
            s => &t.native[s as usize - 1],
        }
    }

    fn push_initials(&self, spec: &Spec, script: Script, out: &mut String) {
        for &i in &spec.initials {
            if i == NO_INITIAL {
                break;
            }
            out.push_str(INITIALS[i as usize][script as usize]);
            out.push('.');
        }
        if spec.flags & 1 == 0 || script != Script::Latin {
            out.push(' ');
        }
    }

    /// The person's name as written on a record in `script`.
    pub fn write_name(&self, spec: &Spec, script: Script, out: &mut String) {
        let v = spec.vseed;
        let given = spec.given.iter().take_while(|&&t| t != NONE);
        let push_given = |out: &mut String, joined: bool| {
            for (k, &t) in given.clone().enumerate() {
                let w = self.word(t, script, v);
                if k > 0 && !joined {
                    out.push(' ');
                }
                if k > 0 && joined && script == Script::Latin {
                    let mut cs = w.chars();
                    if let Some(c) = cs.next() {
                        out.push(c.to_ascii_lowercase());
                        out.push_str(cs.as_str());
                    }
                } else {
                    out.push_str(w);
                }
            }
        };
        let sur = self.word(spec.surname, script, v);
        match spec.order {
            1 => {
                out.push_str(sur);
                out.push(' ');
                push_given(out, false);
            }
            2 => {
                self.push_initials(spec, script, out);
                push_given(out, false);
                if spec.flags & 2 == 0 {
                    out.push(' ');
                    out.push_str(sur);
                }
            }
            3 => {
                push_given(out, true);
                out.push(' ');
                out.push_str(sur);
            }
            _ => {
                push_given(out, false);
                out.push(' ');
                out.push_str(sur);
            }
        }
    }

    /// The father's name as written on a record, if the record gives one.
    pub fn write_father(&self, spec: &Spec, script: Script) -> Option<String> {
        if spec.fstyle == 2 {
            return None;
        }
        let v = spec.vseed;
        let mut out = String::with_capacity(64);
        let surname_first = spec.order == 1 && spec.fstyle == 0;
        if surname_first {
            out.push_str(self.word(spec.surname, script, v));
            out.push(' ');
        }
        for (k, &t) in spec.father.iter().take_while(|&&t| t != NONE).enumerate() {
            if k > 0 {
                out.push(' ');
            }
            out.push_str(self.word(t, script, v ^ 0x5bd1_e995));
        }
        if spec.fstyle == 0 && !surname_first && spec.father[1] != spec.surname {
            out.push(' ');
            out.push_str(self.word(spec.surname, script, v));
        }
        Some(out)
    }
}

fn make_token(kind: Kind, latin: &str, native: [&str; 3]) -> Token {
    let explicit: &[&str] = VARIANTS
        .iter()
        .find(|(n, _)| *n == latin)
        .map_or(&[], |(_, v)| v);
    let mut spellings: Vec<Box<str>> = vec![latin.into()];
    let mut cum = vec![600u32];
    for v in explicit {
        spellings.push((*v).into());
        cum.push(cum[cum.len() - 1] + (400 / explicit.len() as u32).max(40));
    }
    if explicit.len() < 2 {
        for v in rule_variants(latin) {
            if !spellings.iter().any(|s| **s == *v) {
                spellings.push(v.into());
                cum.push(cum[cum.len() - 1] + 60);
            }
        }
    }
    let group = match latin {
        "Mohammed" | "Abdul" | "Fathima" | "Khan" => MUSLIM,
        "Joseph" | "Mary" => CHRISTIAN,
        _ => HINDU,
    };
    let mut mask = Script::Latin.bit();
    for (i, s) in native.iter().enumerate() {
        if !s.trim().is_empty() {
            mask |= 1 << (i + 1);
        }
    }
    Token {
        latin: spellings,
        cum,
        native: native.map(|s| s.trim().into()),
        kind,
        group,
        mask,
    }
}

/// One letter dropped, two neighbours swapped or one letter doubled: a clerk's typo in a
/// Latin name. `None` when the name offers no safe place for one.
pub(crate) fn misspell(name: &str, rng: &mut Rng8) -> Option<String> {
    let b = name.as_bytes();
    if !name.is_ascii() || b.len() < 5 {
        return None;
    }
    for _ in 0..4 {
        // Never the first letter of the name: clerks rarely get that wrong.
        let i = rng.gen_range(1..b.len() - 1);
        if !b[i].is_ascii_lowercase() {
            continue;
        }
        let mut s = name.as_bytes().to_vec();
        match rng.gen_range(0..10) {
            0..=4 => {
                s.remove(i);
            }
            5..=7 => {
                if !b[i + 1].is_ascii_lowercase() || b[i] == b[i + 1] {
                    continue;
                }
                s.swap(i, i + 1);
            }
            _ => s.insert(i, b[i]),
        }
        let out = String::from_utf8(s).ok()?;
        if out != name && !out.trim().is_empty() {
            return Some(out);
        }
    }
    None
}
