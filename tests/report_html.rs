//! `credlineage report --format html` through the built CLI: one self-contained page holding the whole report (every root, credential, collision, off-host use and live credential), hostile record strings only as escaped data, no session token or secret, and a size linear in the credentials. The page drawn in a real browser: tests/browser/.

mod common;

use common::cli as run;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn report(format: &str, path: &Path) -> Vec<u8> {
    let o = run(
        &["report", "--format", format, path.to_str().unwrap()],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    o.stdout
}

fn html(path: &Path) -> String {
    String::from_utf8(report("html", path)).unwrap()
}

/// The JSON block the page draws, and the page without it.
fn split(page: &str) -> (Value, String) {
    let open = "<script type=\"application/json\" id=\"data\">";
    let start = page.find(open).expect("data block") + open.len();
    let len = page[start..].find("</script>").expect("data block closed");
    let data = serde_json::from_str(&page[start..start + len]).expect("data block is JSON");
    let rest = format!("{}{}", &page[..start], &page[start + len..]);
    (data, rest)
}

fn count_credentials(roots: &Value) -> usize {
    let mut n = 0;
    let mut stack: Vec<&Value> = roots
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["credentials"].as_array().unwrap())
        .collect();
    while let Some(c) = stack.pop() {
        n += 1;
        stack.extend(c["children"].as_array().unwrap());
    }
    n
}

#[test]
fn page_is_self_contained_and_holds_the_whole_report() {
    let path = fixture("scenarios.jsonl");
    let page = html(&path);
    let json: Value = serde_json::from_slice(&report("json", &path)).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    let (data, template) = split(&page);
    // Everything inline: one style, the data block and one script; nothing
    // fetched, and a policy that allows no connection.
    assert_eq!(template.matches("<script").count(), 2, "{template}");
    assert_eq!(template.matches("<style>").count(), 1);
    for outside in [
        "src=",
        "href=\"http",
        "@import",
        "url(",
        "<link",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(!page.contains(outside), "{outside} in the page");
    }
    assert!(
        page.contains(
            "Content-Security-Policy\" content=\"default-src 'none'; script-src 'sha256-"
        )
    );
    // The same report as --format json.
    assert_eq!(data["roots"].as_array().unwrap().len(), 12);
    assert_eq!(
        data["creds"].as_array().unwrap().len(),
        count_credentials(&json["roots"])
    );
    assert_eq!(data["collisions"], json["collisions"]);
    assert_eq!(data["offhost"], json["offhost"]);
    assert_eq!(data["live"], json["live"]);
    assert_eq!(data["totals"], json["totals"]);
    // The tree: parents before children; the deep chain three hops under alice's key.
    let creds = data["creds"].as_array().unwrap();
    let at = |k: &str| {
        creds
            .iter()
            .position(|c| c["k"] == k)
            .unwrap_or_else(|| panic!("{k}"))
    };
    let mut i = at("ASIAQXAMPLECHAIN0003");
    let mut path_up = Vec::new();
    while creds[i]["p"].as_i64().unwrap() >= 0 {
        let p = creds[i]["p"].as_i64().unwrap() as usize;
        assert!(p < i);
        i = p;
        path_up.push(creds[i]["k"].as_str().unwrap());
    }
    assert_eq!(
        path_up,
        [
            "ASIAQXAMPLECHAIN0002",
            "ASIAQXAMPLECHAIN0001",
            "AKIAQXAMPLEROOTKEY01"
        ]
    );
    // The issuing call and its time, split for the timeline; off-host calls counted.
    let hop = &creds[at("ASIAQXAMPLECHAIN0001")];
    assert_eq!(hop["by"], "AssumeRole");
    assert_eq!(hop["it"], "2024-08-01T12:00:05Z");
    assert_eq!(creds[at("ASIAQXAMPLEINSTANCE1")]["o"], 2);
    // The summary line names the findings before any script runs.
    assert!(
        template.contains("1 key-ID collision(s), 2 off-host EC2 use(s), 6 live credential(s)")
    );
}

