//! FOCUS provider tests: columns and metrics, periods, amounts and credits, tags, ids,
//! malformed rows, currencies, several files, and the background reader.

use super::*;

const HEADER: &str = "ResourceId,ResourceName,ServiceName,BilledCost,EffectiveCost,\
        BillingCurrency,ChargePeriodStart,ProviderName,SubAccountId,RegionId,Tags";

fn oct() -> Period {
    Period {
        start: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        end: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
    }
}

fn read_with(
    text: &str,
    metric: CostMetric,
    period: Option<Period>,
) -> Result<LineCosts, CostError> {
    let mut agg = FocusAggregate::new();
    read_focus(text.as_bytes(), "t.csv", metric, period, &mut agg)?;
    Ok(agg.finish(metric, period, "FOCUS file(s) t.csv".into()))
}

fn read(text: &str) -> LineCosts {
    read_with(text, CostMetric::BilledCost, Some(oct())).unwrap()
}

fn line<'a>(costs: &'a LineCosts, id: &str, service: &str) -> &'a CostLine {
    costs
        .lines
        .iter()
        .find(|l| l.resource_id == id && l.service == service)
        .unwrap_or_else(|| panic!("no line {id} / {service}: {:#?}", costs.lines))
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn problem_lines(costs: &LineCosts) -> Vec<u64> {
    costs.report.problems.iter().map(|p| p.line).collect()
}

#[test]
fn columns_in_any_order_and_casing() {
    let text = "tags,CHARGEPERIODSTART,servicename,Unknown,billedcost,RESOURCEID\n\
            \"{\"\"team\"\":\"\"a\"\"}\",2026-10-02T00:00:00Z,S3,x,1.5,res-1\n";
    let c = read(text);
    assert_eq!(c.lines.len(), 1);
    let l = &c.lines[0];
    assert_eq!(
        (l.resource_id.as_str(), l.service.as_str(), l.amount),
        ("res-1", "S3", 1_500_000)
    );
    assert_eq!(l.tags, tags(&[("team", "a")]));
    assert_eq!(l.provider, Provider::File);
    assert_eq!(c.currency, "USD");
    assert!(c.report.complete);
    assert!(
        c.report.notes.iter().any(|n| n.contains("BillingCurrency")),
        "{:?}",
        c.report.notes
    );
}

#[test]
fn both_metrics() {
    let text = format!(
        "{HEADER}\nr1,,EC2,10.00,8.50,USD,2026-10-01,AWS,,,\n\
             r1,,EC2,1.00,0.75,USD,2026-10-02,AWS,,,\n"
    );
    let billed = read_with(&text, CostMetric::BilledCost, Some(oct())).unwrap();
    let effective = read_with(&text, CostMetric::EffectiveCost, Some(oct())).unwrap();
    assert_eq!(billed.total(), 11_000_000);
    assert_eq!(effective.total(), 9_250_000);
    assert_eq!(effective.metric, CostMetric::EffectiveCost);
    let err = read_with(&text, CostMetric::UnblendedCost, Some(oct())).unwrap_err();
    assert!(matches!(err, CostError::Invalid(_)), "{err}");
}

#[test]
fn the_metric_column_is_required_only_when_chosen() {
    let text = "ResourceId,ServiceName,ChargePeriodStart,BilledCost\nr,S,2026-10-01,1\n";
    assert_eq!(read(text).total(), 1_000_000);
    let err = read_with(text, CostMetric::EffectiveCost, Some(oct())).unwrap_err();
    assert!(err.to_string().contains("EffectiveCost"), "{err}");
}

#[test]
fn period_filter_and_whole_file_period() {
    let text = format!(
        "{HEADER}\nr1,,EC2,1,1,USD,2026-09-30T23:00:00Z,AWS,,,\n\
             r1,,EC2,2,2,USD,2026-10-01T00:00:00Z,AWS,,,\n\
             r1,,EC2,4,4,USD,2026-10-31 23:59:59,AWS,,,\n\
             r1,,EC2,8,8,USD,2026-11-01T00:00:00Z,AWS,,,\n"
    );
    let c = read(&text);
    assert_eq!(c.total(), 6_000_000);
    assert_eq!(
        (
            c.report.rows_read,
            c.report.rows_used,
            c.report.rows_skipped
        ),
        (4, 2, 0)
    );
    assert_eq!(c.period, oct());

    let all = read_with(&text, CostMetric::BilledCost, None).unwrap();
    assert_eq!(all.total(), 15_000_000);
    assert_eq!(all.report.rows_used, 4);
    assert_eq!(
        all.period,
        Period {
            start: NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        }
    );

    let empty = read_with(HEADER, CostMetric::BilledCost, None).unwrap();
    let today = chrono::Utc::now().date_naive();
    assert_eq!(empty.period.start, today);
    assert_eq!(empty.period.days(), 1);
    assert!(empty.lines.is_empty());
    assert!(empty.report.complete);
}

