//! Follow-ups on remembered records: transfers, verification updates, corrections,
//! document links, and the deliberately invalid proposals that earn every validation code.

use rand::Rng;

use super::places::STATES;
use super::*;

impl Generator {
    pub(super) fn transfer(&mut self, data: &DemoData, slot: usize) -> TypedFollowUp {
        let e = &self.entries[slot];
        let state = e.record.state.clone();
        let id = e.record.property_id;
        let expected = (e.busy_until <= self.follows && self.frng.gen_ratio(2, 5)).then_some(e.tx);
        let owners = self.new_owners_for(data, slot, None);
        let a = Args::Transfer(TransferArgs {
            expected_tx: expected,
            owners,
            property_id: id,
        });
        self.mark_busy(slot);
        let creator = if self.frng.gen_ratio(1, 20) {
            "admin".to_string()
        } else {
            registrar(&state)
        };
        self.follow(Target::Records, creator, a, Validation::Valid)
    }

    /// New owners for a remembered record: a sale (new people or people who own other
    /// parcels) or a succession (heirs of the first owner, of the same family). `shares`
    /// overrides the share split.
    pub(super) fn new_owners_for(
        &mut self,
        data: &DemoData,
        slot: usize,
        shares_override: Option<&'static [i64]>,
    ) -> Vec<Owner> {
        let r = &self.entries[slot].record;
        let st = Self::state_ix(&r.state);
        let first = r.owners.first().map(|o| o.name.clone()).unwrap_or_default();
        let script = Script::of(&first);
        let upper = script == Script::Latin
            && first.bytes().any(|b| b.is_ascii_uppercase())
            && !first.bytes().any(|b| b.is_ascii_lowercase());
        if self.frng.gen_ratio(3, 10) && shares_override.is_none() && !first.is_empty() {
            const HEIRS: [&[i64]; 4] = [&[100], &[50, 50], &[50, 50], &[34, 33, 33]];
            let shares = HEIRS[self.frng.gen_range(0..HEIRS.len())];
            let family = data.names.surname_in(&first);
            return self.owners(
                data,
                Side::FollowUp,
                st,
                script,
                upper,
                shares,
                family,
                Some(&first),
            );
        }
        let shares = shares_override.unwrap_or_else(|| shares(&mut self.frng));
        self.owners(data, Side::FollowUp, st, script, upper, shares, None, None)
    }

    pub(super) fn verification(&mut self, slot: usize) -> TypedFollowUp {
        use VerificationStatus::*;
        let r = &self.entries[slot].record;
        let id = r.property_id;
        let state = r.state.clone();
        let roll = self.frng.gen_range(0..100);
        let status = match r.verification_status {
            Pending => match roll {
                0..=79 => Verified,
                80..=94 => Disputed,
                _ => Rejected,
            },
            Disputed => match roll {
                0..=59 => Verified,
                60..=84 => Rejected,
                _ => Pending,
            },
            Verified => match roll {
                0..=69 => Disputed,
                _ => Pending,
            },
            Rejected => Pending,
        };
        const NOTES: [&[&str]; 4] = [
            &[
                "Resubmitted with documents",
                "Re-opened for field verification",
            ],
            &[
                "Field inspection done",
                "Documents verified with SRO records",
                "Verified against revenue records",
                "Boundaries verified by mandal surveyor",
            ],
            &[
                "Objection filed by neighbour",
                "Boundary dispute pending before RDO",
                "Civil suit pending",
                "Ownership contested by legal heirs",
            ],
            &[
                "Documents not genuine",
                "Survey number does not match village map",
                "Applicant failed to appear for hearing",
            ],
        ];
        let list = NOTES[status as usize];
        let note = self
            .frng
            .gen_ratio(3, 4)
            .then(|| list[self.frng.gen_range(0..list.len())].to_string());
        let a = Args::Verification(VerificationArgs {
            note,
            property_id: id,
            status,
        });
        self.mark_busy(slot);
        let creator = if self.frng.gen_ratio(1, 30) {
            "admin".to_string()
        } else {
            format!("verifier@{state}")
        };
        self.follow(Target::Records, creator, a, Validation::Valid)
    }

