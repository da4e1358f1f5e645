//! Land: survey numbers, land types, areas in the local unit with their exact square-metre
//! conversion, and market values that fit area, type and district.

use rand::Rng;

use super::places::{Place, Profile};
use super::{mix64, push_u64, Rng8};

pub(crate) const LAND_TYPES: [&str; 7] = [
    "Agricultural",
    "Dry land",
    "Wet land",
    "Plantation",
    "Residential",
    "Commercial",
    "Industrial",
];
const AGRICULTURAL: usize = 0;
const DRY: usize = 1;
const WET: usize = 2;
const PLANTATION: usize = 3;
const RESIDENTIAL: usize = 4;
const COMMERCIAL: usize = 5;
const INDUSTRIAL: usize = 6;

/// Cumulative weights of LAND_TYPES per [`Profile`].
const TYPE_WEIGHTS: [[u32; 7]; 4] = [
    // Rural: Agri, Dry, Wet, Plant, Resi, Comm, Ind
    cumulative([40, 16, 12, 3, 22, 5, 2]),
    // Delta
    cumulative([35, 6, 30, 4, 19, 5, 1]),
    // Hills
    cumulative([28, 10, 8, 28, 20, 5, 1]),
    // Urban
    cumulative([4, 1, 1, 0, 62, 26, 6]),
];

const fn cumulative(w: [u32; 7]) -> [u32; 7] {
    let mut out = [0; 7];
    let mut acc = 0;
    let mut i = 0;
    while i < 7 {
        acc += w[i];
        out[i] = acc;
        i += 1;
    }
    out
}

/// Base land value in rupees per square metre, before the district factor.
const RATE: [i64; 7] = [250, 100, 450, 300, 9_000, 22_000, 2_500];

/// Area units, each as an exact rational number of square metres (numerator / denominator).
/// 1 acre = 4046.8564224 m² (international acre); 1 gunta = 1/40 acre; 1 cent = 1/100 acre.
const ACRE_200TH: (i64, i64) = (20_234_282_112, 1_000_000_000); // acre/200: gunta = 5, cent = 2
const SQ_YD: (i64, i64) = (83_612_736, 100_000_000);
const SQ_FT: (i64, i64) = (9_290_304, 100_000_000);

fn to_sq_m(n: i64, unit: (i64, i64)) -> i64 {
    ((n * unit.0 + unit.1 / 2) / unit.1).max(1)
}

pub(crate) struct Land {
    pub land_type: &'static str,
    pub area_sq_m: i64,
    pub area_text: String,
    pub market_value: i64,
}

/// A land type for a parcel in a district of this profile.
pub(crate) fn land_type(rng: &mut Rng8, profile: Profile) -> usize {
    let w = &TYPE_WEIGHTS[profile as usize];
    let r = rng.gen_range(0..w[6]);
    w.iter().position(|&c| r < c).unwrap_or(0)
}

/// Area and value of a parcel of `ty` in state `st` (0 TS, 1 AP, 2 KA).
pub(crate) fn land(rng: &mut Rng8, st: usize, ty: usize, value_pct: u32) -> Land {
    let mut text = String::with_capacity(24);
    let area_sq_m = match ty {
        RESIDENTIAL => {
            if st == 2 {
                // Karnataka sites: "30x40" feet.
                const SITES: [(i64, i64); 7] = [
                    (30, 40),
                    (30, 40),
                    (20, 30),
                    (30, 50),
                    (40, 60),
                    (30, 45),
                    (50, 80),
                ];
                let (w, l) = SITES[rng.gen_range(0..SITES.len())];
                if rng.gen_ratio(2, 5) {
                    push_u64(&mut text, w as u64);
                    text.push('x');
                    push_u64(&mut text, l as u64);
                    text.push_str(" ft");
                } else {
                    push_u64(&mut text, (w * l) as u64);
                    text.push_str(" sq.ft");
                }
                to_sq_m(w * l, SQ_FT)
            } else {
                const PLOTS: [i64; 12] =
                    [100, 120, 133, 150, 160, 166, 200, 200, 240, 267, 300, 400];
                let n = if rng.gen_ratio(3, 4) {
                    PLOTS[rng.gen_range(0..PLOTS.len())]
                } else {
                    rng.gen_range(60..=800)
                };
                push_u64(&mut text, n as u64);
                text.push_str(" sq.yds");
                to_sq_m(n, SQ_YD)
            }
        }
        COMMERCIAL => {
            if st != 2 && rng.gen_bool(0.5) {
                let n = rng.gen_range(40..=600);
                push_u64(&mut text, n as u64);
                text.push_str(" sq.yds");
                to_sq_m(n, SQ_YD)
            } else {
                let n = rng.gen_range(15..=400) * 10;
                push_u64(&mut text, n as u64);
                text.push_str(" sq.ft");
                to_sq_m(n, SQ_FT)
            }
        }
        INDUSTRIAL if rng.gen_ratio(1, 3) => {
            let n = rng.gen_range(20..=400) * 50;
            push_u64(&mut text, n as u64);
            text.push_str(" sq.m");
            n
        }
        _ => {
            // Farm land (and larger industrial plots) in acres + guntas, or acres + cents in AP.
            let scale = match ty {
                PLANTATION => 3,
                INDUSTRIAL => 4,
                _ => 1,
            };
            let mut eighths = match rng.gen_range(0..100) {
                0..=69 => rng.gen_range(1u64..=24),
                70..=91 => rng.gen_range(24..=80),
                _ => rng.gen_range(80..=240),
            } * scale;
            if ty == DRY {
                eighths *= 2;
            }
            // Area in acre/200 units: gunta = 5, cent = 2.
            if st == 1 {
                let cents = eighths * 25 / 2 + rng.gen_range(0..12);
                let (a, c) = (cents / 100, cents % 100);
                if a > 0 && rng.gen_bool(0.5) {
                    push_u64(&mut text, a);
                    text.push('.');
                    if c < 10 {
                        text.push('0');
                    }
                    push_u64(&mut text, c);
                    text.push_str(" acres");
                } else {
                    acres_and(&mut text, a, c, "cent", "cents");
                }
                to_sq_m(cents as i64 * 2, ACRE_200TH)
            } else {
                let guntas = eighths * 5 + rng.gen_range(0..5);
                acres_and(&mut text, guntas / 40, guntas % 40, "gunta", "guntas");
                to_sq_m(guntas as i64 * 5, ACRE_200TH)
            }
        }
    };
    let jitter = rng.gen_range(65..=135);
    let mut value = area_sq_m * RATE[ty] * i64::from(value_pct) / 100 * jitter / 100;
    value = if value >= 1_000_000 {
        (value + 5_000) / 10_000 * 10_000
    } else {
        ((value + 500) / 1_000 * 1_000).max(1_000)
    };
    Land {
        land_type: LAND_TYPES[ty],
        area_sq_m,
        area_text: text,
        market_value: value,
    }
}