#[test]
fn a_resource_aggregates_across_rows_and_services() {
    let text = format!(
        "{HEADER}\n\
             r1,web,EC2,10,0,USD,2026-10-01,AWS,,,\n\
             r2,,EC2,1,0,USD,2026-10-01,AWS,,,\n\
             r1,other-name,EC2,5.25,0,USD,2026-10-02,AWS,,,\n\
             r1,,CloudWatch,0.75,0,USD,2026-10-02,AWS,,,\n\
             r1,,EC2,-3.5,0,USD,2026-10-03,AWS,,,\n"
    );
    let c = read(&text);
    let keys: Vec<(&str, &str)> = c
        .lines
        .iter()
        .map(|l| (l.resource_id.as_str(), l.service.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![("r1", "CloudWatch"), ("r1", "EC2"), ("r2", "EC2")]
    );
    assert_eq!(line(&c, "r1", "EC2").amount, 11_750_000);
    assert_eq!(line(&c, "r1", "CloudWatch").amount, 750_000);
    assert_eq!(line(&c, "r1", "CloudWatch").name, "web", "first row's name");
    assert_eq!(c.total(), 13_500_000);
    assert_eq!(c.report.rows_used, 5);
}

#[test]
fn credits_can_make_a_line_negative() {
    let text = format!(
        "{HEADER}\nr1,,EC2,2,2,USD,2026-10-01,AWS,,,\n\
             r1,,EC2,-5.000001,-5,USD,2026-10-02,AWS,,,\n\
             ,,Credits,-100,-100,USD,2026-10-02,AWS,111,,\n"
    );
    let c = read(&text);
    assert_eq!(line(&c, "r1", "EC2").amount, -3_000_001);
    assert_eq!(line(&c, "", "Credits").amount, -100_000_000);
    assert_eq!(c.total(), -103_000_001);
}

/// Issue 12: two rows of 9,000,000,000,000 (each below the bound) summed to a negative
/// total. Now the read fails naming the file and the line that crossed the bound, for
/// different resources, the same line, and a charge against a credit alike.
#[test]
fn amounts_too_large_to_total_are_refused_not_wrapped() {
    for (second, why) in [
        ("r2,,EC2,9000000000000", "another resource"),
        ("r1,,EC2,9000000000000", "the same line"),
        (",,Credit,-9000000000000", "a credit tied to no resource"),
    ] {
        let text = format!(
            "{HEADER}\nr1,,EC2,9000000000000,1,USD,2026-10-01,AWS,,,\n\
                 r3,,EC2,1,1,USD,2026-09-01,AWS,,,\n\
                 {second},1,USD,2026-10-02,AWS,,,\n"
        );
        let err = read_with(&text, CostMetric::BilledCost, Some(oct())).unwrap_err();
        assert!(matches!(err, CostError::TooLarge(_)), "{why}: {err}");
        let message = err.to_string();
        assert!(
            message.contains("t.csv") && message.contains("line 4"),
            "{why}: {message}"
        );
        assert!(message.contains("9,223,372,036,854.78"), "{message}");
        // The other metric's small amounts are fine.
        let effective = read_with(&text, CostMetric::EffectiveCost, Some(oct())).unwrap();
        assert_eq!(effective.total(), 2_000_000);
    }
    // One such row is exact; rows outside the period do not count.
    let text = format!(
        "{HEADER}\nr1,,EC2,9000000000000,1,USD,2026-10-01,AWS,,,\n\
             r2,,EC2,9000000000000,1,USD,2026-09-30,AWS,,,\n"
    );
    assert_eq!(read(&text).total(), 9_000_000_000_000_000_000);
    assert!(read_with(&text, CostMetric::BilledCost, None).is_err());
}

#[test]
fn an_amount_beyond_the_bound_is_a_malformed_row() {
    let text = format!(
        "{HEADER}\nr1,,EC2,99999999999999,1,USD,2026-10-01,AWS,,,\n\
             r1,,EC2,1e300,1,USD,2026-10-01,AWS,,,\n\
             r1,,EC2,2.5,1,USD,2026-10-01,AWS,,,\n"
    );
    let c = read(&text);
    assert_eq!(c.total(), 2_500_000);
    assert_eq!(problem_lines(&c), vec![2, 3]);
    let reason = &c.report.problems[0].reason;
    assert!(
        reason.contains("99999999999999") && reason.contains("largest amount"),
        "{reason}"
    );
    assert!(!reason.contains("not a number"), "{reason}");
}

#[test]
fn resource_less_charges_group_by_account_region_service_and_tags() {
    let text = format!(
        "{HEADER}\n\
             ,,Support,10,10,USD,2026-10-01,AWS,111,,\n\
             ,,Support,5,5,USD,2026-10-02,AWS,111,,\n\
             ,,Support,1,1,USD,2026-10-02,AWS,222,,\n\
             ,,Tax,2,2,USD,2026-10-02,AWS,111,us-east-1,\n\
             ,,Tax,3,3,USD,2026-10-02,AWS,111,us-east-1,\"{{\"\"user:team\"\":\"\"x\"\"}}\"\n\
             ,,Tax,4,4,USD,2026-10-03,AWS,111,us-east-1,\"{{\"\"user:team\"\":\"\"x\"\"}}\"\n"
    );
    let c = read(&text);
    assert_eq!(c.lines.len(), 4);
    assert!(c.lines.iter().all(|l| l.resource_id.is_empty()));
    let support: Vec<(&str, Micros)> = c
        .lines
        .iter()
        .filter(|l| l.service == "Support")
        .map(|l| (l.account.as_str(), l.amount))
        .collect();
    assert_eq!(support, vec![("111", 15_000_000), ("222", 1_000_000)]);
    let tagged = c
        .lines
        .iter()
        .find(|l| l.service == "Tax" && !l.tags.is_empty())
        .unwrap();
    assert_eq!(tagged.amount, 7_000_000);
    assert_eq!(tagged.tags, tags(&[("team", "x")]));
    assert_eq!(tagged.region, "us-east-1");
    assert_eq!(tagged.provider, Provider::Aws);
    assert_eq!(c.total(), 25_000_000);
}

#[test]
fn tags_keep_casing_drop_user_prefix_and_stringify() {
    let cell = r#"{"user:TEAM":"payments","environment":"Prod","user:CostCenter":12,"on":true,"gone":null,"team":"kept"}"#;
    let text = format!(
        "{HEADER}\nr1,,EC2,1,1,USD,2026-10-01,AWS,,,\"{}\"\n",
        cell.replace('"', "\"\"")
    );
    let c = read(&text);
    assert_eq!(
        c.lines[0].tags,
        tags(&[
            ("CostCenter", "12"),
            ("TEAM", "payments"),
            ("environment", "Prod"),
            ("gone", ""),
            ("on", "true"),
            ("team", "kept"),
        ])
    );
}

#[test]
fn tags_are_read_from_a_resources_first_row_only() {
    let text = format!(
        "{HEADER}\nr1,,EC2,1,1,USD,2026-10-01,AWS,,,\"{{\"\"a\"\":\"\"1\"\"}}\"\n\
             r1,,EC2,1,1,USD,2026-10-02,AWS,,,\"{{\"\"a\"\":\"\"2\"\"}}\"\n\
             r1,,EBS,1,1,USD,2026-10-02,AWS,,,not json\n"
    );
    let c = read(&text);
    assert!(c.report.complete, "later rows' tags are not parsed");
    assert!(c.lines.iter().all(|l| l.tags == tags(&[("a", "1")])));
}

#[test]
fn ids_give_types_names_accounts_and_regions() {
    let text = format!(
        "{HEADER}\n\
             arn:aws:ec2:us-east-1:111122223333:instance/i-0abc,,EC2,1,1,USD,2026-10-01,AWS,,,\n\
             arn:aws:s3:::logs,pretty-logs,S3,1,1,USD,2026-10-01,AWS,999,eu-west-1,\n\
             /subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1,,VMs,1,1,USD,2026-10-01,Microsoft,,westeurope,\n\
             /subscriptions/sub-2/resourcegroups/rg/providers/microsoft.sql/servers/s1/databases/db1,,SQL,1,1,USD,2026-10-01,Azure,,,\n\
             //compute.googleapis.com/projects/p1/zones/europe-west1-b/instances/vm-9,,GCE,1,1,USD,2026-10-01,Google Cloud,,,\n\
             //storage.googleapis.com/projects/_/buckets/lake,,GCS,1,1,USD,2026-10-01,,proj-x,EU,\n\
             i-plain,,Other,1,1,USD,2026-10-01,Oracle,acc,r,\n"
    );
    let c = read(&text);
    let facts = |id: &str, service: &str| {
        let l = line(&c, id, service);
        (
            l.provider,
            l.resource_type.to_string(),
            l.name.to_string(),
            l.account.to_string(),
            l.region.to_string(),
        )
    };
    let f = |p, t: &str, n: &str, a: &str, r: &str| {
        (
            p,
            t.to_string(),
            n.to_string(),
            a.to_string(),
            r.to_string(),
        )
    };
    assert_eq!(
        facts("arn:aws:ec2:us-east-1:111122223333:instance/i-0abc", "EC2"),
        f(
            Provider::Aws,
            "ec2:instance",
            "i-0abc",
            "111122223333",
            "us-east-1"
        )
    );
    assert_eq!(
        facts("arn:aws:s3:::logs", "S3"),
        f(
            Provider::Aws,
            "s3:bucket",
            "pretty-logs",
            "999",
            "eu-west-1"
        ),
        "columns win over the ARN"
    );
    assert_eq!(
        facts(
            "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1",
            "VMs"
        ),
        f(
            Provider::Azure,
            "azure:compute/virtualmachines",
            "vm-1",
            "sub-1",
            "westeurope"
        )
    );
    assert_eq!(
        facts(
            "/subscriptions/sub-2/resourcegroups/rg/providers/microsoft.sql/servers/s1/databases/db1",
            "SQL"
        ),
        f(
            Provider::Azure,
            "azure:sql/servers/databases",
            "db1",
            "sub-2",
            ""
        )
    );
    assert_eq!(
        facts(
            "//compute.googleapis.com/projects/p1/zones/europe-west1-b/instances/vm-9",
            "GCE"
        ),
        f(
            Provider::Gcp,
            "gcp:compute/instance",
            "vm-9",
            "p1",
            "europe-west1-b"
        )
    );
    assert_eq!(
        facts("//storage.googleapis.com/projects/_/buckets/lake", "GCS"),
        f(Provider::Gcp, "gcp:storage/bucket", "lake", "proj-x", "EU"),
        "no provider column value: the id tells"
    );
    assert_eq!(
        facts("i-plain", "Other"),
        f(Provider::File, "", "", "acc", "r")
    );
}

#[test]
fn provider_names() {
    let cases = [
        ("AWS", Provider::Aws),
        ("Amazon Web Services", Provider::Aws),
        ("microsoft", Provider::Azure),
        ("Microsoft Azure", Provider::Azure),
        ("Azure", Provider::Azure),
        ("Google Cloud", Provider::Gcp),
        ("GCP", Provider::Gcp),
        ("google", Provider::Gcp),
        ("Oracle", Provider::File),
    ];
    for (name, expected) in cases {
        let text = format!(
            "ResourceId,ServiceName,ChargePeriodStart,BilledCost,ServiceProviderName\n\
                 r,S,2026-10-01,1,{name}\n"
        );
        assert_eq!(read(&text).lines[0].provider, expected, "{name}");
    }
    let region = "ResourceId,ServiceName,ChargePeriodStart,BilledCost,Region\n\
                      r,S,2026-10-01,1,us-west-2\n";
    assert_eq!(read(region).lines[0].region, "us-west-2");
}

#[test]
fn malformed_rows_are_skipped_and_reported_with_their_line() {
    let text = format!(
        "{HEADER}\n\
             r1,,EC2,1,1,USD,2026-10-01,AWS,,,\n\
             r2,,EC2,abc,1,USD,2026-10-01,AWS,,,\n\
             r3,,EC2,1,1,USD,10/01/2026,AWS,,,\n\
             r4,,EC2,1,1,USD,2026-10-01,AWS\n\
             r5,,EC2,1,1,USD,2026-10-01,AWS,,,{{team: x}}\n\
             r6,,EC2,1,1,USD,2026-13-01,AWS,,,\n\
             r7,,EC2,,1,USD,2026-10-01,AWS,,,\n\
             r8,,EC2,1,1,USD,2026-10-01,AWS,,,[1]\n\
             r1,,EC2,2,1,USD,2026-10-02,AWS,,,\n"
    );
    let c = read(&text);
    assert_eq!(problem_lines(&c), vec![3, 4, 5, 6, 7, 8, 9]);
    let reasons: Vec<&str> = c
        .report
        .problems
        .iter()
        .map(|p| p.reason.as_str())
        .collect();
    assert!(
        reasons[0].contains("BilledCost \"abc\" is not a number"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].contains("ChargePeriodStart \"10/01/2026\""),
        "{}",
        reasons[1]
    );
    assert!(
        reasons[2].contains("8 fields where the header has 11"),
        "{}",
        reasons[2]
    );
    assert!(
        reasons[3].contains("Tags \"{team: x}\" is not a JSON object"),
        "{}",
        reasons[3]
    );
    assert!(reasons[4].contains("2026-13-01"), "{}", reasons[4]);
    assert!(reasons[5].contains("BilledCost \"\""), "{}", reasons[5]);
    assert!(reasons[6].contains("Tags \"[1]\""), "{}", reasons[6]);
    assert!(c.report.problems.iter().all(|p| p.file == "t.csv"));
    assert_eq!(
        (
            c.report.rows_read,
            c.report.rows_used,
            c.report.rows_skipped
        ),
        (9, 2, 7)
    );
    assert!(!c.report.complete);
    assert_eq!(c.total(), 3_000_000);
    assert_eq!(c.lines.len(), 1);
}

#[test]
fn only_the_first_fifty_problems_are_kept() {
    let mut text = format!("{HEADER}\n");
    for _ in 0..70 {
        text.push_str("r,,EC2,x,1,USD,2026-10-01,AWS,,,\n");
    }
    let c = read(&text);
    assert_eq!(c.report.rows_skipped, 70);
    assert_eq!(c.report.problems.len(), 50);
    assert_eq!(c.report.problems[49].line, 51);
    assert!(
        c.report
            .notes
            .iter()
            .any(|n| n.contains("70 rows were skipped"))
    );
}

#[test]
fn missing_required_columns_are_named() {
    let err = read_with(
        "ResourceId,BilledCost,Foo\nr,1,x\n",
        CostMetric::BilledCost,
        None,
    )
    .unwrap_err();
    let CostError::FileFormat { file, reason } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(file, "t.csv");
    assert!(
        reason.contains("missing required column(s) ChargePeriodStart, ServiceName"),
        "{reason}"
    );
    assert!(reason.contains("ResourceId, BilledCost, Foo"), "{reason}");
    let empty = read_with("", CostMetric::BilledCost, None).unwrap_err();
    assert!(empty.to_string().contains("the file is empty"), "{empty}");
}

#[test]
fn other_currencies_are_skipped_after_the_first() {
    let text = format!(
        "{HEADER}\nr1,,EC2,1,1,eur,2026-09-01,AWS,,,\n\
             r1,,EC2,1,1,usd,2026-10-01,AWS,,,\n\
             r1,,EC2,2,1,EUR,2026-10-02,AWS,,,\n\
             r1,,EC2,4,1,,2026-10-03,AWS,,,\n"
    );
    let c = read(&text);
    assert_eq!(c.currency, "USD", "the first *used* row sets it");
    assert_eq!(problem_lines(&c), vec![4]);
    assert!(
        c.report.problems[0]
            .reason
            .contains("currency EUR differs from USD of earlier rows"),
        "{}",
        c.report.problems[0].reason
    );
    assert_eq!(c.total(), 5_000_000, "an empty currency cell is USD");
}

#[test]
fn bom_crlf_and_quoted_fields() {
    let text = "\u{feff}ResourceId,ResourceName,ServiceName,BilledCost,ChargePeriodStart,Tags\r\n\
            r1,\"web, primary\",EC2,1,2026-10-01,\r\n\
            r2,\"two\r\nline\nname\",EC2,2,2026-10-01,\"{\"\"note\"\":\"\"a,b\"\"}\"\r\n\
            r3,,EC2,bad,2026-10-01,\r\n\
            \r\n\
            r4,\"x\",EC2,4,2026-10-01,\"{\"\"k\"\":\"\"v\"\"}\"\r\n\
            r5,,EC2,1,2026-10-01,nope";
    let c = read(text);
    assert_eq!(line(&c, "r1", "EC2").name, "web, primary");
    assert_eq!(line(&c, "r2", "EC2").name, "two\r\nline\nname");
    assert_eq!(line(&c, "r2", "EC2").tags, tags(&[("note", "a,b")]));
    assert_eq!(line(&c, "r4", "EC2").tags, tags(&[("k", "v")]));
    assert_eq!(problem_lines(&c), vec![6, 9], "{:?}", c.report.problems);
    assert!(c.report.problems[0].reason.contains("\"bad\" is not"));
    assert!(c.report.problems[1].reason.contains("Tags \"nope\""));
    assert_eq!(c.report.rows_read, 5, "the blank line is not a row");
    assert_eq!(c.total(), 7_000_000);
}

#[test]
fn line_numbers_survive_blank_lines() {
    let text = "ResourceId,ServiceName,BilledCost,ChargePeriodStart\n\
            r1,EC2,1,2026-10-01\n\n\n\
            r2,EC2,x,2026-10-01\n\
            r3,EC2,y,2026-10-01\n";
    let c = read(text);
    assert_eq!(problem_lines(&c), vec![5, 6]);
    assert_eq!(c.report.rows_read, 3);
}

#[test]
fn parts_always_add_up() {
    let mut text = format!("{HEADER}\n");
    let mut expected: Micros = 0;
    let mut state: u64 = 7;
    for i in 0..2_000u64 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let micros = (state >> 33) as i64 % 50_000_000 - 5_000_000;
        let day = 1 + (i % 40);
        let (month, day) = if day > 31 { (11, day - 31) } else { (10, day) };
        let id = if i.is_multiple_of(13) {
            String::new()
        } else {
            format!("r{}", i % 97)
        };
        let service = ["EC2", "S3", "RDS"][(i % 3) as usize];
        let account = i % 4;
        let amount = format!(
            "{}{}.{:06}",
            if micros < 0 { "-" } else { "" },
            micros.abs() / 1_000_000,
            micros.abs() % 1_000_000
        );
        text.push_str(&format!(
            "{id},,{service},{amount},0,USD,2026-{month:02}-{day:02},AWS,{account},,\n"
        ));
        if month == 10 {
            expected += micros;
        }
    }
    let c = read(&text);
    assert_eq!(c.total(), expected);
    assert_eq!(c.report.rows_read, 2_000);
    assert!(c.report.complete);
    let mut seen = std::collections::HashSet::new();
    for l in &c.lines {
        assert!(
            seen.insert((l.resource_id.clone(), l.service.clone(), l.account.clone())),
            "one line per key"
        );
    }
    let mut sorted = c.lines.clone();
    sorted.sort_by(|a, b| (&a.resource_id, &a.service).cmp(&(&b.resource_id, &b.service)));
    assert_eq!(sorted, c.lines, "lines are sorted");
}