    /// A misspelt name fixed (most corrections), else area, survey number, khata number or
    /// land type.
    pub(super) fn correction(&mut self, data: &DemoData, slot: usize) -> TypedFollowUp {
        let mut a = CorrectArgs::default();
        let mut slot = slot;
        let mut done = false;
        while !self.misspelt.is_empty() && self.frng.gen_ratio(9, 10) {
            let k = self.frng.gen_range(0..self.misspelt.len());
            let s = self.misspelt.swap_remove(k) as usize;
            if let Some((i, right)) = self.entries[s].fix.take() {
                let mut owners = self.entries[s].record.owners.clone();
                if let Some(o) = owners.get_mut(i) {
                    o.name = right.into();
                    slot = s;
                    a.owners = Some(owners);
                    a.note = Some("Owner name corrected as per Aadhaar".into());
                    done = true;
                    break;
                }
            }
        }
        let r = &self.entries[slot].record;
        let state = r.state.clone();
        let id = r.property_id;
        if !done {
            let place = data
                .places
                .find(&r.state, &r.district, &r.mandal, &r.village);
            let value_pct = place.map_or(100, |p| {
                let d = data.places.places[p as usize].district;
                data.places.districts[d as usize].value_pct
            });
            let mut what = self.frng.gen_range(0..100);
            if (40..65).contains(&what) && place.is_none() {
                what = 70;
            }
            let land_ty = if what >= 85 {
                land::corrected_type(&r.land_type, &mut self.frng)
            } else {
                None
            };
            match (what, land::type_index(&r.land_type), land_ty) {
                (0..=39, Some(ty), _) => {
                    let l = land::land(&mut self.frng, Self::state_ix(&state), ty, value_pct);
                    a.area_sq_m = Some(l.area_sq_m);
                    a.area_text = Some(l.area_text);
                    a.market_value = Some(l.market_value);
                    a.note = Some("Area corrected after re-measurement".into());
                }
                (40..=64, _, _) => {
                    let p = place.unwrap_or(0);
                    let k = self.resurvey_next.entry(p).or_insert(0);
                    let mut s = String::with_capacity(12);
                    land::resurvey_no(&data.places.places[p as usize], p, *k, &mut s);
                    *k += 1;
                    a.survey_no = Some(s);
                    a.note = Some("Survey number corrected as per resurvey".into());
                }
                (85.., _, Some(t)) => {
                    a.land_type = Some(t.into());
                    a.note = Some("Land classification corrected".into());
                }
                _ => {
                    let mut k = String::with_capacity(6);
                    push_u64(&mut k, self.frng.gen_range(1..=3000));
                    if r.khata_no.as_deref() == Some(k.as_str()) {
                        k.push('A');
                    }
                    a.khata_no = Some(k);
                    a.note = Some("Khata number corrected".into());
                }
            }
        }
        a.property_id = Some(id);
        self.mark_busy(slot);
        let creator = if self.frng.gen_ratio(1, 10) {
            "admin".to_string()
        } else {
            registrar(&state)
        };
        self.follow(
            Target::Records,
            creator,
            Args::Correction(a),
            Validation::Valid,
        )
    }