#[test]
fn hostile_record_strings_are_data_never_markup() {
    let path = fixture("hostile_html.jsonl");
    let page = html(&path);
    let (data, template) = split(&page);
    // Nothing from a record in the template, and no markup character left
    // in the data block: every `<`, `>`, `&` is a JSON escape there.
    for payload in [
        "data-pwned",
        "onerror=",
        "onload=",
        "onmouseover=",
        "<img",
        "<svg",
        "<iframe",
        "<b>",
    ] {
        assert!(
            !template.contains(payload),
            "{payload} outside the data block"
        );
    }
    let raw_block = page
        .split("id=\"data\">")
        .nth(1)
        .unwrap()
        .split("</script>")
        .next()
        .unwrap();
    assert!(!raw_block.contains(['<', '>', '&']), "{raw_block}");
    // Still all there, as text for the page to show.
    let all = data.to_string();
    for shown in [
        "<script>document.body.setAttribute('data-pwned','1')</script>",
        "</script><script>document.body.setAttribute('data-pwned','2')</script>",
        "<img src=x onerror=\\\"document.body.setAttribute('data-pwned','3')\\\">",
        "198.51.100.9&amp;<u>",
    ] {
        assert!(all.contains(shown), "{shown} missing from {all}");
    }
    assert!(
        data["roots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["n"].as_str().unwrap().starts_with("unresolved:ASIA<svg"))
    );
}

#[test]
fn page_holds_no_session_token_or_secret() {
    for (file, secrets) in [
        ("scenarios.jsonl", &["IQoJb3JpZ2luX2VjEXAMPLEFAKETOKEN"][..]),
        (
            "hostile_html.jsonl",
            &[
                "HOSTILEFIXTURESESSIONTOKENDONOTLEAK",
                "HOSTILEFIXTURESECRETKEYDONOTLEAK",
            ][..],
        ),
    ] {
        let trail = std::fs::read_to_string(fixture(file)).unwrap();
        let page = html(&fixture(file));
        for s in secrets {
            assert!(trail.contains(s), "{file} carries {s}");
            assert!(!page.contains(s), "{file}: the page leaks {s}");
        }
        for k in ["sessionToken", "secretAccessKey"] {
            assert!(!page.contains(k), "{file}: {k} in the page");
        }
    }
}

/// A trail of `n` long-term keys, each assuming a role and using the session once: 2n credentials.
fn trail(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let key = format!("AKIAQLINEAR{i:09}");
        let sess = format!("ASIAQLINEAR{i:09}");
        let t = |s: usize| {
            format!(
                "2024-08-01T{:02}:{:02}:{:02}Z",
                10 + s / 3600,
                s / 60 % 60,
                s % 60
            )
        };
        let user = json!({"type": "IAMUser", "principalId": "AIDAQLINEAR", "accountId": "111122223333",
            "arn": format!("arn:aws:iam::111122223333:user/u{i}"), "accessKeyId": key, "userName": format!("u{i}")});
        let role = format!("arn:aws:sts::111122223333:assumed-role/r/s{i}");
        let issue = json!({"eventVersion": "1.08", "userIdentity": user, "eventTime": t(i),
            "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "awsRegion": "us-east-1",
            "sourceIPAddress": format!("198.51.{}.{}", i / 250 % 250, i % 250),
            "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/r", "roleSessionName": format!("s{i}")},
            "responseElements": {"credentials": {"accessKeyId": sess, "sessionToken": "IQoJLINEARTOKEN",
                "expiration": "Aug 2, 2024, 1:00:00 PM"}, "assumedRoleUser": {"assumedRoleId": "AROAQ:s", "arn": role}},
            "eventID": format!("e{i}a"), "eventType": "AwsApiCall", "recipientAccountId": "111122223333"});
        let call = json!({"eventVersion": "1.08", "userIdentity": {"type": "AssumedRole", "principalId": "AROAQ:s",
                "arn": role, "accountId": "111122223333", "accessKeyId": sess,
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/r"},
                    "attributes": {"creationDate": t(i), "mfaAuthenticated": "false"}}},
            "eventTime": t(i + 1), "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
            "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.10", "eventID": format!("e{i}b"),
            "eventType": "AwsApiCall", "recipientAccountId": "111122223333"});
        out.push_str(&format!("{issue}\n{call}\n"));
    }
    out
}

#[test]
fn page_size_is_linear_in_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let size = |n: usize| {
        let p = dir.path().join(format!("t{n}.jsonl"));
        std::fs::write(&p, trail(n)).unwrap();
        let page = html(&p);
        let (data, _) = split(&page);
        assert_eq!(data["creds"].as_array().unwrap().len(), 2 * n);
        assert!(!page.contains("IQoJLINEARTOKEN"));
        page.len() as f64
    };
    let (s0, s1, s4) = (size(0), size(500), size(2000));
    let per1 = (s1 - s0) / 1000.0;
    let per4 = (s4 - s0) / 4000.0;
    // The same bytes per credential at 1,000 and 4,000 credentials, and few of them.
    assert!(
        (per4 / per1 - 1.0).abs() < 0.05,
        "{per1} vs {per4} bytes per credential"
    );
    assert!(per4 < 600.0, "{per4} bytes per credential");
    // The template itself stays small.
    assert!(s0 < 40_000.0, "{s0} bytes for an empty report");
}

#[test]
fn help_names_the_html_format() {
    let o = run(&["report", "--help"], None);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("html"), "{s}");
    assert!(s.contains("self-contained HTML page"), "{s}");
}