#[test]
fn several_files_share_one_aggregate_and_currency() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    std::fs::write(&a, format!("{HEADER}\nr1,,EC2,1,1,USD,2026-10-01,AWS,,,\n")).unwrap();
    std::fs::write(
        &b,
        format!("{HEADER}\nr1,,EC2,2,1,USD,2026-10-02,AWS,,,\nr2,,EC2,2,1,EUR,2026-10-02,AWS,,,\n"),
    )
    .unwrap();
    let c = read_focus_files(&[a.clone(), b.clone()], CostMetric::BilledCost, None).unwrap();
    assert_eq!(c.total(), 3_000_000);
    assert_eq!(c.report.source, "FOCUS file(s) a.csv, b.csv");
    assert_eq!(
        c.report.problems,
        vec![RowProblem {
            file: "b.csv".into(),
            line: 3,
            reason: "currency EUR differs from USD of earlier rows; convert the export \
                         or pass files of one currency"
                .into(),
        }]
    );

    let missing = dir.path().join("nope.csv");
    let err = read_focus_files(&[a, missing], CostMetric::BilledCost, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read cost file nope.csv: no such file (check the path)"
    );
    let err =
        read_focus_files(&[dir.path().to_path_buf()], CostMetric::BilledCost, None).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    assert!(matches!(
        read_focus_files(&[], CostMetric::BilledCost, None),
        Err(CostError::Invalid(_))
    ));
}