    pub(super) fn link_args(&mut self, id: PropertyId) -> Args {
        const TS_AP: &[(&str, u32)] = &[
            ("sale_deed", 30),
            ("encumbrance_certificate", 25),
            ("mutation_order", 15),
            ("survey_sketch", 12),
            ("pattadar_passbook", 15),
            ("legal_heir_certificate", 3),
        ];
        const KA: &[(&str, u32)] = &[
            ("sale_deed", 30),
            ("encumbrance_certificate", 25),
            ("mutation_order", 15),
            ("survey_sketch", 15),
            ("rtc_extract", 12),
            ("legal_heir_certificate", 3),
        ];
        let table = if id.state() == "KA" { KA } else { TS_AP };
        let mut r = self.frng.gen_range(0..100);
        let doc_type = table
            .iter()
            .find(|(_, w)| {
                if r < *w {
                    true
                } else {
                    r -= w;
                    false
                }
            })
            .map_or("sale_deed", |(t, _)| t);
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&self.seed.to_le_bytes());
        bytes.extend_from_slice(&self.follows.to_le_bytes());
        bytes.extend_from_slice(id.to_string().as_bytes());
        bytes.extend_from_slice(doc_type.as_bytes());
        Args::Link(LinkArgs {
            doc_hash: sha256(&bytes).to_hex(),
            doc_type: doc_type.into(),
            property_id: id,
        })
    }

    pub(super) fn link(&mut self, slot: usize) -> TypedFollowUp {
        let r = &self.entries[slot].record;
        let (id, state) = (r.property_id, r.state.clone());
        let a = self.link_args(id);
        let creator = if self.frng.gen_ratio(1, 20) {
            "admin".to_string()
        } else {
            registrar(&state)
        };
        self.follow(Target::Docs, creator, a, Validation::Valid)
    }

    /// One of the deliberately invalid follow-ups, in equal parts: duplicate parcel, unknown
    /// property, stale expected_tx, shares not adding to 100, negative area, another state's
    /// registrar.
    pub(super) fn invalid(&mut self, data: &DemoData, slot: usize) -> TypedFollowUp {
        let r = &self.entries[slot].record;
        let id = r.property_id;
        let state = r.state.clone();
        match self.frng.gen_range(0..6) {
            0 => self.duplicate(data, slot),
            1 => {
                let missing = PropertyId::sharded(
                    &state,
                    id.year(),
                    self.frng.gen_range(0..10),
                    90_000_000 + self.follows,
                )
                .unwrap_or(id);
                match self.frng.gen_range(0..3) {
                    0 => {
                        let owners = self.new_owners_for(data, slot, None);
                        let a = Args::Transfer(TransferArgs {
                            expected_tx: None,
                            owners,
                            property_id: missing,
                        });
                        let creator = registrar(&state);
                        self.follow(Target::Records, creator, a, Validation::PropertyNotFound)
                    }
                    1 => {
                        let a = Args::Verification(VerificationArgs {
                            note: None,
                            property_id: missing,
                            status: VerificationStatus::Verified,
                        });
                        let creator = format!("verifier@{state}");
                        self.follow(Target::Records, creator, a, Validation::PropertyNotFound)
                    }
                    _ => {
                        let a = self.link_args(missing);
                        let creator = registrar(&state);
                        self.follow(Target::Docs, creator, a, Validation::PropertyNotFound)
                    }
                }
            }
            2 => {
                let e = &self.entries[slot];
                let stale = match e.prev_tx {
                    Some(t) if t != e.tx => t,
                    _ => {
                        let mut b = self.seed.to_le_bytes().to_vec();
                        b.extend_from_slice(&self.follows.to_le_bytes());
                        b.extend_from_slice(b"stale");
                        sha256(&b)
                    }
                };
                let owners = self.new_owners_for(data, slot, None);
                let a = Args::Transfer(TransferArgs {
                    expected_tx: Some(stale),
                    owners,
                    property_id: id,
                });
                let creator = registrar(&state);
                self.follow(Target::Records, creator, a, Validation::VersionConflict)
            }
            3 => {
                const BAD: [&[i64]; 4] = [&[50, 40], &[60, 60], &[40, 30, 20], &[34, 33, 34]];
                let shares = BAD[self.frng.gen_range(0..BAD.len())];
                let owners = self.new_owners_for(data, slot, Some(shares));
                let a = Args::Transfer(TransferArgs {
                    expected_tx: None,
                    owners,
                    property_id: id,
                });
                let creator = registrar(&state);
                self.follow(Target::Records, creator, a, Validation::BadArgument)
            }
            4 => {
                let area = -self.entries[slot].record.area_sq_m.max(1);
                let a = Args::Correction(CorrectArgs {
                    property_id: Some(id),
                    area_sq_m: Some(area),
                    note: Some("Area corrected after re-measurement".into()),
                    ..CorrectArgs::default()
                });
                let creator = registrar(&state);
                self.follow(Target::Records, creator, a, Validation::BadArgument)
            }
            _ => {
                let others: Vec<&str> = STATES.iter().copied().filter(|s| *s != state).collect();
                let other = others[self.frng.gen_range(0..others.len())];
                match self.frng.gen_range(0..4) {
                    0 => {
                        let owners = self.new_owners_for(data, slot, None);
                        let a = Args::Transfer(TransferArgs {
                            expected_tx: None,
                            owners,
                            property_id: id,
                        });
                        // A verifier may not transfer, even in their own state.
                        let creator = if self.frng.gen_bool(0.5) {
                            registrar(other)
                        } else {
                            format!("verifier@{state}")
                        };
                        self.follow(Target::Records, creator, a, Validation::Unauthorized)
                    }
                    1 => {
                        let a = Args::Verification(VerificationArgs {
                            note: None,
                            property_id: id,
                            status: VerificationStatus::Verified,
                        });
                        let creator = format!("verifier@{other}");
                        self.follow(Target::Records, creator, a, Validation::Unauthorized)
                    }
                    2 => {
                        let a = Args::Correction(CorrectArgs {
                            property_id: Some(id),
                            khata_no: Some("1".into()),
                            ..CorrectArgs::default()
                        });
                        let creator = registrar(other);
                        self.follow(Target::Records, creator, a, Validation::Unauthorized)
                    }
                    _ => {
                        let a = self.link_args(id);
                        let creator = registrar(other);
                        self.follow(Target::Docs, creator, a, Validation::Unauthorized)
                    }
                }
            }
        }
    }

    /// A create of a parcel that is already registered, written a little differently
    /// (case, `-` for `/`), as a second registration attempt would be.
    pub(super) fn duplicate(&mut self, data: &DemoData, slot: usize) -> TypedFollowUp {
        let r = &self.entries[slot].record;
        let st = Self::state_ix(&r.state);
        let state = r.state.clone();
        let (district, mandal) = (r.district.clone(), r.mandal.clone());
        let mut village = r.village.clone();
        let mut survey = r.survey_no.clone();
        let land_type = land::type_index(&r.land_type).unwrap_or(0);
        let value_pct = data
            .places
            .find(&r.state, &r.district, &r.mandal, &r.village)
            .map_or(100, |p| {
                let d = data.places.places[p as usize].district;
                data.places.districts[d as usize].value_pct
            });
        match self.frng.gen_range(0..4) {
            0 => village.make_ascii_uppercase(),
            1 => {
                survey = survey
                    .chars()
                    .map(|c| match c {
                        '/' => '-',
                        '-' => '/',
                        c => c.to_ascii_lowercase(),
                    })
                    .collect()
            }
            2 => survey = survey.replace('/', " / "),
            _ => {}
        }
        let owners = self.new_owners_for(data, slot, Some(&[100]));
        let l = land::land(&mut self.frng, st, land_type, value_pct);
        let mut request_id = format!("REQ-{state}-{}-D", &self.seed_hex[8..]);
        push_u64(&mut request_id, self.follows);
        let creator = registrar(&state);
        let a = Args::Create(CreateArgs {
            area_sq_m: l.area_sq_m,
            area_text: l.area_text,
            district,
            khata_no: None,
            land_type: l.land_type.into(),
            mandal,
            market_value: l.market_value,
            owners,
            request_id,
            state,
            survey_no: survey,
            village,
        });
        self.follow(Target::Records, creator, a, Validation::DuplicateParcel)
    }
}
