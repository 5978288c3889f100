use super::*;

fn targets(list: &[(&str, Micros)]) -> Vec<(String, Micros)> {
    list.iter().map(|(v, a)| (v.to_string(), *a)).collect()
}

fn parts(list: &[(&str, Micros)]) -> Vec<(String, Micros)> {
    targets(list)
}

fn fixed(list: &[(&str, u32)]) -> Method {
    Method::Fixed {
        shares: list
            .iter()
            .map(|(v, bp)| FixedShare {
                value: v.to_string(),
                basis_points: *bp,
            })
            .collect(),
    }
}

#[test]
fn proportional_split_follows_spend_and_rounds_by_largest_remainder() {
    let t = targets(&[("a", 1), ("b", 1), ("c", 1)]);
    // 100 / 3 = 33.33 each: the one micro-unit left goes to the first by name.
    assert_eq!(
        split(100, &t, &Method::Proportional),
        parts(&[("a", 34), ("b", 33), ("c", 33)])
    );
    let t = targets(&[("data", 300), ("web", 100), ("zero", 0), ("neg", -50)]);
    assert_eq!(
        split(1_000_003, &t, &Method::Proportional),
        parts(&[("data", 750_002), ("web", 250_001)])
    );
    // 7 * 2/3 = 4.67, 7 * 1/3 = 2.33: the larger remainder (0.67) wins the micro-unit.
    let t = targets(&[("a", 1), ("b", 2)]);
    assert_eq!(
        split(7, &t, &Method::Proportional),
        parts(&[("a", 2), ("b", 5)])
    );
}

#[test]
fn credits_split_symmetrically() {
    let t = targets(&[("a", 1), ("b", 1), ("c", 1)]);
    assert_eq!(
        split(-100, &t, &Method::Proportional),
        parts(&[("a", -34), ("b", -33), ("c", -33)])
    );
    assert_eq!(split(0, &t, &Method::Even), Vec::<(String, Micros)>::new());
}

#[test]
fn even_split_gives_each_value_with_spend_the_same_share() {
    let t = targets(&[("a", 5), ("b", 1_000), ("c", 0)]);
    assert_eq!(split(11, &t, &Method::Even), parts(&[("a", 6), ("b", 5)]));
}

#[test]
fn nothing_to_split_onto_leaves_the_charge_unallocated() {
    assert_eq!(
        split(42, &[], &Method::Proportional),
        parts(&[(UNALLOCATED, 42)])
    );
    let t = targets(&[("a", 0), ("b", -3)]);
    assert_eq!(split(42, &t, &Method::Even), parts(&[(UNALLOCATED, 42)]));
}

#[test]
fn fixed_shares_below_100_percent_leave_the_rest_unallocated() {
    let m = fixed(&[("web", 5_000), ("data", 2_500)]);
    // Targets do not matter for fixed shares, even values without spend receive theirs.
    assert_eq!(
        split(1_000_001, &[], &m),
        parts(&[("data", 250_000), ("web", 500_001), (UNALLOCATED, 250_000)])
    );
    let m = fixed(&[("a", 3_333), ("b", 3_333), ("c", 3_334)]);
    assert_eq!(split(10, &[], &m), parts(&[("a", 3), ("b", 3), ("c", 4)]));
}

fn rule(name: &str, method: Method) -> AllocationRule {
    let (method, shares) = match method {
        Method::Proportional => (MethodName::Proportional, vec![]),
        Method::Even => (MethodName::Even, vec![]),
        Method::Fixed { shares } => (MethodName::Fixed, shares),
    };
    AllocationRule {
        name: name.into(),
        key: "Team".into(),
        charges: ChargeSelector {
            without_resource: true,
            ..ChargeSelector::default()
        },
        method,
        shares,
    }
}

