//! `authgate schema`: the committed copies in `docs/schema/` match what the code derives, and
//! README's config tables name exactly the keys the schema has.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::helpers::repo;

fn schema(which: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["schema", which])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn committed_schemas_match_the_code() {
    for (which, file) in [
        ("server", "docs/schema/authgate.schema.json"),
        ("workspace", "docs/schema/workspace.schema.json"),
    ] {
        let committed = std::fs::read_to_string(repo().join(file)).unwrap_or_default();
        assert!(
            committed == schema(which),
            "{file} is out of date with the config types: run `authgate schema {which} > {file}` \
             (`cargo run -q -- schema {which} > {file}`) and commit it"
        );
    }
}

/// Every key of a schema as `section.key` (`session.lifetime`, `provider.issuer`); a key whose
/// value is a table or an array of tables is a section, named by its keys only.
fn schema_keys(which: &str) -> BTreeSet<String> {
    let root: Value = serde_json::from_str(&schema(which)).unwrap();
    let defs = root["$defs"].clone();
    let resolve = |v: &Value| -> Option<Value> {
        let v = v.get("items").unwrap_or(v);
        let r = v
            .get("$ref")
            .or_else(|| v.get("anyOf").and_then(|a| a[0].get("$ref")))?;
        Some(defs[r.as_str()?.trim_start_matches("#/$defs/")].clone())
    };
    let mut keys = BTreeSet::new();
    for (k, v) in root["properties"].as_object().unwrap() {
        match resolve(v) {
            Some(table) => {
                for sub in table["properties"].as_object().unwrap().keys() {
                    keys.insert(format!("{k}.{sub}"));
                }
            }
            None => {
                keys.insert(k.clone());
            }
        }
    }
    keys
}

/// The keys README's table after `heading` names in its first column: code spans, where
/// `[section] key` (or `[[section]] key`) opens a section the following spans of the cell
/// share, and a lone `[[section]]` names the section itself (left out: its keys count).
fn readme_keys(readme: &str, heading: &str, section: Option<&str>) -> BTreeSet<String> {
    let start = readme.find(heading).unwrap_or_else(|| panic!("{heading}"));
    let mut keys = BTreeSet::new();
    for line in readme[start + heading.len()..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
    {
        let cell = line.split('|').nth(1).unwrap();
        let mut current = section.map(str::to_string);
        for (i, span) in cell.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let (sec, key) = match span.strip_prefix('[') {
                Some(rest) => {
                    let (sec, key) = rest.split_once(']').unwrap();
                    let key = key.trim_start_matches(']').trim();
                    (Some(sec.trim_start_matches('[').to_string()), key)
                }
                None => (None, span),
            };
            if sec.is_some() {
                current = sec;
            }
            if key.is_empty() {
                continue;
            }
            keys.insert(match &current {
                Some(s) => format!("{s}.{key}"),
                None => key.to_string(),
            });
        }
    }
    keys
}

#[test]
fn readme_tables_name_exactly_the_schemas_keys() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let server = readme_keys(&readme, "`authgate.toml`:\n", None);
    let mut workspace = readme_keys(&readme, "`workspaces/<name>.toml`:\n", None);
    workspace.extend(readme_keys(&readme, "`[[provider]]`:\n", Some("provider")));
    // Both sides really read nested keys, so the comparison below means something.
    for key in ["redis.url_file", "secrets.cookie_secrets_env"] {
        assert!(server.contains(key), "{key} {server:?}");
    }
    for key in [
        "provider.api_url",
        "public.cors_preflight",
        "session.store",
        "hosts",
    ] {
        assert!(workspace.contains(key), "{key} {workspace:?}");
        assert!(schema_keys("workspace").contains(key), "{key}");
    }
    assert!(!schema_keys("workspace").contains("provider.client_secret"));
    for (which, tables) in [("server", server), ("workspace", workspace)] {
        let schema = schema_keys(which);
        let missing: Vec<_> = schema.difference(&tables).collect();
        let unknown: Vec<_> = tables.difference(&schema).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "{which}: in the schema but not README's tables: {missing:?}; in README's tables \
             but not the schema: {unknown:?}"
        );
    }
}