#[tokio::test]
async fn provider_reads_in_the_background_and_versions_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("costs.csv");
    std::fs::write(&a, format!("{HEADER}\nr1,,EC2,1,2,USD,2026-10-01,AWS,,,\n")).unwrap();
    let provider = FocusProvider::new(vec![a.clone()]);
    assert_eq!(provider.describe(), "FOCUS file(s) costs.csv");
    assert_eq!(provider.metrics()[0], CostMetric::BilledCost);
    let v1 = provider.version();
    assert!(v1.starts_with("costs.csv:"), "{v1}");
    assert!(!v1.contains(dir.path().to_str().unwrap()));
    let c = provider
        .line_costs(
            &CostQuery {
                period: Some(oct()),
                metric: Some(CostMetric::EffectiveCost),
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(c.total(), 2_000_000);
    assert_eq!(c.report.source, "FOCUS file(s) costs.csv");
    let err = provider
        .line_costs(
            &CostQuery {
                period: None,
                metric: Some(CostMetric::AmortizedCost),
            },
            &[],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CostError::Invalid(_)), "{err}");
    std::fs::write(
        &a,
        format!("{HEADER}\nr1,,EC2,1,2,USD,2026-10-01,AWS,,,\n\n"),
    )
    .unwrap();
    assert_ne!(
        provider.version(),
        v1,
        "a rewritten file changes the version"
    );
}