#[test]
fn invalid_rules_are_refused_naming_the_field() {
    let field = |rules: &[AllocationRule]| validate(rules).unwrap_err().field;
    assert!(validate(&[rule("support", Method::Proportional)]).is_ok());
    assert_eq!(field(&[rule(" ", Method::Even)]), "name");
    assert_eq!(
        field(&[rule("x", Method::Even), rule("x", Method::Even)]),
        "name"
    );
    let mut no_key = rule("x", Method::Even);
    no_key.key = String::new();
    assert_eq!(field(&[no_key]), "key");
    let mut everything = rule("x", Method::Even);
    everything.charges = ChargeSelector::default();
    assert_eq!(field(&[everything]), "charges");
    assert_eq!(field(&[rule("x", fixed(&[]))]), "shares");
    let mut stray = rule("x", Method::Even);
    stray.shares = vec![FixedShare {
        value: "a".into(),
        basis_points: 1,
    }];
    assert_eq!(field(&[stray]), "shares");
    assert_eq!(
        field(&[rule("x", fixed(&[("a", 6_000), ("b", 4_001)]))]),
        "shares.basis_points"
    );
    assert_eq!(
        field(&[rule("x", fixed(&[("a", 1), ("a", 1)]))]),
        "shares.value"
    );
    // Naming the bucket is allowed: it says outright what stays unattributed.
    assert!(validate(&[rule("x", fixed(&[("a", 9_000), (UNALLOCATED, 1_000)]))]).is_ok());
    let e = validate(&[rule("x", fixed(&[("a", 6_000), ("b", 4_001)]))]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "allocation rule 0 (\"x\"): `shares.basis_points` add up to 10,001, over 10,000 (100%)"
    );
}

#[test]
fn rules_read_from_json_with_their_method() {
    let rules: Vec<AllocationRule> = serde_json::from_str(
        r#"[{"name":"support","key":"Team","charges":{"without_resource":true},
             "method":"fixed","shares":[{"value":"web","basis_points":6000}]},
            {"name":"tax","key":"Team","charges":{"services":["Tax"]},"method":"proportional"}]"#,
    )
    .unwrap();
    assert_eq!(rules[0].method(), fixed(&[("web", 6_000)]));
    assert_eq!(rules[1].method(), Method::Proportional);
    assert_eq!(rules[1].charges.services, vec!["Tax".to_string()]);
    let e = serde_json::from_str::<Vec<AllocationRule>>(
        r#"[{"name":"s","key":"Team","charges":{"without_resource":true},"method":"fair"}]"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("fair"), "{e}");
}

#[test]
fn selectors_match_every_condition_given() {
    let line = |id: &str, service: &str, account: &str| CostLine {
        resource_id: id.into(),
        provider: crate::inventory::Provider::Aws,
        account: account.into(),
        region: Default::default(),
        service: service.into(),
        resource_type: Default::default(),
        name: Default::default(),
        tags: Default::default(),
        amount: 1,
    };
    let s = ChargeSelector {
        without_resource: true,
        services: vec!["Tax".into()],
        accounts: vec![],
    };
    assert!(s.selects(&line("", "Tax", "1")));
    assert!(!s.selects(&line("i-1", "Tax", "1")));
    assert!(!s.selects(&line("", "Support", "1")));
    let s = ChargeSelector {
        accounts: vec!["999".into()],
        ..ChargeSelector::default()
    };
    assert!(s.selects(&line("i-1", "EC2", "999")));
    assert!(!s.selects(&line("i-1", "EC2", "111")));
}

/// SplitMix64: a seeded generator, so every failing case can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An amount of any size class: micro-units to near the bound, either sign.
    fn amount(&mut self) -> Micros {
        let bits = self.below(63) as u32;
        let magnitude = (self.next() >> (64 - bits.max(1))) as i64;
        if self.below(2) == 0 {
            magnitude
        } else {
            -magnitude
        }
    }
}

