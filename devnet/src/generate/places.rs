//! Places: state → district → mandal/taluk → village from `places.tsv` (GeoNames postal data,
//! CC-BY 4.0, <https://www.geonames.org>), with the spellings of the source kept as they are
//! and the official renamings of districts used now and then.

use std::collections::HashMap;

use super::{mix64, parcel_norm_eq_key};

/// The three states of the demo data, in index order.
pub(crate) const STATES: [&str; 3] = ["TS", "AP", "KA"];

/// Other spellings and official renamings of districts that records carry. None of them
/// may normalise to another district's name (a test checks).
const DISTRICT_VARIANTS: &[(&str, &[&str])] = &[
    (
        "K.V.Rangareddy",
        &["Rangareddy", "Ranga Reddy", "R.R. District"],
    ),
    ("Mahabub Nagar", &["Mahabubnagar", "Mahbubnagar"]),
    ("Karim Nagar", &["Karimnagar"]),
    ("Warangal", &["Warangal Rural", "Warangal Urban"]),
    ("Ananthapur", &["Anantapur", "Anantapuramu"]),
    ("Cuddapah", &["Kadapa", "YSR Kadapa"]),
    ("Nellore", &["SPS Nellore", "Sri Potti Sriramulu Nellore"]),
    ("Visakhapatnam", &["Vishakhapatnam"]),
    ("Bengaluru", &["Bangalore", "Bengaluru Urban"]),
    ("Belagavi", &["Belgaum"]),
    ("Ballari", &["Bellary"]),
    ("Mysuru", &["Mysore"]),
    ("Kalaburagi", &["Gulbarga"]),
    ("Shivamogga", &["Shimoga"]),
    ("Tumakuru", &["Tumkur"]),
    ("Vijayapura", &["Bijapur"]),
    ("Chikkamagaluru", &["Chikmagalur"]),
    ("Chamrajnagar", &["Chamarajanagar"]),
    ("Davangere", &["Davanagere"]),
];

/// Land-use profile of a district: which land types its parcels mostly are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    Rural,
    Delta,
    Hills,
    Urban,
}

pub(crate) struct District {
    pub state: u8,
    /// Canonical (source) spelling first, then variants.
    pub names: Vec<Box<str>>,
    pub profile: Profile,
    /// Land value multiplier, percent.
    pub value_pct: u32,
}

pub(crate) struct Place {
    pub district: u16,
    pub mandal: Box<str>,
    pub village: Box<str>,
    /// Survey numbers 1..=bases exist in the village.
    pub bases: u32,
    /// Stride and offset of the permutation that spreads new parcels over the bases.
    pub stride: u32,
    pub offset: u32,
}

pub(crate) struct Places {
    pub districts: Vec<District>,
    pub places: Vec<Place>,
    /// Hash of (state, district spelling, mandal, village) → place, for finding a record's
    /// place again.
    lookup: HashMap<u64, u32>,
}

fn clean(s: &str) -> &str {
    s.trim().trim_end_matches(['`', '\'', ';', ',', '"']).trim()
}