/// The hand-computed figures of tests/fixtures/focus/README.md.
#[test]
fn multicloud_fixture_matches_its_readme() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/focus/multicloud.csv");
    let c = read_focus_files(
        std::slice::from_ref(&path),
        CostMetric::BilledCost,
        Some(oct()),
    )
    .unwrap();
    assert_eq!(c.currency, "USD");
    assert_eq!(
        (
            c.report.rows_read,
            c.report.rows_used,
            c.report.rows_skipped
        ),
        (25, 19, 2)
    );
    assert_eq!(problem_lines(&c), vec![14, 19]);
    assert!(c.report.problems[0].reason.contains("BilledCost \"n/a\""));
    assert!(c.report.problems[1].reason.contains("Tags \"team=batch\""));
    assert!(c.report.problems.iter().all(|p| p.file == "multicloud.csv"));
    assert_eq!(c.total(), 1_358_465_678);
    assert_eq!(c.lines.len(), 13);
    let resources: std::collections::HashSet<&str> = c
        .lines
        .iter()
        .filter(|l| !l.resource_id.is_empty())
        .map(|l| l.resource_id.as_str())
        .collect();
    assert_eq!(resources.len(), 10);
    let by_provider = |p: Provider| -> Micros {
        c.lines
            .iter()
            .filter(|l| l.provider == p)
            .map(|l| l.amount)
            .sum()
    };
    assert_eq!(by_provider(Provider::Aws), 810_795_678);
    assert_eq!(by_provider(Provider::Azure), 423_400_000);
    assert_eq!(by_provider(Provider::Gcp), 124_270_000);

    let web = "arn:aws:ec2:us-east-1:111122223333:instance/i-0web1";
    let vm = "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01";
    let etl =
        "//compute.googleapis.com/projects/proj-analytics/zones/europe-west1-b/instances/vm-etl-1";
    let expected: &[(&str, &str, Micros)] = &[
        ("", "AWS Support (Business)", 100_000_000),
        ("", "Amazon Elastic Compute Cloud", 24_100_000),
        (
            "//bigquery.googleapis.com/projects/proj-analytics/datasets/sales",
            "BigQuery",
            7_770_000,
        ),
        (etl, "Compute Engine", 104_500_000),
        (
            "//storage.googleapis.com/projects/_/buckets/analytics-lake",
            "Cloud Storage",
            12_000_000,
        ),
        (
            "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata01",
            "Storage",
            18_400_000,
        ),
        (vm, "Virtual Machines", 405_000_000),
        (
            "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
            "Amazon DynamoDB",
            15_000_000,
        ),
        (web, "Amazon CloudWatch", 4_250_000),
        (web, "Amazon Elastic Compute Cloud", 220_000_000),
        (
            "arn:aws:lambda:us-east-1:111122223333:function:settle",
            "AWS Lambda",
            2_345_678,
        ),
        (
            "arn:aws:rds:us-east-1:111122223333:db:orders",
            "Amazon Relational Database Service",
            410_000_000,
        ),
        (
            "arn:aws:s3:::payments-invoices",
            "Amazon Simple Storage Service",
            35_100_000,
        ),
    ];
    let got: Vec<(&str, &str, Micros)> = c
        .lines
        .iter()
        .map(|l| (l.resource_id.as_str(), l.service.as_str(), l.amount))
        .collect();
    assert_eq!(got, expected);

    let web_ec2 = line(&c, web, "Amazon Elastic Compute Cloud");
    assert_eq!(
        web_ec2.tags,
        tags(&[
            ("CostCenter", "cc-100"),
            ("Environment", "prod"),
            ("team", "payments")
        ])
    );
    assert_eq!(
        (web_ec2.resource_type.as_str(), web_ec2.name.as_str()),
        ("ec2:instance", "i-0web1")
    );
    let dynamo = line(
        &c,
        "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
        "Amazon DynamoDB",
    );
    assert_eq!(
        dynamo.tags,
        tags(&[("TEAM", "orders"), ("environment", "Prod")])
    );
    let vm_line = line(&c, vm, "Virtual Machines");
    assert_eq!(
        (vm_line.resource_type.as_str(), vm_line.name.as_str()),
        ("azure:compute/virtualmachines", "vm-web-01")
    );
    let etl_line = line(&c, etl, "Compute Engine");
    assert_eq!(
        (etl_line.resource_type.as_str(), etl_line.name.as_str()),
        ("gcp:compute/instance", "etl worker 1")
    );
    assert_eq!(
        etl_line.tags,
        tags(&[("cost-center", "1234"), ("env", "dev"), ("team", "data")])
    );
    let lake = line(
        &c,
        "//storage.googleapis.com/projects/_/buckets/analytics-lake",
        "Cloud Storage",
    );
    assert_eq!(
        lake.tags,
        tags(&[("archived", "false"), ("owner", ""), ("team", "data")])
    );

    let effective = read_focus_files(
        std::slice::from_ref(&path),
        CostMetric::EffectiveCost,
        Some(oct()),
    )
    .unwrap();
    assert_eq!(effective.total(), 1_238_465_678);
    let effective_of = |p: Provider| -> Micros {
        effective
            .lines
            .iter()
            .filter(|l| l.provider == p)
            .map(|l| l.amount)
            .sum()
    };
    assert_eq!(effective_of(Provider::Aws), 740_795_678);
    assert_eq!(effective_of(Provider::Azure), 383_400_000);
    assert_eq!(effective_of(Provider::Gcp), 114_270_000);
    assert_eq!(
        line(&effective, web, "Amazon Elastic Compute Cloud").amount,
        180_000_000
    );
    assert_eq!(line(&effective, vm, "Virtual Machines").amount, 365_000_000);
    assert_eq!(line(&effective, etl, "Compute Engine").amount, 94_500_000);
    let unowned: Vec<(&str, &str, Provider, usize)> = c
        .lines
        .iter()
        .filter(|l| l.resource_id.is_empty())
        .map(|l| {
            (
                l.account.as_str(),
                l.region.as_str(),
                l.provider,
                l.tags.len(),
            )
        })
        .collect();
    assert_eq!(
        unowned,
        vec![
            ("111122223333", "", Provider::Aws, 0),
            ("111122223333", "", Provider::Aws, 0)
        ]
    );
    assert_eq!(
        (vm_line.account.as_str(), vm_line.region.as_str()),
        ("00000000-0000-0000-0000-0000000000a1", "westeurope")
    );
    assert_eq!(lake.resource_type, "gcp:storage/bucket");
    assert_eq!(problem_lines(&effective), vec![14, 19]);

    let whole = read_focus_files(&[path], CostMetric::BilledCost, None).unwrap();
    assert_eq!(whole.total(), 3_365_465_678);
    assert_eq!(whole.report.rows_used, 23);
    assert_eq!(
        whole.period,
        Period {
            start: NaiveDate::from_ymd_opt(2026, 9, 15).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
        }
    );
}