/// Property: on random amounts, targets and methods, the parts add up to the amount exactly,
/// carry its sign, and each differs from its exact quota by less than one micro-unit.
#[test]
fn splits_add_up_exactly_on_random_inputs() {
    let mut rng = Rng(0x0007_A60A_110C);
    for case in 0..20_000 {
        let amount = rng.amount();
        let n = rng.below(12) as usize;
        // Target spend bounded like a real answer: their absolute values fit in Micros.
        let cap = (i64::MAX as u64 / (n as u64 + 1)).max(1);
        let t: Vec<(String, Micros)> = (0..n)
            .map(|i| {
                let spend = (rng.next() >> rng.below(64)) % cap;
                let spend = if rng.below(8) == 0 {
                    -(spend as i64)
                } else {
                    spend as i64
                };
                (format!("v{i:02}"), spend)
            })
            .collect();
        let method = match rng.below(3) {
            0 => Method::Proportional,
            1 => Method::Even,
            _ => {
                let mut left = FULL_BASIS_POINTS;
                let shares = (0..rng.below(6))
                    .map(|i| {
                        let bp = rng.below(u64::from(left) + 1) as u32;
                        left -= bp;
                        FixedShare {
                            value: format!("f{i}"),
                            basis_points: bp,
                        }
                    })
                    .collect();
                Method::Fixed { shares }
            }
        };
        let got = split(amount, &t, &method);
        let sum: i128 = got.iter().map(|(_, a)| i128::from(*a)).sum();
        assert_eq!(
            sum,
            i128::from(amount),
            "case {case}: {amount} {t:?} {method:?}"
        );
        assert!(
            got.iter()
                .all(|(_, a)| *a == 0 || (a.signum() == amount.signum())),
            "case {case}: signs {got:?}"
        );
        // Proportionality: each value's part is within one micro-unit of its exact quota.
        let weights: Vec<(&str, i128)> = match &method {
            Method::Proportional => t
                .iter()
                .filter(|(_, s)| *s > 0)
                .map(|(v, s)| (v.as_str(), i128::from(*s)))
                .collect(),
            Method::Even => t
                .iter()
                .filter(|(_, s)| *s > 0)
                .map(|(v, _)| (v.as_str(), 1))
                .collect(),
            Method::Fixed { shares } => {
                let given: u32 = shares.iter().map(|s| s.basis_points).sum();
                shares
                    .iter()
                    .map(|s| (s.value.as_str(), i128::from(s.basis_points)))
                    .chain([(UNALLOCATED, i128::from(FULL_BASIS_POINTS - given))])
                    .collect()
            }
        };
        let total: i128 = weights.iter().map(|(_, w)| w).sum();
        if total == 0 {
            if amount != 0 {
                assert_eq!(got, vec![(UNALLOCATED.to_string(), amount)], "case {case}");
            }
            continue;
        }
        for (value, w) in &weights {
            let part = got
                .iter()
                .find(|(v, _)| v == value)
                .map_or(0, |(_, a)| i128::from(*a));
            // |part * total - amount * w| < total, i.e. |part - quota| < 1 (in u128 to be exact).
            let diff = (part * total - i128::from(amount) * w).unsigned_abs();
            assert!(
                diff < total as u128,
                "case {case}: {value} got {part}, {amount} {t:?} {method:?}"
            );
        }
    }
}

#[test]
fn kept_rules_must_spell_out_100_percent() {
    let complete = |m: Method| validate_complete(&[rule("x", m)]);
    assert!(complete(fixed(&[("a", 6_000), ("b", 4_000)])).is_ok());
    assert!(complete(fixed(&[("a", 8_500), (UNALLOCATED, 1_500)])).is_ok());
    assert!(complete(Method::Proportional).is_ok());
    assert!(complete(Method::Even).is_ok());
    let e = complete(fixed(&[("a", 6_000), ("b", 2_500)])).unwrap_err();
    assert_eq!(e.field, "shares.basis_points");
    assert_eq!(
        e.to_string(),
        "allocation rule 0 (\"x\"): `shares.basis_points` add up to 8,500, not 10,000 (100%); \
         give the remaining 1,500 to a value, or to `(unallocated)` to leave them unattributed \
         on purpose"
    );
    // The lenient checks come first: over 100% says so.
    let e = complete(fixed(&[("a", 6_000), ("b", 4_001)])).unwrap_err();
    assert!(e.to_string().contains("over 10,000"), "{e}");
    // And a duplicate name is still refused before the sums.
    let twice = [
        rule("x", fixed(&[("a", 10_000)])),
        rule("x", fixed(&[("a", 10_000)])),
    ];
    assert_eq!(validate_complete(&twice).unwrap_err().field, "name");
}

#[test]
fn a_named_unallocated_share_joins_the_bucket() {
    let spelled = fixed(&[("web", 5_000), ("data", 2_500), (UNALLOCATED, 2_500)]);
    let implied = fixed(&[("web", 5_000), ("data", 2_500)]);
    for amount in [1_000_001, -7, 0, 3] {
        assert_eq!(split(amount, &[], &spelled), split(amount, &[], &implied));
    }
    assert_eq!(
        split(1_000_001, &[], &spelled),
        parts(&[("data", 250_000), ("web", 500_001), (UNALLOCATED, 250_000)])
    );
}
