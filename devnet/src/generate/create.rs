//! Creates: a new record on a parcel not registered before — its place, survey number,
//! owners (new people, people who own other parcels, relatives), land and value.

use std::sync::Arc;

use rand::Rng;

use ledger::model::Owner;

use super::names::Script;
use super::places::STATES;
use super::*;

impl Generator {
    /// [`Generator::create`] with the arguments typed: the seeder encodes them and hands
    /// them to the chaincode as they are, where a JSON tree would be built, walked to encode
    /// it, parsed by the chaincode and freed.
    pub(crate) fn create_typed(&mut self) -> TypedProposal {
        self.creates += 1;
        let data = Arc::clone(&self.data);
        let places = &data.places;
        // Registrations come village by village: half the time the clerk stays in the
        // village of the previous record.
        let p_ix = if self.creates > 1 && self.crng.gen_bool(0.5) {
            self.last_place
        } else {
            self.crng.gen_range(0..places.places.len())
        };
        self.last_place = p_ix;
        let place = &places.places[p_ix];
        let district = &places.districts[place.district as usize];
        let st = district.state as usize;
        let n = self.survey_next[p_ix];
        self.survey_next[p_ix] += 1;
        let mut survey = String::with_capacity(12);
        land::survey_no(place, p_ix as u32, n, &mut survey);
        let district_name = if district.names.len() > 1 && self.crng.gen_ratio(1, 8) {
            &district.names[self.crng.gen_range(1..district.names.len())]
        } else {
            &district.names[0]
        };
        let script = record_script(&mut self.crng, st);
        let upper = script == Script::Latin && self.crng.gen_ratio(1, 12);
        let shares = shares(&mut self.crng);
        let owners = self.owners(&data, Side::Create, st, script, upper, shares, None, None);
        let ty = land::land_type(&mut self.crng, district.profile);
        let l = land::land(&mut self.crng, st, ty, district.value_pct);
        let khata = if self.crng.gen_ratio(9, 10) {
            let mut k = String::with_capacity(6);
            push_u64(&mut k, self.crng.gen_range(1..=(place.bases as u64 * 3)));
            Some(k)
        } else {
            None
        };

        let mut request_id = String::with_capacity(32);
        request_id.push_str("REQ-");
        request_id.push_str(STATES[st]);
        request_id.push('-');
        request_id.push_str(&self.seed_hex[8..]);
        request_id.push('-');
        push_u64(&mut request_id, self.creates);

        TypedProposal {
            creator: registrar(STATES[st]),
            nonce: self.nonce('c', self.creates),
            args: Args::Create(CreateArgs {
                area_sq_m: l.area_sq_m,
                area_text: l.area_text,
                district: district_name.to_string(),
                khata_no: khata,
                land_type: l.land_type.to_string(),
                mandal: place.mandal.to_string(),
                market_value: l.market_value,
                owners,
                request_id,
                state: STATES[st].to_string(),
                survey_no: survey,
                village: place.village.to_string(),
            }),
        }
    }

    pub(super) fn owner_ref(&mut self, side: Side) -> [u8; 16] {
        let k = side as usize;
        self.persons[k] += 1;
        let mut buf = [0u8; 17];
        buf[..8].copy_from_slice(&self.seed.to_le_bytes());
        buf[8] = k as u8;
        buf[9..].copy_from_slice(&self.persons[k].to_le_bytes());
        let h = sha256(&buf);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.0[..16]);
        out
    }

    /// Owners for a record: new people, people who own other parcels, or relatives of
    /// `family` (surname token) with `father` as their father's name.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn owners(
        &mut self,
        data: &DemoData,
        side: Side,
        st: usize,
        script: Script,
        upper: bool,
        shares: &[i64],
        family: Option<u16>,
        father: Option<&str>,
    ) -> Vec<Owner> {
        let names = &data.names;
        let mut out = Vec::with_capacity(shares.len());
        let mut refs: [[u8; 16]; 3] = [[0; 16]; 3];
        let mut first_surname = family;
        for (i, &share) in shares.iter().enumerate() {
            let rng = match side {
                Side::Create => &mut self.crng,
                Side::FollowUp => &mut self.frng,
            };
            let reuse_pct = match side {
                Side::Create => 10,
                Side::FollowUp if family.is_none() => 35,
                Side::FollowUp => 0,
            };
            let mut spec = None;
            if rng.gen_range(0..100) < reuse_pct && !self.pool[st].is_empty() {
                for _ in 0..3 {
                    let mut s = self.pool[st][rng.gen_range(0..self.pool[st].len())];
                    if s.writable_in(script) && !refs[..i].contains(&s.oref) {
                        if rng.gen_ratio(1, 4) {
                            // Same person, spelt differently on this deed.
                            s.vseed = rng.gen();
                        }
                        spec = Some(s);
                        break;
                    }
                }
            }
            let spec = match spec {
                Some(s) => s,
                None => {
                    let family = if i > 0 && rng.gen_ratio(7, 10) {
                        first_surname
                    } else {
                        family
                    };
                    let oref = self.owner_ref(side);
                    let rng = match side {
                        Side::Create => &mut self.crng,
                        Side::FollowUp => &mut self.frng,
                    };
                    let s = names.new_spec(rng, st, script, oref, family);
                    if let Side::Create = side {
                        let pool = &mut self.pool[st];
                        if pool.len() < POOL {
                            pool.push(s);
                        } else {
                            pool[self.pool_next[st]] = s;
                            self.pool_next[st] = (self.pool_next[st] + 1) % POOL;
                        }
                    }
                    s
                }
            };
            refs[i.min(2)] = spec.oref;
            if i == 0 && first_surname.is_none() {
                first_surname = Some(spec.surname);
            }
            let rng = match side {
                Side::Create => &mut self.crng,
                Side::FollowUp => &mut self.frng,
            };
            let mut name = String::with_capacity(64);
            names.write_name(&spec, script, &mut name);
            let mut father_name = match father {
                Some(f) => Some(f.to_string()),
                None => names.write_father(&spec, script),
            };
            if upper {
                name.make_ascii_uppercase();
                if let Some(f) = father_name.as_mut() {
                    f.make_ascii_uppercase();
                }
            }
            let oref = hex32(&spec.oref);
            if script == Script::Latin && rng.gen_ratio(1, 12) {
                if let Some(wrong) = names::misspell(&name, rng) {
                    if self.fixes.len() < MAX_FIXES {
                        self.fixes.insert(
                            oref.as_str().into(),
                            (wrong.as_str().into(), name.into_boxed_str()),
                        );
                    }
                    name = wrong;
                }
            }
            out.push(Owner {
                father_name,
                name,
                owner_ref: oref,
                share_pct: share,
            });
        }
        out
    }
}