/// Azure ids are case-insensitive and exports write them in several cases: one resource is one
/// line per service whatever the case of its rows (the first row's spelling is kept). Other
/// ids stay case-sensitive.
#[test]
fn azure_ids_aggregate_in_any_case() {
    let vm = "/subscriptions/sub-1/resourceGroups/RG-Web/providers/Microsoft.Compute/virtualMachines/VM-1";
    let text = format!(
        "{HEADER}\n\
         {vm},,VMs,10,10,USD,2026-10-01,Microsoft,,,\n\
         {},,VMs,5,5,USD,2026-10-02,Microsoft,,,\n\
         {},,VMs,1,1,USD,2026-10-03,Microsoft,,,\n\
         arn:aws:s3:::Logs,,S3,2,2,USD,2026-10-01,AWS,,,\n\
         arn:aws:s3:::logs,,S3,3,3,USD,2026-10-01,AWS,,,\n",
        vm.to_ascii_lowercase(),
        vm.to_ascii_uppercase(),
    );
    let c = read(&text);
    assert_eq!(line(&c, vm, "VMs").amount, 16_000_000);
    assert_eq!(c.lines.iter().filter(|l| l.service == "VMs").count(), 1);
    assert_eq!(line(&c, "arn:aws:s3:::Logs", "S3").amount, 2_000_000);
    assert_eq!(line(&c, "arn:aws:s3:::logs", "S3").amount, 3_000_000);
}