/// "Agali (Ananthapur)" → "Agali", "Atmakur(ATP)" → "Atmakur".
fn strip_qualifier(s: &str) -> &str {
    match s.find('(') {
        Some(i) if !s[..i].trim().is_empty() => clean(&s[..i]),
        _ => s,
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn profile_of(district: &str) -> (Profile, u32) {
    match district {
        "Hyderabad" => (Profile::Urban, 320),
        "Bengaluru" => (Profile::Urban, 340),
        "K.V.Rangareddy" => (Profile::Rural, 230),
        "Bangalore Rural" => (Profile::Rural, 170),
        "Medak" | "Mysuru" | "Udupi" => (Profile::Rural, 130),
        "Visakhapatnam" => (Profile::Rural, 150),
        "Krishna" | "Guntur" => (Profile::Delta, 140),
        "East Godavari" | "West Godavari" | "Mandya" => (Profile::Delta, 115),
        "Dakshina Kannada" => (Profile::Hills, 140),
        "Kodagu" | "Chikkamagaluru" | "Hassan" | "Uttara Kannada" | "Shivamogga" => {
            (Profile::Hills, 110)
        }
        _ => (Profile::Rural, 100),
    }
}

pub(crate) fn place_hash(state: &str, district: &str, mandal: &str, village: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for part in [state, district, mandal, village] {
        for b in part.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Places {
    pub fn parse(tsv: &str) -> Result<Places, String> {
        struct Row<'a> {
            st: u8,
            district: &'a str,
            mandal: &'a str,
            place: &'a str,
            pin: u32,
        }
        let mut rows = Vec::new();
        for (n, line) in tsv.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 6 {
                return Err(format!("places.tsv line {}: expected 8 fields", n + 1));
            }
            let Some(st) = STATES.iter().position(|s| *s == f[0]) else {
                continue;
            };
            rows.push(Row {
                st: st as u8,
                district: clean(f[2]),
                mandal: clean(f[3]),
                place: clean(f[4]),
                pin: f[5].trim().parse().unwrap_or(0),
            });
        }
        // A missing mandal ("NA") is taken from another place with the same PIN code.
        let mut mandal_of_pin: HashMap<(u8, &str, u32), &str> = HashMap::new();
        for r in &rows {
            if r.mandal != "NA" && !r.mandal.is_empty() {
                mandal_of_pin
                    .entry((r.st, r.district, r.pin))
                    .or_insert(r.mandal);
            }
        }
        let mut districts: Vec<District> = Vec::new();
        let mut district_ix: HashMap<(u8, &str), u16> = HashMap::new();
        let mut places = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut per_state = [0usize; 3];
        for r in &rows {
            let mandal = if r.mandal == "NA" || r.mandal.is_empty() {
                match mandal_of_pin.get(&(r.st, r.district, r.pin)) {
                    Some(m) => *m,
                    None => continue,
                }
            } else {
                r.mandal
            };
            let village = strip_qualifier(r.place);
            if village.is_empty() || r.district.is_empty() || village.chars().count() > 100 {
                continue;
            }
            // One place per parcel-key prefix, so a survey counter per place makes unique parcels.
            let key = parcel_norm_eq_key(STATES[r.st as usize], r.district, mandal, village);
            if !seen.insert(key) {
                continue;
            }
            let d = *district_ix.entry((r.st, r.district)).or_insert_with(|| {
                let mut names: Vec<Box<str>> = vec![r.district.into()];
                if let Some((_, v)) = DISTRICT_VARIANTS.iter().find(|(n, _)| *n == r.district) {
                    names.extend(v.iter().map(|s| Box::<str>::from(*s)));
                }
                let (profile, value_pct) = profile_of(r.district);
                districts.push(District {
                    state: r.st,
                    names,
                    profile,
                    value_pct,
                });
                (districts.len() - 1) as u16
            });
            let i = places.len() as u32;
            let h = mix64(u64::from(i) ^ 0x9e37_79b9_7f4a_7c15);
            let bases = 80 + (h % 820) as u32;
            let mut stride = (bases / 3 + ((h >> 20) % u64::from(bases / 2)) as u32).max(1);
            while gcd(stride, bases) != 1 {
                stride += 1;
            }
            places.push(Place {
                district: d,
                mandal: mandal.into(),
                village: village.into(),
                bases,
                stride,
                offset: ((h >> 40) % u64::from(bases)) as u32,
            });
            per_state[r.st as usize] += 1;
        }
        if per_state.contains(&0) {
            return Err("places.tsv lacks places of TS, AP or KA".into());
        }
        let mut lookup = HashMap::new();
        for (i, p) in places.iter().enumerate() {
            let d = &districts[p.district as usize];
            for name in &d.names {
                let h = place_hash(STATES[d.state as usize], name, &p.mandal, &p.village);
                lookup.entry(h).or_insert(i as u32);
            }
        }
        Ok(Places {
            districts,
            places,
            lookup,
        })
    }

    /// The place of a record written by this generator, if it is one of ours.
    pub fn find(&self, state: &str, district: &str, mandal: &str, village: &str) -> Option<u32> {
        let i = *self
            .lookup
            .get(&place_hash(state, district, mandal, village))?;
        let p = &self.places[i as usize];
        let d = &self.districts[p.district as usize];
        (STATES[d.state as usize] == state
            && d.names.iter().any(|n| &**n == district)
            && &*p.mandal == mandal
            && &*p.village == village)
            .then_some(i)
    }
}
