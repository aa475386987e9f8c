//! The JSON Schema of the config files (`authgate schema`), derived from the serde structs in
//! `raw`, so it says exactly what the code reads. `docs/schema/` holds the printed copies
//! editors point at; a test regenerates them and compares.

use serde_json::Value;

use super::raw::{RawServer, RawWorkspace};

/// Which file's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFile {
    /// `authgate.toml`.
    Server,
    /// `workspaces/<name>.toml`.
    Workspace,
}

impl SchemaFile {
    /// Where the committed copy lives, relative to the repository.
    pub fn committed_path(self) -> &'static str {
        match self {
            Self::Server => "docs/schema/authgate.schema.json",
            Self::Workspace => "docs/schema/workspace.schema.json",
        }
    }
}

/// The schema as a JSON value.
pub fn schema(file: SchemaFile) -> Value {
    let (schema, title) = match file {
        SchemaFile::Server => (schemars::schema_for!(RawServer), "authgate.toml"),
        SchemaFile::Workspace => (
            schemars::schema_for!(RawWorkspace),
            "authgate workspace file (workspaces/<name>.toml)",
        ),
    };
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("title".into(), Value::String(title.into()));
    }
    value
}

/// The schema as printed: pretty JSON with a final newline.
pub fn schema_text(file: SchemaFile) -> String {
    let mut text = serde_json::to_string_pretty(&schema(file)).unwrap_or_default();
    text.push('\n');
    text
}