fn acres_and(text: &mut String, acres: u64, rest: u64, one: &str, many: &str) {
    if acres > 0 {
        push_u64(text, acres);
        text.push_str(if acres == 1 { " acre" } else { " acres" });
        if rest > 0 {
            text.push(' ');
        }
    }
    if rest > 0 || acres == 0 {
        push_u64(text, rest.max(1));
        text.push(' ');
        text.push_str(if rest == 1 { one } else { many });
    }
}

/// The `n`-th parcel registered in a village: a survey number that no other `n` of the same
/// place gives, in one of the shapes real records use ("123", "123/A", "45/2B", "218-1").
pub(crate) fn survey_no(place: &Place, place_ix: u32, n: u32, out: &mut String) {
    let m = place.bases;
    let base = ((u64::from(n % m) * u64::from(place.stride) + u64::from(place.offset))
        % u64::from(m)) as u32
        + 1;
    let round = n / m;
    survey_shape(place_ix, base, round, out);
}

/// A survey number that creates never produce: beyond the village's numbered range, as after
/// a resurvey. `k` counts such numbers per village.
pub(crate) fn resurvey_no(place: &Place, place_ix: u32, k: u32, out: &mut String) {
    survey_shape(place_ix, place.bases + 1 + k, 0, out);
}

fn survey_shape(place_ix: u32, base: u32, round: u32, out: &mut String) {
    let h = mix64(u64::from(place_ix) << 32 | u64::from(base));
    push_u64(out, u64::from(base));
    // Each base number has one subdivision style, so the suffixes of one base never clash.
    match h % 100 {
        0..=54 => {
            if round > 0 {
                out.push('/');
                push_u64(out, u64::from(round));
            }
        }
        55..=69 => {
            out.push('/');
            if round < 26 {
                out.push((b'A' + round as u8) as char);
            } else {
                push_u64(out, u64::from(round));
            }
        }
        70..=79 => {
            out.push('/');
            push_u64(out, 1 + (h >> 8) % 4 + u64::from(round));
        }
        80..=89 => {
            out.push('/');
            push_u64(out, 1 + (h >> 8) % 3 + u64::from(round / 4));
            out.push((b'A' + (round % 4) as u8) as char);
        }
        _ => {
            out.push('-');
            push_u64(out, 1 + (h >> 8) % 3 + u64::from(round));
        }
    }
}

/// Land types a correction may switch to (farm types among themselves).
pub(crate) fn corrected_type(current: &str, rng: &mut Rng8) -> Option<&'static str> {
    let farm = [AGRICULTURAL, DRY, WET];
    if !farm.iter().any(|&i| LAND_TYPES[i] == current) {
        return None;
    }
    loop {
        let t = LAND_TYPES[farm[rng.gen_range(0..farm.len())]];
        if t != current {
            return Some(t);
        }
    }
}

/// Index of a land type name, for redoing a parcel's area after a correction.
pub(crate) fn type_index(name: &str) -> Option<usize> {
    LAND_TYPES.iter().position(|t| *t == name)
}
